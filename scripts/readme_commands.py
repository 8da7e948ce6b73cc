"""The README's command reference, made from `lit COMMAND --help` (as sqlite-utils and llm keep
theirs with cog): `python scripts/readme_commands.py` rewrites it; tests/test_docs.py fails when
the README and --help differ."""

from __future__ import annotations

import sys
from pathlib import Path

import typer.main
from typer.testing import CliRunner

from lit.cli import app

README = Path(__file__).resolve().parent.parent / "README.md"
START = "<!-- commands: made by scripts/readme_commands.py from --help; edit the help, not this -->"
END = "<!-- end of commands -->"
# --help as a terminal 100 columns wide shows it, without colour, on every machine.
HELP_ENV = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}


def command_names() -> list[str]:
    """`lit`, then each command (a group's subcommands as `group sub`), in --help's order."""
    names = [""]
    for name, cmd in typer.main.get_command(app).commands.items():
        if cmd.hidden:
            continue
        if hasattr(cmd, "commands"):
            names += [f"{name} {sub}" for sub, c in cmd.commands.items() if not c.hidden]
        else:
            names.append(name)
    return names


def help_text(name: str) -> str:
    result = CliRunner().invoke(app, [*name.split(), "--help"], env=HELP_ENV, prog_name="lit")
    if result.exit_code != 0:
        raise RuntimeError(f"lit {name} --help failed: {result.output}")
    return "\n".join(line.rstrip() for line in result.output.strip("\n").splitlines())


def reference() -> str:
    parts = [START, ""]
    for name in command_names():
        parts += [f"### lit {name}".rstrip(), "", "```", help_text(name), "```", ""]
    return "\n".join(parts + [END])


def updated(readme: str) -> str:
    """The README with its reference made anew (appended under "## Command reference" if absent)."""
    if START in readme and END in readme:
        head, rest = readme.split(START, 1)
        return head + reference() + rest.split(END, 1)[1]
    return readme.rstrip("\n") + "\n\n## Command reference\n\n" + reference() + "\n"


if __name__ == "__main__":
    text = README.read_text()
    new = updated(text)
    README.write_text(new)
    print("README.md: command reference " + ("unchanged" if new == text else "rewritten"), file=sys.stderr)
