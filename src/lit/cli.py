"""lit's command line: one short function per command; the work lives in the modules."""

from __future__ import annotations

import sys

import typer

from lit import __version__
from lit.errors import LitError

app = typer.Typer(
    name="lit",
    help="Record coding-agent sessions and weave them into git history.\n\n"
    "Example: lit record -- claude",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def fail(message: str, code: int = 1) -> None:
    """One line on stderr, then exit: the way every user error ends."""
    typer.echo(f"lit: {message}", err=True)
    raise typer.Exit(code)


@app.callback(invoke_without_command=True)
def _root(
    version: bool = typer.Option(False, "--version", help="Print lit's version and exit."),
) -> None:
    if version:
        typer.echo(f"lit {__version__}")
        raise typer.Exit(0)


def main() -> None:
    try:
        app()
    except LitError as e:
        typer.echo(f"lit: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
