"""An agent's own record of a session (Claude Code's transcript, Codex's rollout), imported as a lit
session in two steps: `plan` reads (the DB's record of earlier imports, the repository's commits)
and decides every row; `write` writes them in one transaction, then the notes.

What the plan decides: the steps in lit's kinds (given by the importer, in thread order), one
exchange per API request (model and usage, so tokens add up in `lit serve`), threads cut at the
commits the agent's shell calls made and bound to them, and each bound commit's line map (see
lit.importers.commits). A session imported before gets only the steps added since (an agent
appends to the same file when a session is resumed), and its pending thread is bound when a person
has committed its edits since.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from lit import store, threads
from lit.errors import LitError
from lit.git import notes
from lit.git.run import git
from lit.importers.commits import Commit, Edit, attribute, committed_later, find_commits, line_ranges
from lit.redact import redact_obj
from lit.steps import first_line, redacted_raw

LINE = "\0line"  # where an entry was read (file:line), for warnings; never stored
USAGE_KEYS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


# --- finding an agent's logs -------------------------------------------------------------------


@dataclass(frozen=True)
class AgentLogs:
    """Where and how an agent keeps its sessions' logs, for find_logs."""

    agent: str  # as a user knows it: "Claude Code"
    log: str  # what one log is called: "transcript"
    logs: str  # and several
    command: str  # the command that imports them: "lit import claude-code"
    folder: Callable[[], Path]  # where the agent keeps them (read when called: it follows the environment)
    candidates: Callable[[Path, str], Iterable[Path]]  # the logs under `folder` that may be of a root
    is_log: Callable[[Path], bool]  # a file that is a session's log (not a subagent's, not a FIFO)
    cwd_of: Callable[[Path], str | None]  # the folder the session ran in, as its log says


def find_logs(path: str | os.PathLike | None, root: str, kind: AgentLogs) -> list[Path]:
    """The logs to import: PATH (a log, or a folder searched for them), or by default the agent's
    sessions that ran inside `root` (the current repository or folder)."""
    if path is not None:
        p = Path(path).expanduser()
        if p.is_file():
            return [p]
        if p.is_dir():
            found = sorted(f for f in p.rglob("*.jsonl") if kind.is_log(f))
            if not found:
                raise LitError(f"no {kind.agent} {kind.logs} (*.jsonl) in {p}")
            return found
        problem = "is not a regular file" if p.exists() else "does not exist"
        raise LitError(f"{p} {problem}: pass a {kind.log} (.jsonl) or a folder of them")
    folder = kind.folder()
    found = [f for f in kind.candidates(folder, root) if kind.is_log(f) and inside(kind.cwd_of(f), root)]
    if not found:
        raise LitError(f"no {kind.agent} sessions for {root} under {folder} "
                       f"(pass a {kind.log} or a folder of them: {kind.command} PATH)")
    return found


def inside(path: str | None, root: str) -> bool:
    """Whether `path` is `root` or below it (links resolved)."""
    if not path:
        return False
    a, b = os.path.realpath(path), os.path.realpath(root)
    return a == b or a.startswith(b.rstrip(os.sep) + os.sep)


# --- reading them ---------------------------------------------------------------------------------


def read_jsonl(path: Path, warnings: list[str]) -> list[dict]:
    """The entries of a transcript; a line that is not a JSON object is skipped with a warning."""
    entries = []
    try:
        fh = open(path, encoding="utf-8", errors="replace")
    except OSError as e:
        raise LitError(f"cannot read {path}: {e.strerror or e}") from e
    with fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except (ValueError, RecursionError):  # nested deeper than Python parses: hostile
                warnings.append(f"{path}:{n}: not a JSON line, skipped")
                continue
            if not isinstance(entry, dict):
                warnings.append(f"{path}:{n}: not a JSON object, skipped")
                continue
            entry[LINE] = f"{path}:{n}"
            entries.append(entry)
    return entries


def timestamp(value: object, default: float) -> float:
    """An entry's ISO 8601 time (`2026-11-30T09:01:26.123Z`) in seconds; `default` when it has none."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return default


@dataclass
class Step:
    """A step before it has a thread: its columns, and what the import needs to know of it."""
    fields: dict
    at: float
    conversation: int = 0  # 0: main; n: the n-th subagent
    request: str | None = None  # the API request an answer's block came from
    parent: int | None = None  # index of the call that started a subagent
    result_of: int | None = None  # for a tool_result: index of its call
    tool_use_result: Any = None  # the agent's structured result (patches, stdout)
    usage: dict | None = None
    stop_reason: str | None = None
    conv: str = "c1"  # the conversation: c1 for the main one, a<agent id> for a subagent
    step_id: str | None = None
    thread_id: str | None = None


@dataclass
class Source:
    """One session of another agent, read and turned into steps."""
    agent: str  # the sessions.agent column: "claude-code-import/2.1.197"
    session_id: str  # lit's, derived from the agent's own so a second import finds it
    agent_session: str  # the agent's own session id
    path: Path
    steps: list[Step]
    edits: list[Edit]  # the file edits its tool calls made (lit.importers.commits)
    notes: str  # the sessions.notes column: where it came from
    cwd: str | None = None
    argv: list[str] = field(default_factory=list)
    protocol: str = "anthropic"  # of its exchanges: anthropic | openai-responses
    api_path: str = "/v1/messages"
    warnings: list[str] = field(default_factory=list)


@dataclass
class Prior:
    """What the DB holds already of this session and of the repository's commits."""
    known: bool  # the session was imported before
    live: str | None  # the lit session that recorded it live (`lit record`), if one did
    rows: list[dict]  # its steps in thread order: id, kind, tool_use_id, thread_id, status, seq
    bound: set[str]  # every commit bound to a thread
    exchanges: dict[str, str]  # request id -> exchange id, of this session
    exchange_seq: int
    thread_seq: int


def read_prior(db: sqlite_utils.Database, source: Source) -> Prior:
    sid = source.session_id
    known = store.session_exists(db, sid)
    return Prior(
        known=known, live=None if known else store.session_of_client(db, source.agent_session),
        rows=store.session_steps(db, sid) if known else [], bound=store.bound_commits(db),
        exchanges=store.exchanges_by_request(db, sid), exchange_seq=store.last_seq(db, "exchanges", sid),
        thread_seq=store.last_seq(db, "threads", sid))


@dataclass
class PlannedThread:
    id: str
    new: bool  # False: the thread an earlier import left pending, continued
    lo: int  # its new steps: steps[lo:hi]
    hi: int
    commit: Commit | None
    row: dict  # its columns (all of them when new; the ones that change when continued)


@dataclass
class Plan:
    source: Source
    repo: str | None
    known: bool  # the session was imported before: its row is updated, not inserted
    start: int  # steps[:start] were imported before
    threads: list[PlannedThread]
    commits: list[Commit]
    exchanges: list[dict]  # new rows
    exchange_of: dict[int, str]  # step index -> its exchange
    line_map: list[dict]

    @property
    def steps(self) -> list[Step]:
        return self.source.steps


def link_results(steps: list[Step]) -> dict[str, int]:
    """Each tool result to its call (`result_of`, an index in `steps`); returns tool_use_id -> the
    index of its call."""
    calls = {s.fields["tool_use_id"]: i for i, s in enumerate(steps)
             if s.fields["kind"] == "tool_call" and s.fields.get("tool_use_id")}
    for s in steps:
        if s.fields["kind"] == "tool_result":
            s.result_of = calls.get(s.fields.get("tool_use_id"))
    return calls


def plan(source: Source, prior: Prior, repo: str | None, *, claimed: set[str] = frozenset()) -> Plan | str:
    """Every row the import adds, or why it adds none. Reads git (commits, diffs); writes nothing.
    `claimed`: short SHAs that other sessions' shell calls reported (never a person's commit)."""
    steps = source.steps
    if prior.live:
        return f"recorded by lit record (session {prior.live})"
    if not steps:
        return "no messages"
    old = prior.rows
    if any(row["kind"] != s.fields["kind"] or row["tool_use_id"] != s.fields.get("tool_use_id")
           for row, s in zip(old, steps, strict=False)):
        return "already imported, and its transcript no longer starts with what was imported"
    start = len(old)
    for row, s in zip(old, steps, strict=False):
        s.step_id, s.thread_id = row["id"], row["thread_id"]
    pending = old[-1] if old and old[-1]["status"] == "pending" else None
    commits = _new_commits(source, prior, repo, start, pending is not None, claimed)
    if prior.known and len(steps) <= start and not (pending and commits):
        return "already imported"
    threads = _plan_threads(source, prior, repo, start, commits, pending)
    exchanges, exchange_of = _plan_exchanges(source, prior)
    return Plan(source, repo, prior.known, start, threads, commits, exchanges, exchange_of,
                _plan_line_map(source, repo, threads))


def _new_commits(source: Source, prior: Prior, repo: str | None, start: int, pending: bool,
                 claimed: set[str]) -> list[Commit]:
    """The commits to bind: those the session's shell calls made since the last import, then, for
    its edits after its last commit, the commit a person made of them later."""
    if not repo:
        return []
    steps, edits = source.steps, source.edits
    made = find_commits(steps, repo, edits)
    commits = [c for c in made if c.boundary >= start and c.sha not in prior.bound]
    tail = [e for e in edits if e.index > max((c.boundary for c in made), default=-1)]
    if tail and (len(steps) > start or pending):
        later = committed_later(repo, steps, tail, exclude=prior.bound | {c.sha for c in made}, claimed=claimed)
        if later:
            commits.append(Commit(later, len(steps), len(steps) - 1))
    return commits


def split(steps: list[Step], commits: list[Commit], start: int = 0) -> list[tuple[int, int, Commit | None]]:
    """Threads as [lo, hi) step ranges from `start`, each ending with the result of the commit that
    binds it; the steps after the last commit form a pending thread."""
    out, lo = [], start
    for c in sorted(commits, key=lambda c: c.boundary):
        if c.boundary + 1 > lo:
            out.append((lo, c.boundary + 1, c))
            lo = c.boundary + 1
    if lo < len(steps):
        out.append((lo, len(steps), None))
    return out


def _plan_threads(source: Source, prior: Prior, repo: str | None, start: int, commits: list[Commit],
                  pending: dict | None) -> list[PlannedThread]:
    steps = source.steps
    threads: list[PlannedThread] = []
    if pending and start == len(steps) and commits:  # nothing new but the commit of the pending thread
        c = commits[-1]
        threads.append(PlannedThread(pending["thread_id"], False, start, start, c, {
            "status": "bound", "commit_sha": c.sha, "bound_at": store.now()}))
    seq = prior.thread_seq
    # Steps added since continue the thread left pending, as a live session's would.
    cont = pending if pending and start < len(steps) else None
    for lo, hi, commit in split(steps, commits, start):
        if cont:
            tid, new, step_seq = cont["thread_id"], False, cont["seq"] + 1
            cont = None
        else:
            seq += 1
            tid, new, step_seq = store.new_id(), True, 1
        for n, i in enumerate(range(lo, hi), step_seq):
            steps[i].step_id, steps[i].thread_id = f"{tid}.{n}", tid
        begin = min(i for i in range(hi) if steps[i].thread_id == tid)
        row = {"started_at": steps[begin].at, "ended_at": steps[hi - 1].at,
               "status": "bound" if commit else "pending", "commit_sha": commit.sha if commit else None,
               "bound_at": steps[commit.boundary].at if commit else None, "title": _title(steps, begin, hi)}
        if new:
            row = {"id": tid, "session_id": source.session_id, "seq": seq, "repo_root": repo, **row}
        threads.append(PlannedThread(tid, new, lo, hi, commit, row))
    return threads


def _title(steps: list[Step], begin: int, hi: int) -> str | None:
    """A thread is titled by its first prompt; one that starts mid-task (after a commit) by the
    prompt it continues."""
    return next((steps[i].fields.get("text") for i in [*range(begin, hi), *range(begin - 1, -1, -1)]
                 if steps[i].fields["kind"] == "prompt" and steps[i].conversation == 0), None)


def _plan_exchanges(source: Source, prior: Prior) -> tuple[list[dict], dict[int, str]]:
    """One exchange per API request (an agent's record has one entry per block, each naming its
    request); the prompt and tool results a request sent belong to it, as when recorded live."""
    ids = dict(prior.exchanges)
    seq = prior.exchange_seq
    sid = source.session_id
    exchange_of: dict[int, str] = {}
    rows: dict[str, dict] = {}
    for i, s in enumerate(source.steps):
        if s.request is None:
            continue
        if s.request not in ids:
            seq += 1
            ids[s.request] = f"{sid}.{seq}"
            rows[ids[s.request]] = {
                "id": ids[s.request], "session_id": sid, "seq": seq, "started_at": s.at, "method": "POST",
                "path": source.api_path, "protocol": source.protocol, "status": 200, "streamed": 1, "complete": 1,
                "model": s.fields.get("model"), "conversation_id": f"{sid}.{s.conv}",
                "role": "subagent" if s.conversation else "main", "thread_id": s.thread_id,
                "client_session_id": source.agent_session, "request_id": s.request,
            }
        if ids[s.request] in rows:
            # Every block repeats the usage; the request's last block has the final counts.
            usage = s.usage if isinstance(s.usage, dict) else {}
            rows[ids[s.request]].update({"stop_reason": s.stop_reason, **{
                k: usage.get(k) if isinstance(usage.get(k), int) else None for k in USAGE_KEYS}})
        exchange_of[i] = ids[s.request]
    # A user turn (prompt, tool results) went out with the next request of its conversation.
    upcoming: dict[str, str] = {}
    for i in range(len(source.steps) - 1, -1, -1):
        s = source.steps[i]
        if i in exchange_of:
            upcoming[s.conv] = exchange_of[i]
        elif s.conv in upcoming:
            exchange_of[i] = upcoming[s.conv]
    return list(rows.values()), exchange_of


def _plan_line_map(source: Source, repo: str | None, threads: list[PlannedThread]) -> list[dict]:
    rows = []
    for t in threads:
        if t.commit is None or not repo:
            continue
        prior = [e for e in source.edits if e.index < t.commit.call]
        rows += [{"commit_sha": t.commit.sha, "path": path, "line_start": lo, "line_end": hi,
                  "step_id": source.steps[step].step_id if step is not None else None, "thread_id": t.id}
                 for path, lo, hi, step in line_ranges(attribute(repo, t.commit.sha, prior))]
    return rows


# --- writing -----------------------------------------------------------------------------------


@dataclass
class ImportResult:
    path: str
    agent_session: str
    session: str
    imported: bool
    repo: str | None = None
    reason: str | None = None  # why not, when it was not
    threads: list[dict] = field(default_factory=list)  # id, status, commit, steps
    steps: int = 0
    exchanges: int = 0
    line_map_rows: int = 0
    notes: int = 0
    warnings: list[str] = field(default_factory=list)


def run(db: sqlite_utils.Database, source: Source, repo: str | None, *,
        claimed: set[str] = frozenset()) -> ImportResult:
    """Plan the import of one session, write it, write the notes of the commits it binds."""
    result = ImportResult(str(source.path), source.agent_session, source.session_id, False, repo=repo,
                          warnings=source.warnings)
    planned = plan(source, read_prior(db, source), repo, claimed=claimed)
    if isinstance(planned, str):
        result.reason = planned
        return result
    write(db, planned)
    steps = planned.steps
    result.imported = True
    result.steps = len(steps) - planned.start
    result.exchanges = len({planned.exchange_of[i] for i in range(planned.start, len(steps))
                            if i in planned.exchange_of})
    result.line_map_rows = len(planned.line_map)
    result.threads = [{"id": t.id, "status": "bound" if t.commit else "pending",
                       "commit": t.commit.sha if t.commit else None,
                       "steps": sum(1 for s in steps[planned.start:] if s.thread_id == t.id)}
                      for t in planned.threads]
    for t in planned.threads:
        if t.commit is not None and repo:
            try:
                notes.write(repo, t.commit.sha, threads.note_for_commit(db, t.id, t.commit.sha))
                result.notes += 1
            except LitError as e:
                result.warnings.append(f"note for {t.commit.sha[:12]} not written: {e}")
    return result


def write(db: sqlite_utils.Database, p: Plan) -> None:
    """The plan's rows, in one transaction; text is redacted on the way in, as the recorder does."""
    src, steps = p.source, p.steps
    with store.write_transaction(db):
        if not p.known:
            db["sessions"].insert({
                "id": src.session_id, "started_at": steps[0].at or store.now(),
                "argv": json.dumps(redact_obj(src.argv)), "cwd": src.cwd, "repo_root": p.repo,
                "head_start": _parent(p.repo, p.commits[0].sha) if p.commits else None,
                "agent": src.agent, "exchanges_unrecorded": 0, "notes": redact_obj(src.notes)})
        db["sessions"].update(src.session_id, {"ended_at": steps[-1].at or store.now(),
                                               **({"head_end": p.commits[-1].sha} if p.commits else {})})
        for t in p.threads:
            row = dict(t.row)
            if "title" in row:
                row["title"] = first_line(redact_obj(row["title"])) if row["title"] else None
            if t.new:
                db["threads"].insert(row)
            else:
                db["threads"].update(t.id, row)
        db["exchanges"].insert_all(p.exchanges)
        rows = [_step_row(src.session_id, steps, i, p.exchange_of.get(i)) for i in range(p.start, len(steps))]
        columns = {c for row in rows for c in row}
        db["steps"].insert_all([{c: row.get(c) for c in columns} for row in rows])
        db["line_map"].insert_all(p.line_map)


def _step_row(sid: str, steps: list[Step], i: int, exchange: str | None) -> dict:
    s = steps[i]
    row = {"id": s.step_id, "thread_id": s.thread_id, "session_id": sid,
           "seq": int(s.step_id.rsplit(".", 1)[1]), "exchange_id": exchange, "conversation_id": f"{sid}.{s.conv}",
           "parent_step_id": steps[s.parent].step_id if s.parent is not None else None,
           "created_at": s.at, **s.fields}
    if row.get("text"):
        row["text"] = redact_obj(row["text"])
    if row.get("raw"):
        row["raw"] = redacted_raw(row["raw"])
    if row.get("tool_input") is not None:
        row["tool_input"] = json.dumps(redact_obj(row["tool_input"]), ensure_ascii=False)
    return row


def _parent(repo: str | None, sha: str) -> str | None:
    if not repo:
        return None
    return git(["rev-parse", "--verify", "-q", sha + "^"], repo, check=False) or None
