"""`lit demo`: lit's whole loop on a fresh machine, offline, in one command.

It makes a new git repository, serves the recorded session of examples/agent.py building
wordcount.py (`lit replay` of the thread shipped with lit), and runs that agent under
`lit record` against the replay: the agent really writes the files, runs the tests and commits,
and lit's hooks link the commit to its thread. Then it shows `lit blame` of a file the agent
wrote, writes the woven page and the pull request description, and says what to run next.
No API key and no network: the model's side is the recording, on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lit.errors import LitError
from lit.git import notes
from lit.git.run import run as run_git

_PACKAGE = Path(__file__).resolve().parent

# The repository the recorded session started from; the recording edits this README, so the
# demo must start from exactly this text.
SEED_README_LAST_LINE = "Small command-line tools, one file each, standard library only."
SEED_README = f"# tools\n\n{SEED_README_LAST_LINE}\n"
SEED_AUTHOR = ("Ada Example", "ada@example.com")
DEMO_FILE = "wordcount.py"  # the file whose blame the demo shows
FAKE_KEY = "sk-ant-api03-lit-demo-replay-needs-no-key-0000000000000000000000000000-AA"


def _data_file(name: str, checkout_path: str) -> Path:
    # Installed: lit/demo_data/ inside the package (hatch force-include from examples/).
    # From a checkout or an editable install: examples/ at the top of the repository.
    inside = _PACKAGE / "demo_data" / name
    return inside if inside.is_file() else _PACKAGE.parent.parent / checkout_path


def demo_thread_file() -> Path:
    return _data_file("wordcount.jsonl", "examples/threads/wordcount.jsonl")


def agent_file() -> Path:
    return _data_file("agent.py", "examples/agent.py")


def git(repo: Path, *args: str, check: bool = True) -> str:
    proc = run_git(args, repo)
    if check and proc.returncode != 0:
        raise LitError(f"git {' '.join(args)} failed in {repo}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def seed_repo(repo: Path) -> str:
    """A new repository with one commit (a README); returns that commit's SHA."""
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    for key, value in (("user.name", SEED_AUTHOR[0]), ("user.email", SEED_AUTHOR[1]),
                       ("commit.gpgsign", "false")):  # the user's global signing must not stop the demo
        git(repo, "config", key, value)
    (repo / "README.md").write_text(SEED_README)
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "Start the tools repository")
    return git(repo, "rev-parse", "HEAD")


@dataclass
class DemoResult:
    directory: Path
    repo: Path
    db: Path
    base: str = ""
    commit: str | None = None
    thread: str | None = None  # from the Lit-Thread trailer
    note: bool = False
    blame: str = ""
    page: Path | None = None
    pr: Path | None = None
    seconds: float = 0.0


def _lit(args: list[str], *, cwd: Path, env: dict, capture: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lit", *args], cwd=cwd, env=env, text=True,
                          capture_output=capture, stdin=subprocess.DEVNULL)


def run(directory: str | os.PathLike | None = None, *, echo: Callable[[str], None] = print,
        agent_output: bool = True) -> DemoResult:
    """The whole demo; `echo` receives what a user reads. Raises LitError on a user-visible failure."""
    from lit import replay  # noqa: PLC0415 - keeps `lit --help` fast

    started = time.monotonic()
    if directory:
        target = Path(directory).expanduser().resolve()
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise LitError(f"{target} is not an empty directory: give lit demo a new or empty one")
        target.mkdir(parents=True, exist_ok=True)
    else:
        target = Path(tempfile.mkdtemp(prefix="lit-demo-"))
    result = DemoResult(directory=target, repo=target / "tools", db=target / "lit.db")

    recording = replay.load(str(demo_thread_file()))
    prompt = replay.prompt_of(recording)
    result.base = seed_repo(result.repo)
    echo(f"lit demo: a new repository in {result.repo}")
    echo(f"lit demo: replaying a recorded session of examples/agent.py ({len(recording.turns)} turns)"
         " on 127.0.0.1, no API key, no network")
    # The agent runs as a person would type it (`python ../agent.py PROMPT`, this Python first on
    # PATH), so the session's command reads that way in `lit sessions` too.
    shutil.copyfile(agent_file(), target / "agent.py")
    python = Path(sys.executable)
    command = [python.name, "../agent.py", prompt]
    echo(f"lit demo: lit record -- {python.name} ../agent.py {prompt[:60]!r}...")
    if agent_output:
        echo("")

    env = {**os.environ, "LIT_DB": str(result.db), "ANTHROPIC_API_KEY": FAKE_KEY,
           "LIT_AGENT_MODEL": recording.turns[0].response.get("model") or "claude-sonnet-4-6",
           "PATH": os.pathsep.join([str(python.parent), os.environ.get("PATH", "")])}
    env.pop("ANTHROPIC_BASE_URL", None)
    mismatches: list[str] = []
    with replay.Replay(recording, on_mismatch=lambda m: mismatches.append(m.message)) as server:
        proc = _lit(["record", "--db", str(result.db), "--upstream", server.url, "--", *command],
                    cwd=result.repo, env=env, capture=not agent_output)
    if proc.returncode != 0 or mismatches:
        detail = mismatches[0] if mismatches else (proc.stderr or "").strip().splitlines()[-1:] or ["?"]
        raise LitError(f"the replayed agent failed (exit {proc.returncode}): "
                       f"{detail if isinstance(detail, str) else detail[0]}")

    head = git(result.repo, "rev-parse", "HEAD")
    if head == result.base:
        raise LitError("the replayed agent did not commit")
    result.commit = head
    result.thread = (notes.trailer_threads([head], result.repo).get(head) or [None])[0]
    result.note = head in notes.listing(result.repo)

    if agent_output:
        echo("")
    blame = _lit(["blame", DEMO_FILE], cwd=result.repo, env=env)
    result.blame = blame.stdout if blame.returncode == 0 else ""
    echo(f"$ lit blame {DEMO_FILE}")
    echo(result.blame.rstrip() or f"(lit blame failed: {blame.stderr.strip()})")
    page = target / "wordcount-commit.html"
    woven = _lit(["weave", "HEAD", "-o", str(page)], cwd=result.repo, env=env)
    result.page = page if woven.returncode == 0 and page.exists() else None
    pr = _lit(["pr", f"{result.base}..HEAD"], cwd=result.repo, env=env)
    if pr.returncode == 0:
        result.pr = target / "PR.md"
        result.pr.write_text(pr.stdout)
    result.seconds = time.monotonic() - started
    for line in summary_lines(result):
        if line or agent_output:  # -q: compact, no blank lines
            echo(line)
    return result


def summary_lines(r: DemoResult) -> list[str]:
    lines = ["", f"lit demo: done in {r.seconds:.1f} s. The agent committed {r.commit[:7] if r.commit else '-'}"
             + (f", linked to thread {r.thread} (Lit-Thread trailer" + (", note in refs/notes/lit)" if r.note else ")")
                if r.thread else " (no Lit-Thread trailer: the git hooks did not run)")]
    lines.append(f"  repository    {r.repo}")
    lines.append(f"  lit DB        {r.db}")
    lines.append(f"  the agent     {r.directory / 'agent.py'}")
    if r.page:
        lines.append(f"  woven page    {r.page}")
    if r.pr:
        lines.append(f"  PR text       {r.pr}")
    lines += ["", "Next:", f"  cd {r.repo}", f"  export LIT_DB={r.db}"]
    lines.append(f"  lit show {r.thread or 'THREAD'}           # the thread step by step")
    lines.append(f"  lit blame {DEMO_FILE} --full    # each line with its prompt and reasoning")
    lines.append("  lit weave HEAD --open           # the commit beside its reasoning")
    lines.append("  lit serve                       # browse every thread in Datasette")
    return lines
