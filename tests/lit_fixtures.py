"""Real git repositories with lit's notes and DB rows, for the readers' tests (blame, weave, pr,
serve). Notes follow docs/ARCHITECTURE.md "The line map and the note" exactly, written with
`git notes --ref=lit add`; DB rows go through the store's tables.

    from lit_fixtures import build_story
    story = build_story(tmp_path / "repo", db_path=tmp_path / "lit.db")
    story.commits["write"], story.threads["write"], story.steps["edit"]

The story (the file wordcount.py, as the README's examples show it):
  person   app.py, an ordinary commit by Ann Person
  write    thread T1 (note): a Write of wordcount.py, an Edit of line 5, a person's line 13
  lines    thread T2 (DB only, no note): an Edit inserting count_lines() as lines 8-10
  tidy     thread T3 (only a `Lit-Thread:` trailer): a last line appended
"""

from __future__ import annotations

import atexit
import copy
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lit import store
from lit.git import hooks, snapshot

T1, T2, T3 = "3f9c0a1b2c4d", "8d7e6f5a4b3c", "5e4d3c2b1a09"
S1 = "a0b1c2d3e4f5"
BASE_TIME = 1795894800  # 2026-11-28 19:40 UTC, so pages and blame show stable dates


def git(repo: str | os.PathLike, *args: str, input: str | None = None, when: int | None = None,
        author: tuple[str, str] | None = None) -> str:
    env = dict(os.environ)
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"{when} +0000"
    if author:
        env["GIT_AUTHOR_NAME"], env["GIT_AUTHOR_EMAIL"] = author
    proc = subprocess.run(["git", *args], cwd=repo, input=input, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise RuntimeError(f"git {' '.join(args)}: {proc.stderr}")
    return proc.stdout.strip()


REPO_CONFIG = "[user]\n\tname = Lit Agent\n\temail = agent@example.com\n[commit]\n\tgpgsign = false\n"


def init_repo(path: str | os.PathLike, files: dict[str, str] | None = None) -> Path:
    """A git repository at `path` on branch main with a committer of its own (the `repo` fixture
    of conftest.py); `files` (path -> text), when given, are its first commit ("init")."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    fresh = not (path / ".git").exists()
    git(path, "init", "-q", "-b", "main")
    if fresh:  # what three `git config` runs would write, without the three processes
        with open(path / ".git" / "config", "a") as config:
            config.write(REPO_CONFIG)
    else:
        for key, value in (("user.name", "Lit Agent"), ("user.email", "agent@example.com"),
                           ("commit.gpgsign", "false")):
            git(path, "config", key, value)
    if files:
        commit_files(path, files, "init")
    return path


def commit_files(repo: str | os.PathLike, files: dict[str, str], message: str, *, when: int | None = None,
                 author: tuple[str, str] | None = None) -> str:
    """Write `files` (path -> content), commit them, return the full SHA."""
    for rel, content in files.items():
        p = Path(repo) / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    git(repo, "add", "--", *files)
    git(repo, "commit", "-q", "-m", message, when=when, author=author)
    return git(repo, "rev-parse", "HEAD")


def make_note(commit: str, thread: str, *, files: dict[str, list], steps: dict[str, dict],
              prompts: list[dict], session: str = S1, agent: str = "claude-cli/2.1.197",
              models: list[str] | None = None, started_at: str = "2026-11-28T19:40:00Z",
              ended_at: str = "2026-11-28T19:52:10Z", usage: dict | None = None) -> dict:
    """A note in the contract's format (version 1)."""
    return {
        "version": 1,
        "thread": thread,
        "session": session,
        "commit": commit,
        "agent": agent,
        "models": models or ["claude-sonnet-4-6"],
        "started_at": started_at,
        "ended_at": ended_at,
        "usage": usage or {"input_tokens": 18234, "output_tokens": 1620,
                           "cache_creation_input_tokens": 4096, "cache_read_input_tokens": 52110},
        "prompts": prompts,
        "files": files,
        "steps": steps,
        "truncated": False,
    }


def add_note(repo: str | os.PathLike, commit: str, note: dict) -> None:
    git(repo, "notes", "--ref=lit", "add", "-f", "-F", "-", commit, input=json.dumps(note))


def add_db_thread(db_path: str | os.PathLike, *, thread: str, commit: str | None, steps: list[dict],
                  line_map: dict[str, list], session: str = S1, repo_root: str | None = None,
                  agent: str = "claude-cli/2.1.197", model: str = "claude-sonnet-4-6",
                  tokens: tuple[int, int] = (9100, 840), started_at: float = BASE_TIME) -> None:
    """A bound thread in the DB: its session, one exchange (model and tokens), its steps (dicts
    with kind, text, tool_name, tool_input, tool_use_id, is_error; seq from their order) and
    its line map rows."""
    db = store.connect(db_path)
    with db.conn:
        db["sessions"].insert({"id": session, "started_at": started_at, "argv": json.dumps(["claude"]),
                               "cwd": repo_root, "repo_root": repo_root, "agent": agent}, ignore=True)
        db["threads"].insert({"id": thread, "session_id": session, "seq": 1, "started_at": started_at,
                              "ended_at": started_at + 300, "status": "bound" if commit else "pending",
                              "commit_sha": commit, "bound_at": started_at + 300 if commit else None,
                              "repo_root": repo_root, "title": steps[0].get("text", "")[:80]})
        db["exchanges"].insert({"id": f"{session}.{thread}", "session_id": session, "seq": 1,
                                "started_at": started_at, "model": model, "thread_id": thread, "role": "main",
                                "input_tokens": tokens[0], "output_tokens": tokens[1], "complete": 1})
        for seq, s in enumerate(steps, 1):
            row = {"id": f"{thread}.{seq}", "thread_id": thread, "session_id": session, "seq": seq,
                   "created_at": started_at + seq, "kind": s["kind"], "text": s.get("text"),
                   "tool_name": s.get("tool_name"), "tool_use_id": s.get("tool_use_id"),
                   "tool_input": json.dumps(s["tool_input"]) if "tool_input" in s else None,
                   "is_error": int(bool(s.get("is_error"))), "model": model}
            db["steps"].insert(store.packed_step(row))  # as the recorder stores them
        for path, ranges in line_map.items():
            for start, end, step in ranges:
                db["line_map"].insert({"commit_sha": commit, "path": path, "line_start": start,
                                       "line_end": end, "step_id": step, "thread_id": thread})
    db.conn.close()


# --- lit's command line, in process ------------------------------------------------------------------


def lit_in_process(args: list[str], cwd: str | os.PathLike, env: dict[str, str] | None = None,
                   input: str | None = None) -> subprocess.CompletedProcess:
    """`lit ARGS` run as the console script runs it (lit.cli.main: its exit code, its one-line
    errors), in this process: for the tests of what a command does, without a Python start and
    lit's imports (~0.2 s of CPU each). `env` is the whole environment of the run (os.environ by
    default); stdin is `input`, stdout and stderr are captured. What lit keeps per process is
    cleared first, as in a new one. An exception lit lets out is raised here, where a real run
    would print its traceback. The end-to-end tests (test_cli, test_pr, test_terminal, ...) run
    `python -m lit` itself."""
    from click.testing import CliRunner

    from lit import cli, redact
    from lit.git import notes

    notes._said.clear()
    redact.default.cache_clear()
    overrides: dict[str, str | None] | None = None
    if env is not None:
        overrides = {k: None for k in os.environ if k not in env}
        overrides.update(env)
    before, argv = os.getcwd(), sys.argv
    with CliRunner().isolation(input=input, env=overrides) as (out, err, _):
        os.chdir(cwd)
        sys.argv = ["lit", *map(str, args)]
        try:
            cli.main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.chdir(before)
            sys.argv = argv
    return subprocess.CompletedProcess(["lit", *map(str, args)], code, out.getvalue().decode(),
                                       err.getvalue().decode("utf-8", "backslashreplace"))


# --- a recorded session, in process -------------------------------------------------------------


class Agent:
    """A recorded session as the recorder writes it: steps in the DB, a snapshot per turn."""

    def __init__(self, repo: Path, db_path: Path, hooks_folder: Path, env: dict[str, str] | None = None):
        """`repo`: where the agent runs (a repository, a subfolder of one, a linked worktree);
        `env`: the user's environment that `lit record` was started in (os.environ by default)."""
        self.repo, self.db_path = repo, db_path
        root = git(repo, "rev-parse", "--show-toplevel")
        self.db = store.connect(db_path)
        self.session = store.new_id()
        self.db["sessions"].insert({"id": self.session, "started_at": store.now(), "repo_root": root,
                                    "cwd": str(repo), "argv": "[]", "agent": "test-agent/1.0"})
        self.thread = store.open_thread(self.db, self.session, root)
        snapshot.record_snapshot(self.db, repo, self.session, self.thread, "start")
        base = dict(os.environ if env is None else env)
        self.env = {**base, "LIT_SESSION": self.session, "LIT_DB": str(db_path),
                    **hooks.session_env(base, hooks_folder)}
        self.pending: list[str] = []
        self.prompt("do the work")

    def _step(self, kind: str, **fields) -> str:
        tid = store.current_thread(self.db, self.session)
        seq = store.next_step_seq(self.db, tid)
        sid = f"{tid}.{seq}"
        self.db["steps"].insert({"id": sid, "thread_id": tid, "session_id": self.session, "seq": seq,
                                 "created_at": store.now(), "kind": kind, **fields})
        return sid

    def prompt(self, text: str) -> str:
        return self._step("prompt", text=text)

    def tool(self, name: str, tool_input: dict, effect=None, why: str = "") -> str:
        """A tool call; `effect` is what the tool does to the working tree when it runs."""
        if why:
            self._step("thinking", text=why)
        use_id = "toolu_" + store.new_id()
        sid = self._step("tool_call", tool_name=name, tool_input=json.dumps(tool_input), tool_use_id=use_id)
        if effect:
            effect()
        self.pending.append(sid)
        return sid

    def turn(self) -> None:
        """The next request carries the tool results: the recorder snapshots, then records them."""
        tid = store.current_thread(self.db, self.session)
        snapshot.record_snapshot(self.db, self.repo, self.session, tid, "turn", self.pending)
        for sid in self.pending:
            use_id = self.db["steps"].get(sid)["tool_use_id"]
            self._step("tool_result", text="ok", tool_use_id=use_id)
        self.pending = []

    def write(self, path: str, text: str) -> str:
        return self.tool("Write", {"file_path": path, "content": text}, lambda: (self.repo / path).write_text(text))

    def edit(self, path: str, old: str, new: str) -> str:
        def effect():
            f = self.repo / path
            f.write_text(f.read_text().replace(old, new, 1))
        return self.tool("Edit", {"file_path": path, "old_string": old, "new_string": new}, effect)

    def bash(self, command: str) -> str:
        return self.tool("Bash", {"command": command}, lambda: self.sh("sh", "-c", command))

    def sh(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        """A command the agent runs (in its tool call's environment: lit's session hooks)."""
        return subprocess.run(cmd, cwd=self.repo, check=check, capture_output=True, text=True, env=self.env)

    def commit(self, message: str = "work", add: list[str] | None = None) -> str:
        """The agent's own `git commit` through its shell tool: the hooks run inside the tool call."""
        def effect():
            if add is not None:
                self.sh("git", "add", "--", *add)
            self.sh("git", "commit", "-q", "-m", message)
        self.tool("Bash", {"command": f"git commit -m {message!r}"}, effect)
        self.turn()
        return git(self.repo, "rev-parse", "HEAD")

    def end(self) -> None:
        """What the recorder does at exit (Recorder._on_finish): an end snapshot; the open thread left
        pending when it holds a prompt or a tool call, closed when only words, dropped when empty;
        the session ended; the snapshots no thread needs pruned."""
        tid = store.current_thread(self.db, self.session)
        snapshot.record_snapshot(self.db, self.repo, self.session, tid, "end")
        with store.write_transaction(self.db):
            kinds = {r[0] for r in self.db.execute("SELECT DISTINCT kind FROM steps WHERE thread_id = ?", [tid])}
            if not kinds:
                self.db.execute("DELETE FROM threads WHERE id = ?", [tid])
            else:
                status = "pending" if kinds & {"prompt", "tool_call"} else "closed"
                self.db.execute("UPDATE threads SET status = ?, ended_at = ? WHERE id = ?", [status, store.now(), tid])
            self.db["sessions"].update(self.session, {"ended_at": store.now()})
        snapshot.prune(self.db, self.repo, self.session)

    def person_commits(self, add: list[str], message: str = "reviewed") -> str:
        """After the session, with `lit hooks install`: no LIT_SESSION, only the DB."""
        hooks.install(self.repo)
        env = {**os.environ, "LIT_DB": str(self.db_path)}
        for args in (["add", "--", *add], ["commit", "-q", "-m", message]):
            subprocess.run(["git", *args], cwd=self.repo, check=True, capture_output=True, text=True, env=env)
        return git(self.repo, "rev-parse", "HEAD")


# --- the story --------------------------------------------------------------------------------------

APP = "def hello():\n    return 'hello'\n"

WORDCOUNT_WRITE = '''import sys


def count_words(text):
    return len(text.split(" "))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    for path in argv:
        with open(path) as f:
            print(path, count_words(f.read()))
'''

WORDCOUNT_V1 = WORDCOUNT_WRITE.replace('text.split(" ")', "text.split()") + "    # checked by hand on a 3 MB file\n"

COUNT_LINES = 'def count_lines(text):\n    return text.count("\\n")\n\n\n'


def _insert_after(text: str, line: int, block: str) -> str:
    lines = text.splitlines(keepends=True)
    return "".join(lines[:line]) + block + "".join(lines[line:])


WORDCOUNT_V2 = _insert_after(WORDCOUNT_V1, 7, COUNT_LINES)  # count_lines() is lines 8-11
WORDCOUNT_V3 = WORDCOUNT_V2 + "\n\nif __name__ == \"__main__\":\n    main()\n"

WRITE_WHY = ("I'll write a small module with a pure `count_words()` and a `main()` that reads each file "
             "named on the command line. Keeping the counting separate makes it easy to test.")
EDIT_WHY = ("Splitting on a single space counts runs of spaces as words. `str.split()` with no "
            "argument splits on any whitespace and drops empty strings, which is what `wc -w` does.")
LINES_WHY = "Counting newline characters matches what `wc -l` reports. I'll add it beside count_words()."


@dataclass
class Story:
    repo: Path
    db_path: Path | None
    commits: dict[str, str] = field(default_factory=dict)
    threads: dict[str, str] = field(default_factory=dict)
    steps: dict[str, str] = field(default_factory=dict)
    notes: dict[str, dict] = field(default_factory=dict)


_story_templates: dict[tuple[bool, str | None], Story] = {}


def build_story(repo: str | os.PathLike, db_path: str | os.PathLike | None = None,
                hostile: str | None = None) -> Story:
    """The repository described in this module's docstring. Without db_path, the DB-only thread
    (T2) has no record at all, like a clone that fetched only the notes. `hostile` is added to
    T1's prompt and reasoning (for escaping tests).

    Its commits and notes are the same every time (fixed dates and authors), so it is built once
    per test process and copied after that: a copy costs a few milliseconds, a build some twenty
    git runs. Into a folder or DB that already holds something, it is built there."""
    repo, db = Path(repo), Path(db_path) if db_path else None
    if (repo.exists() and any(repo.iterdir())) or (db is not None and db.exists()):
        return _build_story(repo, db, hostile)
    key = (db is not None, hostile)
    if key not in _story_templates:
        where = Path(tempfile.mkdtemp(prefix="lit-story-"))
        atexit.register(shutil.rmtree, where, True)
        _story_templates[key] = _build_story(where / "repo", where / "lit.db" if db else None, hostile)
    template = _story_templates[key]
    shutil.copytree(template.repo, repo, symlinks=True, dirs_exist_ok=True)
    if db is not None and template.db_path is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal"):
            if Path(f"{template.db_path}{suffix}").exists():
                shutil.copyfile(f"{template.db_path}{suffix}", f"{db}{suffix}")
        conn = sqlite3.connect(db)
        with conn:  # the DB names the repository it was recorded in: this one
            old = str(template.repo)
            conn.execute("UPDATE sessions SET repo_root = ?, cwd = ? WHERE repo_root = ?", [str(repo), str(repo), old])
            conn.execute("UPDATE threads SET repo_root = ? WHERE repo_root = ?", [str(repo), old])
        conn.close()
    return Story(repo=repo, db_path=db, commits=dict(template.commits), threads=dict(template.threads),
                 steps=dict(template.steps), notes=copy.deepcopy(template.notes))


def _build_story(repo: Path, db_path: Path | None, hostile: str | None) -> Story:
    repo = init_repo(repo)
    story = Story(repo=repo, db_path=Path(db_path) if db_path else None)
    person = ("Ann Person", "ann@example.com")
    story.commits["person"] = commit_files(repo, {"app.py": APP}, "Add hello()", when=BASE_TIME - 86400,
                                           author=person)

    # T1: Write, a tool result, reasoning, Edit (line 5), and a person's line 13, in one commit.
    c1 = commit_files(repo, {"wordcount.py": WORDCOUNT_V1},
                      f"Add wordcount.py, a small wc -w\n\nLit-Thread: {T1}", when=BASE_TIME)
    prompt = "Write wordcount.py: print the number of words in each file given on the command line."
    why_write, why_edit = WRITE_WHY, EDIT_WHY
    result = "File created successfully at: wordcount.py"
    if hostile:
        prompt += "\n\n" + hostile
        why_write += "\n\n" + hostile
        result += "\n" + hostile
    steps = {
        f"{T1}.1": {"seq": 1, "kind": "prompt", "text": prompt},
        f"{T1}.3": {"seq": 3, "kind": "tool_call", "tool": "Write",
                    "input": {"file_path": "wordcount.py", "content": WORDCOUNT_WRITE},
                    "why": why_write, "prompt": f"{T1}.1", "result": result, "is_error": False},
        f"{T1}.6": {"seq": 6, "kind": "tool_call", "tool": "Edit",
                    "input": {"file_path": "wordcount.py", "old_string": 'len(text.split(" "))',
                              "new_string": "len(text.split())"},
                    "why": why_edit, "prompt": f"{T1}.1",
                    "result": "The file wordcount.py has been updated.", "is_error": False},
    }
    files = {"wordcount.py": [[1, 4, f"{T1}.3"], [5, 5, f"{T1}.6"], [6, 12, f"{T1}.3"], [13, 13, None]]}
    note = make_note(c1, T1, files=files, steps=steps, prompts=[{"step": f"{T1}.1", "text": prompt}])
    add_note(repo, c1, note)
    story.commits["write"], story.threads["write"], story.notes[c1] = c1, T1, note
    story.steps.update({"prompt": f"{T1}.1", "write": f"{T1}.3", "edit": f"{T1}.6"})

    # T2: in the DB only.
    c2 = commit_files(repo, {"wordcount.py": WORDCOUNT_V2},
                      f"Add count_lines()\n\nLit-Thread: {T2}", when=BASE_TIME + 600)
    if db_path:
        add_db_thread(db_path, thread=T2, commit=c2, repo_root=str(repo), started_at=BASE_TIME + 300, steps=[
            {"kind": "prompt", "text": "Also count lines, like wc -l."},
            {"kind": "thinking", "text": LINES_WHY},
            {"kind": "tool_call", "tool_name": "Edit", "tool_use_id": "toolu_01Lines",
             "tool_input": {"file_path": "wordcount.py", "old_string": "def main", "new_string": COUNT_LINES}},
            {"kind": "tool_result", "tool_use_id": "toolu_01Lines", "text": "The file wordcount.py has been updated."},
            {"kind": "text", "text": "Done: `count_lines()` is in."},
        ], line_map={"wordcount.py": [[8, 11, f"{T2}.3"]]})
    story.commits["lines"], story.threads["lines"] = c2, T2
    story.steps["lines"] = f"{T2}.3"

    # T3: only the trailer.
    story.commits["tidy"] = commit_files(repo, {"wordcount.py": WORDCOUNT_V3},
                                         f"Run main() as a script\n\nLit-Thread: {T3}", when=BASE_TIME + 1200)
    story.threads["tidy"] = T3
    return story


def on_a_terminal(args: list[str], cwd, env: dict | None = None) -> str:
    """lit's stdout on a pseudo-terminal, as in a person's shell (colour on unless `env` has
    NO_COLOR); lit must exit 0."""
    import pty  # noqa: PLC0415 - POSIX only, as the tests that need it

    if env is None:
        env = {**{k: v for k, v in os.environ.items() if k != "NO_COLOR"}, "COLUMNS": "300"}
    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "lit", *args], cwd=cwd, env=env, stdout=child,
                            stderr=subprocess.PIPE)
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(main)
    assert proc.returncode == 0, proc.stderr.read().decode()
    return b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
