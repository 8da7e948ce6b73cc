"""lit's command line: one short function per command; the work lives in the modules."""

from __future__ import annotations

import os
import re
import sys
from collections import Counter

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption

try:  # the click typer runs on: its own copy in newer typers
    from typer._click import exceptions as click_errors
except ImportError:
    import click.exceptions as click_errors

from lit import __version__
from lit.errors import LitError

# One placeholder style in every --help, as git's and gh's: an UPPERCASE word, named for what it
# is. Options not listed here take their own name (--remote REMOTE).
METAVARS = {"db": "PATH", "port": "N", "limit": "N", "upstream": "URL", "openai_upstream": "URL", "output": "FILE",
            "rev": "REV", "line_range": "START,END", "host": "ADDRESS", "model": "MODEL", "weave_dir": "DIR",
            "fmt": "FORMAT", "repo": "PATH"}


class _Argument(TyperArgument):
    """An argument written FILE in the usage line when required, [FILE] when not."""

    def make_metavar(self, ctx=None, *, usage: bool = False) -> str:
        var = self.metavar or (self.name or "").upper() + ("..." if self.nargs != 1 else "")
        return f"[{var}]" if usage and not self.required and not var.startswith("[") else var

    def get_error_hint(self, ctx) -> str:
        return f"'{self.make_metavar(ctx)}'"


def _styled(command):
    for param in command.params:
        if isinstance(param, TyperArgument):
            param.__class__ = _Argument
        elif isinstance(param, TyperOption) and not param.is_flag and param.metavar is None:
            param.metavar = METAVARS.get(param.name or "", (param.name or "").upper())
        if isinstance(param, TyperOption) and "(default" in (param.help or ""):
            param.show_default = False  # the help says it in words already
    return command


class LitGroup(TyperGroup):
    """lit's command groups: each command's short help whole (click cuts it to fit the screen
    with "..."; long ones wrap instead), and one placeholder style in every command's help."""

    def get_command(self, ctx, cmd_name: str):
        command = super().get_command(ctx, cmd_name)
        return _styled(command) if command is not None else None

    def format_commands(self, ctx, formatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _port(value: int) -> int:
    if not 0 <= value <= 65535:
        raise typer.BadParameter(f"{value} is not a port (0 to 65535; 0 picks a free one)")
    return value


def _positive(value: int) -> int:
    if value < 1:
        raise typer.BadParameter(f"{value}: give 1 or more")
    return value


DB_OPTION = typer.Option(None, "--db", help="lit's DB (default: $LIT_DB, else the user's data dir).")


def _repo_or_fail() -> None:
    from lit.git.run import repo_root

    if repo_root(".") is None:
        fail("not in a git repository")


app = typer.Typer(
    cls=LitGroup,
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


# --- record (issue 2) ----------------------------------------------------------------------------


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def record(
    command: list[str] = typer.Argument(None, help="The agent to run, after --, with its arguments.",
                                        metavar="-- COMMAND [ARGS]..."),
    db: str = DB_OPTION,
    upstream: str = typer.Option(None, "--upstream", help="Where API calls go (default: $ANTHROPIC_BASE_URL, "
                                 "else https://api.anthropic.com)."),
    port: int = typer.Option(0, "--port", "-p", callback=_port,
                             help="Port of the relay on 127.0.0.1 (default: a free one)."),
    openai_upstream: str = typer.Option(None, "--openai-upstream", help="Where OpenAI API calls go (default: "
                                        "$OPENAI_BASE_URL, else https://api.openai.com/v1)."),
) -> None:
    """Run an agent with its API calls relayed through lit, and record the session.

    The agent runs as without lit (same terminal, same exit code); its API calls go through a
    relay on 127.0.0.1 (ANTHROPIC_BASE_URL, and OPENAI_BASE_URL for OpenAI clients), and every
    prompt, reasoning step and tool call lands in lit's DB.

    \b
    Example:
      lit record -- claude
      lit record --upstream http://127.0.0.1:8765 -- python examples/agent.py "add a --verbose flag"
    """
    from lit.record import run

    raise typer.Exit(run(list(command or []), db=db, upstream=upstream, port=port, openai_upstream=openai_upstream))


# --- replay, export, import (issue 7) ----------------------------------------------------------


@app.command()
def replay(
    source: str = typer.Argument(..., help="A thread (id, prefix or commit SHA) in the DB, or an exported .jsonl."),
    port: int = typer.Option(0, "--port", "-p", callback=_port, help="Port on 127.0.0.1 (default: a free one)."),
    db: str = DB_OPTION,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Do not print each turn served."),
) -> None:
    """Serve a recorded thread as a Messages API upstream, turn by turn, until Ctrl-C.

    \b
    Example:
      lit replay 3f9c0a1b2c4d --port 8765 &
      ANTHROPIC_BASE_URL=http://127.0.0.1:8765 python examples/agent.py "the recorded prompt"
    """
    import time

    from lit.replay import Replay, describe, print_mismatch

    server = Replay(source, db_path=db, port=port, on_mismatch=print_mismatch,
                    on_turn=None if quiet else lambda t: typer.echo(f"lit replay: {describe(t)}", err=True))
    server.start()
    turns = len(server.recording.turns)
    typer.echo(f"lit replay: serving thread {server.recording.thread_id} ({turns} turns) on {server.url}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@app.command()
def export(
    thread: str = typer.Argument(..., help="The thread: its id, an id prefix, or the SHA of its commit. "
                                 "With --format agent-trace: a commit (REV) or a range (A..B)."),
    output: str = typer.Option("-", "--output", "-o", help="The .jsonl file to write ('-': stdout)."),
    db: str = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
    fmt: str = typer.Option("lit", "--format", help="lit (a thread, for lit import and lit replay) or "
                            "agent-trace (one Agent Trace record per commit, JSON Lines)."),
    write: bool = typer.Option(False, "--write", help="With --format agent-trace: append the records to "
                               ".agent-trace/traces.jsonl in the repository (each record once)."),
) -> None:
    """Write a thread and its conversation to a portable JSONL file (for lit import and lit replay),
    or the line maps of commits as Agent Trace records.

    \b
    Examples:
      lit export 3f9c0a1b2c4d -o wordcount.jsonl
      lit export main~5..main --format agent-trace --write
    """
    import dataclasses
    import json

    from lit import portable, store

    if fmt == "agent-trace":
        if as_json:
            fail("--json goes with --format lit (Agent Trace records are JSON already)")
        _export_agent_trace(thread, output, db, write)
        return
    if fmt != "lit":
        fail(f"unknown format {fmt!r}: lit or agent-trace")
    if write:
        fail("--write goes with --format agent-trace")

    database = store.read(db)
    summary = portable.export_thread(database, thread, sys.stdout if output == "-" else output)
    if output == "-":
        summary.path = "-"
    if as_json:  # on stderr when the export itself goes to stdout
        typer.echo(json.dumps(dataclasses.asdict(summary)), err=output == "-")
    else:
        rows = ", ".join(f"{t} {n}" for t, n in summary.rows.items())
        typer.echo(f"lit export: thread {summary.thread} -> {'stdout' if output == '-' else output} "
                   f"({summary.bytes / 1024:.0f} kB; rows: {rows})", err=True)


def _export_agent_trace(rev: str, output: str, db: str | None, write: bool) -> None:
    from lit.formats import agent_trace
    from lit.git.run import repo_root
    from lit.terminal import safe as terminal_safe

    root = repo_root(".")
    if root is None:
        fail("not in a git repository (Agent Trace records name the commits of one)")
    result = agent_trace.export(root, rev, db)
    for commit, why in result.skipped:
        typer.echo(terminal_safe(f"lit export: {commit[:10]}: no record ({why})"), err=True)
    if not result.records:
        fail(f"no commit of {rev} has a line map lit knows")
    if write:
        path, added = agent_trace.append(root, result.records)
        typer.echo(f"lit export: {added} of {len(result.records)} records added to "
                   f"{path.relative_to(root)}" + ("" if added == len(result.records) else " (it had the others)"))
        return
    text = agent_trace.to_jsonl(result.records)
    if output == "-":
        sys.stdout.write(text)
        return
    try:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        fail(f"cannot write {output}: {e.strerror or e}")
    typer.echo(f"lit export: {len(result.records)} Agent Trace records -> {output}", err=True)


@app.command()
def demo(
    directory: str = typer.Argument(None, help="An empty or new directory (default: a new temporary one)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Hide the agent's own output."),
) -> None:
    """Record a replayed agent session into a new repository, then blame and weave its commit.

    No API key and no network: the model's side is a recorded session served on 127.0.0.1.

    Example: lit demo ~/lit-demo
    """
    from lit import demo as demo_module

    demo_module.run(directory, echo=typer.echo, agent_output=not quiet)


@app.command("import")
def import_(
    file: str = typer.Argument(..., help="A file written by lit export, or one of the words claude-code, "
                               "codex, agent-trace, git-ai."),
    path: str = typer.Argument(None, help="With claude-code: a transcript (.jsonl) or a folder of them "
                               "(default: this repository's sessions under ~/.claude/projects). With codex: a session "
                               "log or a folder of them (default: this repository's under $CODEX_HOME/sessions). "
                               "With agent-trace: a file of records ('-': stdin). With git-ai: the commits "
                               "(default: HEAD)."),
    db: str = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print what was added (per table, or per session) as JSON."),
    repo: str = typer.Option(None, "--repo", help="With claude-code or codex: the repository whose commits the "
                             "sessions are linked to (default: the current one)."),
) -> None:
    """Add an exported thread to the DB, import Claude Code's or Codex's own session logs as
    sessions (threads bound to the commits they made in this repository, with line maps), or another
    tool's line attribution: Agent Trace records, git-ai's notes (refs/notes/ai). Importing twice
    adds nothing.

    \b
    Examples:
      lit import wordcount.jsonl
      lit import claude-code
      lit import claude-code ~/.claude/projects/-home-me-app/0b6c2a9e-5f1d-4c57-9a43-2f1e8d7c6b5a.jsonl
      lit import codex
      lit import agent-trace .agent-trace/traces.jsonl
      lit import git-ai main~20..main
    """
    import dataclasses
    import json

    from lit import portable, store

    if file in ("claude-code", "codex"):
        _import_sessions(file, path, db, as_json, repo)
        return
    if file in ("agent-trace", "git-ai"):
        _import_attribution(file, path, db, as_json)
        return
    if path is not None:
        fail(f"unexpected argument {path!r}: lit import FILE, or lit import claude-code|codex|agent-trace|git-ai [...]")
    summary = portable.import_file(store.connect(db), file)
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(summary)))
        return
    added = ", ".join(f"{t} {n}" for t, n in summary.added.items())
    typer.echo(f"lit import: thread {summary.thread}: "
               + (f"added rows: {added}" if added else "already in the DB, nothing added"))
    if summary.refused:
        refused = ", ".join(f"{t} {n}" for t, n in summary.refused.items())
        typer.echo(f"lit import: refused rows that would add to threads or line maps the DB has: {refused}",
                   err=True)


def _import_attribution(fmt: str, source: str | None, db: str | None, as_json: bool) -> None:
    from lit import store
    from lit.git.run import repo_root
    from lit.importers import agent_trace, git_ai
    from lit.terminal import safe as terminal_safe

    root = repo_root(".")
    if root is None:
        fail(f"not in a git repository ({fmt} attribution is imported into the commits of one)")
    if fmt == "agent-trace":
        if source is None:
            fail("lit import agent-trace FILE: name the file of records ('-' reads stdin)")
        result = agent_trace.import_records(store.connect(db), root, source)
    else:
        result = git_ai.import_range(store.connect(db), root, source or "HEAD")
    for warning in result.warnings:
        typer.echo(terminal_safe(f"lit import: warning: {warning}"), err=True)
    if as_json:
        _echo_json({"added": [{"thread": t.id, "commit": t.commit, "agent": t.agent, "steps": len(t.steps),
                               "lines": sum(e - s + 1 for rs in t.line_map.values() for s, e, _ in rs)}
                              for t in result.added],
                    "present": result.present, "skipped": [list(x) for x in result.skipped]})
        return
    for t in result.added:
        lines = sum(e - s + 1 for rs in t.line_map.values() for s, e, _ in rs)
        models = sorted({s.model for s in t.steps if s.model})
        typer.echo(terminal_safe(f"lit import: {fmt}: thread {t.id} -> commit {t.commit[:7]}: {t.agent or 'agent'}"
                                 + (f" ({', '.join(models)})" if models else "") + f", {lines} lines in the line map"))
    said = f"{len(result.added)} threads added"
    if result.present:
        said += f", {len(result.present)} already in the DB"
    if result.skipped:
        reasons = Counter(why for _, why in result.skipped)
        said += f", {len(result.skipped)} left out (" + "; ".join(
            f"{why}: {n}" for why, n in reasons.most_common(3)) + ")"
    typer.echo(terminal_safe(f"lit import: {fmt}: {said}"))


def _import_repo(repo: str | None) -> str | None:
    """The repository an import links commits in: --repo, else the current one (None outside)."""
    from lit.git.run import repo_root

    root = repo_root(repo or ".")
    if repo and root is None:
        fail(f"--repo {repo}: not a git repository")
    return str(root) if root else None


def _import_sessions(agent: str, path: str | None, db: str | None, as_json: bool, repo: str | None) -> None:
    """`lit import claude-code|codex`: an agent's own session logs as lit sessions."""
    import dataclasses
    import json

    from lit import store
    from lit.importers import claude_code, codex

    root = _import_repo(repo)
    importer = claude_code if agent == "claude-code" else codex
    results = importer.import_path(store.connect(db), path, repo=root)
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(r) for r in results], indent=2))
        return
    typer.echo(f"lit import: linking commits in {root}" if root else
               "lit import: not in a git repository: sessions are imported without commits (--repo PATH)")
    name = agent.replace("-", " ")
    for r in results:
        for warning in r.warnings:
            typer.echo(f"lit import: warning: {warning}", err=True)
        if not r.imported:
            typer.echo(f"lit import: {name} session {r.agent_session}: {r.reason}, nothing added")
            continue
        bound = [t for t in r.threads if t["status"] == "bound"]
        links = "".join(f"; thread {t['id']} -> commit {t['commit'][:7]}" for t in bound)
        typer.echo(f"lit import: {name} session {r.agent_session} -> session {r.session}: "
                   f"{len(r.threads)} thread{'s' * (len(r.threads) != 1)}, {r.steps} step{'s' * (r.steps != 1)}, "
                   f"{r.exchanges} exchange{'s' * (r.exchanges != 1)}{links}")
    if len(results) > 1:
        done = [r for r in results if r.imported]
        typer.echo(f"lit import: {len(results)} {name} sessions: {len(done)} imported, "
                   f"{sum(1 for t in (t for r in done for t in r.threads) if t['status'] == 'bound')} "
                   f"commits linked, {len(results) - len(done)} left as they were")


def _echo_json(data) -> None:
    import json

    typer.echo(json.dumps(data, indent=2, default=str))


@app.command()
def sessions(
    limit: int = typer.Option(20, "--limit", "-n", callback=_positive, help="How many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    db: str = DB_OPTION,
) -> None:
    """List recorded sessions (one per `lit record` run), newest first.

    Example: lit sessions -n 5
    """
    from lit import listing, store

    rows = listing.sessions(store.read(db), limit)
    _echo_json(rows) if as_json else typer.echo(listing.render_sessions(rows))


@app.command()
def threads(
    limit: int = typer.Option(20, "--limit", "-n", callback=_positive, help="How many, newest first."),
    all_repos: bool = typer.Option(False, "--all", help="Threads of every repository, not only this one."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    db: str = DB_OPTION,
) -> None:
    """List threads (the steps that led to one commit) of this repository, newest first.

    Example: lit threads --all
    """
    from lit import listing, store
    from lit.recorder import git_info

    repo = None if all_repos else git_info(".")[0]
    rows = listing.threads(store.read(db), repo=repo, limit=limit)
    _echo_json(rows) if as_json else typer.echo(listing.render_threads(rows))


@app.command()
def show(
    thread: str = typer.Argument(..., help="A thread: its id, any prefix no other thread starts, or its commit "
                                 "(HEAD, main~2, a SHA)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    db: str = DB_OPTION,
) -> None:
    """Print a thread step by step: prompts, reasoning, tool calls and their results.

    Example: lit show 3f9c0a1b2c4d
    """
    from lit import listing, store

    detail = listing.thread_detail(store.read(db), thread)
    if as_json:
        _echo_json(detail)
    else:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        typer.echo(listing.render_thread(detail, color=color))


# --- blame, weave (issue 4) --------------------------------------------------------------------------


# The -L forms git blame takes: N,M  N,+K  N,-K  ,M  N  /regex/...  :funcname
_LINE_RANGE = re.compile(r"(?:\d+|/.+/|[+-]\d+)?(?:,(?:\d+|/.+/|[+-]\d+)?)?|:.+")


@app.command()
def blame(
    file: str = typer.Argument(..., help="The file to blame, as for git blame."),
    line_range: str = typer.Option(None, "-L", help="START,END (or any -L form git blame takes)."),
    rev: str = typer.Option(None, "--rev", help="Blame the file as of this revision (default: the working tree)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array, an object for each line of the file "
                                 "(keys in the README)."),
    full: bool = typer.Option(False, "--full", help="Each step's whole prompt, reasoning, tool call and result "
                              "(with --json: keys prompt, reasoning, tool_input, result)."),
    moves: bool = typer.Option(False, "-M", help="Follow lines moved within the file (git blame -M; slower)."),
    copies: bool = typer.Option(False, "-C", help="Follow lines moved from other files (git blame -C; slower)."),
    db: str = DB_OPTION,
) -> None:
    """Each line with the step that wrote it and the first sentence of why.

    Lines of commits without a thread show as git blame shows them; lines a person wrote
    inside an agent's commit say human. Works from refs/notes/lit alone, without a DB.

    \b
    Example:
      lit blame src/app.py -L 40,60
      lit blame src/app.py --json | jq '.[] | select(.kind == "human")'
    """
    from lit import blame as blame_module

    _repo_or_fail()
    if line_range is not None and not _LINE_RANGE.fullmatch(line_range):
        fail(f"-L {line_range}: give START,END (-L 40,60), START,+COUNT, or a /regex/ or :function as git blame does")
    if rev is None and os.path.isdir(file):
        fail(f"{file} is a folder: lit blame takes a file")
    result = blame_module.blame(file, line_range=line_range, rev=rev, db_path=db, moves=moves, copies=copies)
    if as_json:
        _echo_json(blame_module.to_json(result.lines, notes=result.notes if full else None))
        return
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    typer.echo(blame_module.render(result.lines, color=color, full=full, notes=result.notes))


@app.command()
def weave(
    target: str = typer.Argument("HEAD", help="A commit (HEAD, a SHA), a range (main..HEAD) or a thread id."),
    output: str = typer.Option(None, "--output", "-o", help="The HTML file (default: lit-weave-SHA.html in lit's "
                               "cache folder, outside the repository)."),
    open_page: bool = typer.Option(False, "--open", help="Open the page in a browser."),
    db: str = DB_OPTION,
) -> None:
    """Write a commit as one self-contained HTML page: each step's reasoning beside the lines it wrote.

    A range weaves a book, a chapter per commit. The page loads nothing from the network.

    \b
    Example:
      lit weave HEAD --open
      lit weave main..HEAD -o review.html
    """
    from lit import weave as weave_module

    _repo_or_fail()
    path = weave_module.weave(target, output, db_path=db)
    typer.echo(str(path))
    if open_page:
        import webbrowser

        if not webbrowser.open(path.resolve().as_uri()):
            fail(f"could not open a browser (set $BROWSER to one); the page is {path}")


@app.command()
def serve(
    port: int = typer.Option(8001, "--port", "-p", callback=_port,
                             help="Port to listen on (default: 8001; 0 picks a free one)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; 0.0.0.0 shares it with the network."),
    open_browser: bool = typer.Option(False, "--open", help="Open the front page in a browser."),
    db: str = DB_OPTION,
) -> None:
    """Browse and query every thread in Datasette, read-only, with thread and commit pages.

    Pages: / (recent threads, search, repositories), /-/lit/thread/ID, /-/lit/commit/SHA,
    every table under /lit, and canned queries on /lit.

    \b
    Example:
      lit serve --open
      lit serve --db ~/team.db --port 8080
    """
    from lit import serve as serve_module

    serve_module.serve(serve_module.check_db(db), host=host, port=port, open_browser=open_browser, echo=typer.echo)


# --- pr (issue 6) ------------------------------------------------------------------------------------


@app.command()
def pr(
    rev_range: str = typer.Argument(None, metavar="RANGE",
                                    help="Commits to describe, e.g. main..HEAD (default: @{upstream}..HEAD, else "
                                    "main..HEAD or master..HEAD). One revision R means R..HEAD."),
    fmt: str = typer.Option("markdown", "--format", help="markdown or json."),
    as_json: bool = typer.Option(False, "--json", help="The same as --format json."),
    llm: bool = typer.Option(False, "--llm", help="Have a model write the summary (ANTHROPIC_API_KEY, "
                             "ANTHROPIC_BASE_URL); on any failure the deterministic text is printed."),
    model: str = typer.Option(None, "--model", help="The model for --llm (default: claude-sonnet-4-6)."),
    weave_dir: str = typer.Option(None, "--weave-dir", help="Link each commit to DIR/lit-weave-SHA.html; a local "
                                  "DIR gets the missing pages written, a URL is only linked."),
    db: str = DB_OPTION,
) -> None:
    """Print a pull request description: what was asked, the key decisions, the files and how the
    agent verified each commit. Deterministic (no network) unless --llm; within GitHub's 65,536
    characters.

    \b
    Example:
      lit pr main..HEAD
      lit pr | gh pr create --title "$(git log -1 --format=%s)" --body-file -
      lit pr --llm --model claude-sonnet-4-6 --weave-dir https://example.org/weave
    """
    from lit import pr as pr_module

    _repo_or_fail()
    fmt = "json" if as_json else fmt
    if fmt not in ("markdown", "json"):
        fail(f"--format {fmt}: use markdown or json")
    if model and not llm:
        fail("--model goes with --llm")
    desc = pr_module.describe(rev_range, db_path=db, weave_dir=weave_dir)
    if llm:
        model = model or pr_module.DEFAULT_MODEL
        try:
            desc.summary, desc.summary_model = pr_module.llm_summary(desc, model), model
        except pr_module.LLMError as e:
            typer.echo(f"lit: --llm failed: {e}; printing the deterministic description", err=True)
    if fmt == "json":
        _echo_json(pr_module.to_json(desc))
    elif sys.stdout.isatty():  # read, not piped to gh: no escape sequence reaches the terminal
        from lit.terminal import safe

        typer.echo(safe(pr_module.to_markdown(desc)), nl=False)
    else:
        typer.echo(pr_module.to_markdown(desc), nl=False)


# --- git linkage (issue 3) -----------------------------------------------------------------------

hooks_app = typer.Typer(cls=LitGroup, help="Bind commits made outside a session (a person reviews, then commits) to "
                        "the threads that wrote them.", no_args_is_help=True)
app.add_typer(hooks_app, name="hooks")


@hooks_app.command("install")
def hooks_install(repo: str = typer.Option(".", "--repo", help="The repository (default: this one).")) -> None:
    """Install lit's git hooks in this repository (idempotent; your own hooks keep running first),
    and set notes.rewriteRef so amend and rebase keep lit's notes.

    Example: lit hooks install
    """
    from lit.git import hooks
    from lit.git.run import repo_root

    root = repo_root(repo)
    if root is None:
        fail(f"{repo} is not in a git repository")
    names = hooks.install(root)
    typer.echo(f"lit: hooks {', '.join(names)} installed in {hooks.user_hooks_dir(root)}; "
               "notes.rewriteRef includes refs/notes/lit")


@hooks_app.command("uninstall")
def hooks_uninstall(repo: str = typer.Option(".", "--repo", help="The repository (default: this one).")) -> None:
    """Remove lit's git hooks (your own hooks are put back as they were).

    Example: lit hooks uninstall
    """
    from lit.git import hooks
    from lit.git.run import repo_root

    root = repo_root(repo)
    if root is None:
        fail(f"{repo} is not in a git repository")
    removed = hooks.uninstall(root)
    typer.echo(f"lit: hooks removed: {', '.join(removed) or 'none were installed'}")


@app.command()
def sync(
    remote: str = typer.Argument("origin", help="The git remote to share notes with."),
    no_push: bool = typer.Option(False, "--no-push", help="Only fetch and merge a teammate's notes."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Fetch, merge and push lit's notes (refs/notes/lit) with a remote. Notes hold reasoning:
    lit never pushes them on its own, only when you run this. A teammate's notes are merged,
    never overwritten.

    Example: lit sync origin
    """
    from dataclasses import asdict

    from lit.git.run import repo_root
    from lit.git.sync import sync as do_sync

    root = repo_root(".")
    if root is None:
        fail("not in a git repository")
    result = do_sync(root, remote, push=not no_push)
    if as_json:
        _echo_json(asdict(result))
    else:
        typer.echo(f"lit: {result.notes} notes in refs/notes/lit"
                   + (f"; fetched from {remote}" if result.fetched else f"; {remote} had none yet")
                   + (f", {result.merged} merged with yours" if result.merged else "")
                   + (f"; pushed to {remote}" if result.pushed else ""))
        if result.unreadable:
            typer.echo(f"lit: {len(result.unreadable)} notes did not validate and are kept as they were under "
                       f"refs/lit/unreadable/ (git cat-file -p {result.unreadable[0]})")


@app.command()
def relink(
    rev_range: str = typer.Argument("HEAD", metavar="RANGE", help="Commits to look at (default: HEAD's history)."),
    db: str = DB_OPTION,
) -> None:
    """Restore notes from `Lit-Thread:` trailers where they were lost (a squash merge on a host,
    a cherry-pick), from the DB or from the thread's note on its original commit; a commit with no
    trailer left is matched by content with the threads whose commits no branch reaches.

    Example: lit relink main~20..main
    """
    from lit import store
    from lit.git.run import repo_root
    from lit.git.sync import relink as do_relink

    root = repo_root(".")
    if root is None:
        fail("not in a git repository")
    path = store.resolve_db_path(db)
    result = do_relink(root, store.connect(path) if path.exists() else None, rev_range)
    for commit, thread in result.relinked:
        typer.echo(f"{commit[:10]}  thread {thread}  relinked")
    for commit, thread in result.missing:
        typer.echo(f"{commit[:10]}  thread {thread}  not found (in neither the DB nor a note)")
    for m in result.by_content:
        for t in m.threads:
            typer.echo(f"{m.commit[:10]}  thread {t.thread}  relinked by content (no trailer): {t.found} of its "
                       f"{t.lines} lines found ({100 * t.found // max(t.lines, 1)}%); "
                       + ("it was pending" if t.was == "pending" else f"was on {t.was[:10]}"))
        typer.echo(f"{m.commit[:10]}  {m.explained} of its {m.added} added lines given to those threads' steps")
    if not result.relinked and not result.missing and not result.by_content:
        typer.echo("lit: every commit with a Lit-Thread trailer has its note")


@app.command()
def redact(
    db: str = DB_OPTION,
    notes_too: bool = typer.Option(True, "--notes/--no-notes", help="Also rewrite this repository's notes."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would change, change nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Scrub secrets from the DB (and this repository's notes) with the current patterns, including
    any added since in lit's config ([redact] patterns). The old bytes leave the DB file too.

    Example: lit redact --dry-run
    """
    from lit import redact as r
    from lit import store
    from lit.git import notes
    from lit.git.run import repo_root

    counts = r.scrub_db(store.connect(db, create=False), dry_run=dry_run)
    root = repo_root(".") if notes_too else None
    counts["notes"] = notes.scrub(root, dry_run=dry_run) if root else 0
    if as_json:
        _echo_json(counts)
        return
    verb = "would change" if dry_run else "changed"
    typer.echo(f"lit: {verb} " + ", ".join(f"{n} {k}" for k, n in counts.items())
               + ("" if root or not notes_too else " (not in a git repository: no notes)"))


@app.command("_hook", hidden=True, context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def hook(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Run by lit's git hooks; not for people."""
    from lit.git.hookrun import main  # hooks installed by an earlier lit call `lit _hook`

    stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    raise typer.Exit(main(name, list(ctx.args), stdin))


def _usage_error(e: click_errors.UsageError) -> str:
    """click's usage error in one line: what is wrong, and where the help is."""
    command = e.ctx.command_path if e.ctx else "lit"
    message = e.format_message().replace("\n", " ").rstrip(".")
    message = message[0].lower() + message[1:] if message[:1].isupper() and message[1:2].islower() else message
    return f"{command}: {message} (see {command} --help)"


def main() -> None:
    try:
        code = typer.main.get_command(app).main(prog_name="lit", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except click_errors.NoArgsIsHelpError as e:
        typer.echo(e.format_message(), err=True)
        sys.exit(e.exit_code)
    except click_errors.UsageError as e:
        typer.echo(_usage_error(e), err=True)
        sys.exit(e.exit_code)
    except typer.Abort:
        sys.exit(130)
    except click_errors.ClickException as e:
        typer.echo(f"lit: {e.format_message()}", err=True)
        sys.exit(e.exit_code)
    except LitError as e:
        typer.echo(f"lit: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
