"""Binding threads to commits: what lit's git hooks do.

prepare-commit-msg: snapshot the working tree (the effects of the tool calls still running, such as
the agent's `git commit` itself), and if the staged changes include lines the thread's tool calls
wrote, add `Lit-Thread: <id>` with git's own trailer machinery.
post-commit: for each Lit-Thread trailer of the new commit, compute its line map over the
session's snapshot chain, write the note, bind the thread, and open the next thread.
post-rewrite: amend and rebase give commits new SHAs; the DB follows them (git carries the notes
itself, through notes.rewriteRef).
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import urllib.parse

import sqlite_utils

from lit import store, threads
from lit.git import linemap, notes, snapshot
from lit.git.notes import TRAILER
from lit.git.run import EMPTY_TREE, git

# The relay answers a sync within its own bound (lit.proxy.relay.SYNC_WAIT, 10 s); this one is for
# a relay that does not answer at all.
SYNC_TIMEOUT = 15.0


def pending_tool_calls(db: sqlite_utils.Database, session_id: str) -> list[str]:
    """Tool calls of the session whose results have not been sent back yet: they are running now.
    And answers whose text edits files (aider's) that no snapshot has captured yet."""
    rows = db.execute(
        """SELECT c.id FROM steps c WHERE c.session_id = ? AND (c.kind = 'tool_call' AND NOT EXISTS (
             SELECT 1 FROM steps r WHERE r.session_id = c.session_id AND r.kind = 'tool_result'
             AND r.tool_use_id = c.tool_use_id) OR c.kind = 'text' AND c.tool_input IS NOT NULL AND NOT EXISTS (
             SELECT 1 FROM snapshots s WHERE s.session_id = c.session_id AND instr(s.step_ids, '"' || c.id || '"')))
           ORDER BY c.created_at, c.seq""", [session_id]).fetchall()
    return [r[0] for r in rows]


def agent_paths(db: sqlite_utils.Database, repo: str, thread_id: str) -> set[str]:
    """Paths changed by snapshots that captured the thread's tool calls (against their parent; a
    snapshot without one, or whose commit is gone, adds none). One git call for all of them."""
    commits = [commit for commit, step_ids in db.execute(
        "SELECT commit_sha, step_ids FROM snapshots WHERE thread_id = ? ORDER BY seq", [thread_id]).fetchall()
        if json.loads(step_ids or "[]")]
    if not commits:
        return set()
    out = git(["log", "--no-walk=unsorted", "--ignore-missing", "--stdin", "--format=%x00%P", "--name-only",
               "--no-renames"], repo, input="\n".join(commits) + "\n", check=False)
    paths: set[str] = set()
    for record in out.split("\x00")[1:]:  # "<parents>\n\n<path>\n..." per commit
        parents, *names = record.split("\n")
        if parents.strip():
            paths.update(p for p in names if p)
    return paths


def staged_paths(repo: str) -> set[str]:
    base = git(["rev-parse", "--verify", "-q", "HEAD"], repo, check=False) or EMPTY_TREE
    out = git(["diff", "--cached", "--name-only", "--no-renames", base], repo, check=False)
    return {p for p in out.splitlines() if p}


def threads_for_commit(db: sqlite_utils.Database, repo: str, session_id: str | None) -> list[str]:
    """The threads whose tool calls changed what is staged: the session's open thread (during a
    session), else the repository's pending threads (a person committing after a session)."""
    if session_id:
        tid = store.current_thread(db, session_id)
        candidates = [tid] if tid else []
    else:
        candidates = [r[0] for r in db.execute(
            "SELECT id FROM threads WHERE status = 'pending' AND repo_root = ? ORDER BY started_at DESC",
            [repo]).fetchall()]
    staged = staged_paths(repo)
    return [t for t in candidates if agent_paths(db, repo, t) & staged]


def prepare_commit_msg(db: sqlite_utils.Database, repo: str, session_id: str | None, msg_file: str) -> list[str]:
    if session_id:
        tid = store.current_thread(db, session_id)
        if tid:
            snapshot.record_snapshot(db, repo, session_id, tid, "commit", pending_tool_calls(db, session_id))
    threads = threads_for_commit(db, repo, session_id)
    if not threads:
        return []
    args = ["interpret-trailers", "--in-place", "--if-exists", "addIfDifferent"]
    for tid in threads:
        args += ["--trailer", f"{TRAILER}: {tid}"]
    if _assisted_by(repo):
        who = _agent_and_model(db, threads[0])
        if who:
            args += ["--trailer", f"Assisted-by: {who}"]
    git(args + [msg_file], repo)
    return threads


def _assisted_by(repo: str) -> bool:
    value = git(["config", "--bool", "lit.assistedBy"], repo, check=False)
    if value:
        return value == "true"
    try:
        from lit.config import load_config  # noqa: PLC0415

        return bool(load_config().get("git", {}).get("assisted_by"))
    except Exception:  # noqa: BLE001 - no config is the default: off
        return False


def _agent_and_model(db: sqlite_utils.Database, thread_id: str) -> str | None:
    row = db.execute("""SELECT s.agent, (SELECT e.model FROM exchanges e WHERE e.thread_id = t.id
                               AND e.model IS NOT NULL ORDER BY e.seq DESC LIMIT 1)
                        FROM threads t JOIN sessions s ON s.id = t.session_id WHERE t.id = ?""",
                     [thread_id]).fetchone()
    if not row or not row[0]:
        return None
    agent = row[0].split(" ")[0]
    return f"{agent} ({row[1]})" if row[1] else agent


def trailer_threads(repo: str, commit: str) -> list[str]:
    """The threads the `Lit-Thread:` trailers of one commit name."""
    return next(iter(notes.trailer_threads([commit], repo).values()), [])


def bind(db: sqlite_utils.Database, repo: str, commit: str, thread_id: str,
         session_id: str | None = None) -> linemap.LineMap | None:
    """Compute the line map of `commit` for `thread_id`, write the note, bind the thread."""
    thread = db["threads"].get(thread_id) if db["threads"].count_where("id = ?", [thread_id]) else None
    if thread is None or thread["status"] == "bound" and thread["commit_sha"] not in (None, commit):
        return None  # one thread, one commit
    tip = snapshot.latest(repo, thread["session_id"])
    lm = linemap.compute(repo, commit, tip, linemap.step_chooser(db))
    linemap.save(db, lm, thread_id)
    now = store.now()
    with store.write_transaction(db):
        db.execute("UPDATE threads SET status = 'bound', commit_sha = ?, bound_at = ?,"
                   " ended_at = COALESCE(ended_at, ?) WHERE id = ?", [commit, now, now, thread_id])
        if session_id and session_id == thread["session_id"] and thread["status"] == "open":
            store.open_thread(db, session_id, repo, base_snapshot=tip)
    notes.write(repo, commit, threads.note_for_commit(db, thread_id, commit))
    snapshot.prune(db, repo, thread["session_id"])
    return lm


def post_commit(db: sqlite_utils.Database, repo: str, session_id: str | None) -> list[str]:
    bound = []
    # HEAD's sha and its trailers in one git call (a commit without a Lit-Thread trailer is left out).
    for commit, tids in notes.trailer_threads(["HEAD"], repo).items():
        bound += [tid for tid in tids if bind(db, repo, commit, tid, session_id) is not None]
    return bound


def post_rewrite(db: sqlite_utils.Database, repo: str, pairs: str) -> int:
    """`old new` lines from git: the threads and line maps follow their commits."""
    moved = 0
    with store.write_transaction(db):
        for line in pairs.splitlines():
            parts = line.split()
            if len(parts) < 2:
                continue
            old, new = parts[0], parts[1]
            cur = db.execute("UPDATE threads SET commit_sha = ? WHERE commit_sha = ?", [new, old])
            db.execute("UPDATE line_map SET commit_sha = ? WHERE commit_sha = ?", [new, old])
            moved += cur.rowcount
    return moved


def catch_up(session_id: str | None) -> str | None:
    """Ask the running session to write everything its relay passed on before now, and wait for
    it (the recorder is another process, and may be behind: the answer that asked for this commit
    may not be written yet). Returns why it could not, for one line, or None."""
    url = os.environ.get("LIT_SYNC")
    if not url or not session_id:
        return None
    where = urllib.parse.urlsplit(url)
    if where.scheme != "http" or where.hostname not in ("127.0.0.1", "localhost", "::1") or not where.port:
        return None  # only ever the session's own relay, on this machine
    conn = http.client.HTTPConnection(where.hostname, where.port, timeout=SYNC_TIMEOUT)
    try:
        conn.request("POST", where.path, headers={"Lit-Session": session_id})
        resp = conn.getresponse()
        answer = json.loads(resp.read()) if resp.status == 200 else {}
        answer = answer if isinstance(answer, dict) else {}
    except ConnectionRefusedError:
        answer = {"why": "the session's lit is gone"}
    except (OSError, http.client.HTTPException, ValueError) as e:
        answer = {"why": f"the session's relay did not answer ({type(e).__name__})"}
    finally:
        conn.close()
    if answer.get("synced") is True:
        return None
    return f"{answer.get('why') or 'the session could not be asked'}: the thread holds the steps written so far"


def run_hook(name: str, repo: str, session_id: str | None, args: list[str], stdin: str = "") -> None:
    """What the hook `name` does once lit.git.hookrun found work for it (the DB exists): never
    fails a commit, says one line on a problem."""
    try:
        if name in ("prepare-commit-msg", "post-commit"):
            if name == "prepare-commit-msg" and (not args or len(args) > 1 and args[1] in ("merge", "squash")):
                return
            why = catch_up(session_id)
            if why:
                print(f"lit: {name} hook: {why}", file=sys.stderr)
        db = store.connect(store.resolve_db_path(None))
        if name == "prepare-commit-msg":
            prepare_commit_msg(db, repo, session_id, args[0])
        elif name == "post-commit":
            post_commit(db, repo, session_id)
        elif name == "post-rewrite":
            post_rewrite(db, repo, stdin)
    except Exception as e:  # noqa: BLE001 - see the docstring
        print(f"lit: {name} hook: {e}", file=sys.stderr)
