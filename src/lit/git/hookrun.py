"""Where lit's git hooks start (`python -m lit.git.hookrun NAME ARGS`), kept light: a hook with
nothing to do pays the Python start and one read of git or of the DB, about 40 ms, not the
150-300 ms of loading lit's linking code (three hooks run on every commit). Nothing to do: for
post-commit, no `Lit-Thread:` trailer on the new commit (in a session or not); for commit-msg, no
amend or reword; outside a session, for prepare-commit-msg, no pending thread in this repository,
and for post-rewrite, no bound commit among those rewritten. Only when there is something to do
is `lit.git.link` loaded.

A hook never fails a commit (git ignores post-* results, and a trailer lit cannot add is not
worth a refused commit): a problem is said in one line on stderr.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from lit.dbfile import StoreError, open_read_only
from lit.git.run import TRAILER, GitError, git, git_dir
from lit.paths import resolve_db_path


def _ancestors(limit: int = 4) -> list[str]:
    """The command lines of this process's parents, nearest first (the hook's shell, then git)."""
    out: list[str] = []
    pid = os.getppid()
    for _ in range(limit):
        if pid <= 1:
            break
        proc = Path(f"/proc/{pid}")
        try:
            if proc.exists():
                out.append(" ".join((proc / "cmdline").read_bytes().decode("utf-8", "replace").split("\0")))
                pid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            else:  # no /proc (macOS): ps says the same
                ppid, _, args = _ps(pid).partition(" ")
                out.append(args)
                pid = int(ppid)
        except (OSError, ValueError, IndexError):
            break
    return out


def _ps(pid: int) -> str:
    return subprocess.run(["ps", "-o", "ppid=,args=", "-p", str(pid)], capture_output=True, text=True,
                          check=False).stdout.strip()


def rewritten_commit(repo: str) -> str | None:
    """The commit this commit replaces, when git is rewriting one with a new message: a reword in
    `git rebase -i` (the sequencer's todo names it), or `git commit --amend` (HEAD)."""
    if "reword" in os.environ.get("GIT_REFLOG_ACTION", ""):
        done = git_dir(repo) / "rebase-merge" / "done"
        try:
            last = done.read_text().strip().splitlines()[-1].split()
        except (OSError, IndexError):
            last = []
        if len(last) > 1 and last[0] in ("reword", "r"):
            return last[1]
    if any(" commit " in f" {cmd} " and " --amend" in f" {cmd} " for cmd in _ancestors()):
        return "HEAD"
    return None


def _db_says(db_path: Path, sql: str, params: list[str]) -> bool:
    """Whether a query of the DB finds a row; True when the DB cannot be asked (the full hook then
    finds out, and says why)."""
    try:
        conn, _ = open_read_only(db_path)
        try:
            return conn.execute(sql, params).fetchone() is not None
        finally:
            conn.close()
    except (StoreError, sqlite3.Error):
        return True


def has_trailer(cwd: str) -> bool:
    """Whether HEAD names a thread in a `Lit-Thread:` trailer."""
    return bool(git(["log", "-1", f"--format=%(trailers:key={TRAILER},valueonly)", "HEAD", "--"], cwd,
                    check=False).strip())


def has_work(name: str, args: list[str], stdin: str, repo: str, db_path: Path) -> bool:
    """Whether prepare-commit-msg or post-rewrite has anything to do outside a session (cheap, and
    True when unsure)."""
    if name == "prepare-commit-msg":  # a person committing what a finished session's agent wrote
        if not args or len(args) > 1 and args[1] in ("merge", "squash"):
            return False
        return _db_says(db_path, "SELECT 1 FROM threads WHERE status = 'pending' AND repo_root = ? LIMIT 1", [repo])
    if name == "post-rewrite":  # only commits lit bound move
        olds = [line.split()[0] for line in stdin.splitlines() if len(line.split()) >= 2]
        if not olds:
            return False
        marks = ",".join("?" * len(olds))
        return _db_says(db_path, f"SELECT 1 FROM threads WHERE commit_sha IN ({marks}) LIMIT 1", olds)
    return False


def main(name: str, args: list[str], stdin: str = "") -> int:
    session_id = os.environ.get("LIT_SESSION") or None
    try:
        if name == "post-commit" and not has_trailer(os.getcwd()):
            return 0  # nothing to bind, in a session or not: one git call, before even finding the repository
        repo = git(["rev-parse", "--show-toplevel"], os.getcwd())
        if name == "commit-msg":  # needs no DB: the trailers are in git
            old = rewritten_commit(repo) if args else None
            if old:
                from lit.git.hooks import keep_trailers  # noqa: PLC0415 - only when rewriting

                keep_trailers(repo, args[0], old)
            return 0
        db_path = resolve_db_path(None)
        if not db_path.is_file():
            return 0
        if not session_id and name != "post-commit" and not has_work(name, args, stdin, repo, db_path):
            return 0  # (a post-commit that got here has a trailer to bind)
        from lit.git.link import run_hook  # noqa: PLC0415 - the linking code, only when there is work

        run_hook(name, repo, session_id, args, stdin)
    except (GitError, OSError, ValueError) as e:
        print(f"lit: {name} hook: {e}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    hook_name, hook_args = sys.argv[1], sys.argv[2:]
    sys.exit(main(hook_name, hook_args, sys.stdin.read() if hook_name == "post-rewrite" else ""))
