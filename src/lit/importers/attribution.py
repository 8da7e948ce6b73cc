"""Other tools' line attribution as lit threads: what the git-ai and Agent Trace importers share.

An importer reads its format into `Thread`s (one per commit and agent session: one thread, one
commit), each with its steps and its line map, and `write` stores the ones lit lacks. Ids come
from the source (`thread_id(format, ...)`), so importing twice adds nothing.

The steps an importer makes are the source's: its prompts and messages where it kept them, and
one tool call per edit it attributed lines to (its tool unnamed unless the source named it). Each
carries `raw = {"imported": FORMAT, "agent": TOOL, ...}`, so a reader can say that the source
recorded no reasoning for it rather than show nothing.

Ranges are checked against the file at the commit before they are kept: a range that starts
after its end, or ends past the file's last line (`1-9223372036854775807`), is dropped, never
expanded, and said in a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlite_utils

from lit import store
from lit.git.run import cat_file_batch, git

MAX_WARNINGS = 20  # per import; a hostile file could otherwise print a line per range


@dataclass
class Step:
    kind: str  # prompt | text | tool_call (an edit the source attributed lines to) | other
    text: str | None = None
    tool_name: str | None = None
    tool_input: dict | None = None
    model: str | None = None
    raw: dict = field(default_factory=dict)
    created_at: float | None = None


@dataclass
class Thread:
    id: str
    session_id: str
    commit: str
    agent: str | None  # the agent's tool (cursor, claude, claude-code...)
    title: str | None
    session_note: str  # where it came from, for the sessions table's `notes`
    steps: list[Step] = field(default_factory=list)
    # path -> [(start, end, index of the step in `steps`, or None for a person)]
    line_map: dict[str, list[tuple[int, int, int | None]]] = field(default_factory=dict)
    step_ids: list[str] | None = None  # ids the source gave its steps (a lit export), else <id>.<n>

    def add_line(self, path: str, n: int, index: int | None) -> None:
        """Line n of path is step `index`'s (None: a person's): it extends the last range when it can."""
        ranges = self.line_map.setdefault(path, [])
        if ranges and ranges[-1][1] == n - 1 and ranges[-1][2] == index:
            ranges[-1] = (ranges[-1][0], n, index)
        else:
            ranges.append((n, n, index))


@dataclass
class Result:
    added: list[Thread] = field(default_factory=list)
    present: list[str] = field(default_factory=list)  # threads the DB had already
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (commit, why)
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        message = message.replace("\r", "\\r").replace("\n", "\\n")  # one warning, one line
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)
        elif len(self.warnings) == MAX_WARNINGS:
            self.warnings.append("more problems left unsaid")


def stable_id(*parts: str) -> str:
    """A 12-hex id (lit's length) derived from the source, so a re-import finds its own rows."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:12]


def commit_of(repo: str | os.PathLike, revision: str) -> str | None:
    """The full SHA of a commit of this repository, None if it has no such commit."""
    if not isinstance(revision, str) or not revision or len(revision) > 64 or revision.startswith("-"):
        return None
    return git(["rev-parse", "--verify", "-q", "--end-of-options", revision + "^{commit}"], repo, check=False) or None


def line_counts(repo: str | os.PathLike, commit: str, paths: Iterable[str]) -> dict[str, int]:
    """Lines in each file at the commit (a path the commit does not have is absent)."""
    names = {f"{commit}:{p}": p for p in paths if p and "\n" not in p}
    out = {}
    for name, data in cat_file_batch(list(names), cwd=repo).items():
        out[names[name]] = data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)
    return out


def checked_ranges(ranges: Iterable[tuple[int, int]], last_line: int | None, where: str,
                   result: Result) -> list[tuple[int, int]]:
    """The ranges that lie inside a file of `last_line` lines; the others are dropped and said."""
    kept = []
    for start, end in ranges:
        if last_line is None:
            result.warn(f"{where}: the commit has no such file; its ranges are dropped")
            return []
        if not (1 <= start <= end <= last_line):
            result.warn(f"{where}: range {start}-{end} is outside the file's {last_line} lines; dropped")
            continue
        kept.append((start, end))
    return kept


def lit_notes(repo: str | os.PathLike) -> set[str]:
    """The commits with a note of lit's own (refs/notes/lit)."""
    from lit.git import notes

    return set(notes.listing(repo))


def lit_owned(db: sqlite_utils.Database, commit: str, noted: set[str] = frozenset()) -> bool:
    """The commit has a line map lit made itself (recorded, or imported from a transcript), in the
    DB or in a note (`noted`, from lit_notes): the other tool's attribution does not replace it."""
    if commit in noted:
        return True
    row = db.execute("SELECT 1 FROM line_map m JOIN steps s ON s.id = m.step_id WHERE m.commit_sha = ?"
                     " AND CASE WHEN json_valid(s.raw) THEN json_extract(s.raw, '$.imported') END IS NULL"
                     " LIMIT 1", [commit]).fetchone()
    return row is not None


def write(db: sqlite_utils.Database, repo: str | os.PathLike, threads: list[Thread], result: Result,
          redact=None) -> Result:
    """Store the threads the DB lacks (sessions, threads, steps, line maps), redacted."""
    if redact is None:
        from lit.redact import redact_obj as redact
    sessions: dict[str, dict] = {}
    thread_rows, step_rows, map_rows = [], [], []
    repo_root = str(repo)
    for t in threads:
        when = _commit_time(repo, t.commit)
        sessions.setdefault(t.session_id, {
            "id": t.session_id, "started_at": when, "ended_at": when, "argv": "[]", "cwd": repo_root,
            "repo_root": repo_root, "agent": t.agent, "exchanges_unrecorded": 0, "notes": t.session_note})
        thread_rows.append({"id": t.id, "session_id": t.session_id, "seq": 1, "started_at": when, "ended_at": when,
                            "status": "bound", "commit_sha": t.commit, "bound_at": when, "repo_root": repo_root,
                            "title": redact(t.title)[:200] if t.title else None})
        ids = t.step_ids or [f"{t.id}.{n}" for n in range(1, len(t.steps) + 1)]
        for n, (sid, s) in enumerate(zip(ids, t.steps, strict=True), 1):
            step_rows.append({
                "id": sid, "thread_id": t.id, "session_id": t.session_id, "seq": _seq(sid, n),
                "created_at": s.created_at or when, "kind": s.kind, "text": redact(s.text) if s.text else None,
                "tool_name": s.tool_name,
                "tool_input": json.dumps(redact(s.tool_input), ensure_ascii=False) if s.tool_input else None,
                "is_error": 0, "model": s.model, "raw": json.dumps(redact(s.raw), ensure_ascii=False)})
        for path, ranges in t.line_map.items():
            for start, end, index in ranges:
                map_rows.append({"commit_sha": t.commit, "path": path, "line_start": start, "line_end": end,
                                 "step_id": ids[index] if index is not None else None, "thread_id": t.id})
    added = set(store.put_imported_threads(db, list(sessions.values()), thread_rows, step_rows, map_rows))
    for t in threads:
        (result.added.append(t) if t.id in added else result.present.append(t.id))
    return result


def _seq(step_id: str, default: int) -> int:
    tail = step_id.rpartition(".")[2]
    return int(tail) if tail.isdigit() and len(tail) < 9 else default


_times: dict[tuple[str, str], float] = {}


def _commit_time(repo: str | os.PathLike, commit: str) -> float:
    key = (str(repo), commit)
    if key not in _times:
        out = git(["log", "-1", "--format=%ct", commit], repo, check=False)
        _times[key] = float(out) if out.isdigit() else store.now()
    return _times[key]
