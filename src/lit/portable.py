"""`lit export` / `lit import`: a thread as a portable JSONL file.

The first line is a header (`{"lit_export": 1, "thread": ..., "session": ..., ...}`); each
following line is one DB row, `{"table": NAME, "row": {...}}`. A file holds the thread, its
session, the whole conversation the thread belongs to (every exchange, with the message chains
of its request and its response, and its system prompt and tool definitions), and the rows that
blame and weave read: the steps, snapshots and line map of the threads that conversation spans.
A conversation outlives one commit (the agent's last answer comes after its `git commit`), and a
replay needs all of it, so exporting one of its threads carries its sibling threads along.

Import inserts what the target DB lacks and nothing else, so importing twice adds nothing. A file is
another person's word: its text is redacted on the way in, as everything lit records is, and it
never adds to a thread the DB already has (a thread id is public, in every commit's trailer): a
step, exchange, snapshot or line map row of such a thread that the DB lacks is refused, and so is a
line map for a commit that has one, and a thread claiming a commit another thread is bound to.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import sqlite_utils

from lit import __version__, store, threads
from lit.errors import LitError
from lit.redact import redact_row

EXPORT_VERSION = 1

# The order rows are written and imported in: parents before children, for a reader's sake.
TABLES = ("sessions", "threads", "blobs", "messages", "exchanges", "steps", "snapshots", "line_map")

# Exchange columns that name a row of blobs.
_BLOB_COLUMNS = ("system_hash", "tools_hash", "request_headers", "request_blob", "response_blob")

# Tables without a usable primary key, deduplicated on import by these columns instead.
_NATURAL_KEYS = {
    "snapshots": ("session_id", "seq", "commit_sha"),
    "line_map": ("commit_sha", "path", "line_start", "line_end", "step_id"),
}


@dataclass
class ExportSummary:
    path: str
    thread: str
    session: str
    conversations: list[str]
    rows: dict[str, int] = field(default_factory=dict)
    bytes: int = 0


@dataclass
class ImportSummary:
    path: str
    thread: str
    session: str
    added: dict[str, int] = field(default_factory=dict)
    present: dict[str, int] = field(default_factory=dict)  # rows the DB already had
    refused: dict[str, int] = field(default_factory=dict)  # rows that would add to what the DB holds


def resolve_thread(db: sqlite_utils.Database, ref: str) -> dict:
    """The DB row of the thread `ref` names (lit.threads.resolve: an id, a prefix, a commit, a rev)."""
    return threads.db_thread(db, ref)


def conversation_ids(db: sqlite_utils.Database, thread_id: str) -> list[str]:
    """The conversations whose exchanges belong to the thread, main loop first."""
    rows = db.execute(
        "SELECT conversation_id FROM exchanges WHERE thread_id = ? AND conversation_id IS NOT NULL"
        " GROUP BY conversation_id ORDER BY MIN(role = 'main') DESC, MIN(seq)",
        [thread_id],
    ).fetchall()
    if not rows:  # exchanges not tagged with a thread: find them through the thread's steps
        rows = db.execute(
            "SELECT conversation_id FROM steps WHERE thread_id = ? AND conversation_id IS NOT NULL"
            " GROUP BY conversation_id ORDER BY MIN(seq)",
            [thread_id],
        ).fetchall()
    return [r[0] for r in rows]


def conversation_exchanges(db: sqlite_utils.Database, conversation_id: str) -> list[dict]:
    return list(db.query(
        "SELECT * FROM exchanges WHERE conversation_id = ? ORDER BY started_at, session_id, seq",
        [conversation_id],
    ))


def _rows(db: sqlite_utils.Database, thread: dict) -> Iterator[tuple[str, dict]]:
    session_id = thread["session_id"]
    convs = conversation_ids(db, thread["id"])
    exchanges: dict[str, dict] = {}
    for conv in convs:
        for ex in conversation_exchanges(db, conv):
            exchanges[ex["id"]] = ex
    for ex in db.query("SELECT * FROM exchanges WHERE thread_id = ?", [thread["id"]]):
        exchanges.setdefault(ex["id"], ex)
    thread_ids = [thread["id"]] + sorted(
        {ex["thread_id"] for ex in exchanges.values() if ex.get("thread_id")} - {thread["id"]}
    )
    session_ids = [session_id] + sorted(
        {ex["session_id"] for ex in exchanges.values() if ex.get("session_id")} - {session_id}
    )
    for sid in session_ids:
        yield from (("sessions", r) for r in db.query("SELECT * FROM sessions WHERE id = ?", [sid]))
    for tid in thread_ids:
        yield from (("threads", r) for r in db.query("SELECT * FROM threads WHERE id = ?", [tid]))
    hashes = sorted({ex[c] for ex in exchanges.values()
                     for c in _BLOB_COLUMNS if ex.get(c)})
    for h in hashes:
        for r in db.query("SELECT * FROM blobs WHERE hash = ?", [h]):
            yield "blobs", r
    seen: set[str] = set()
    for ex in exchanges.values():
        # The response's parent is the request's last message; walk both in case it is not.
        for start in (ex.get("response_key"), ex.get("message_key")):
            yield from (("messages", r) for r in _chain_rows(db, start, seen))
    for ex in sorted(exchanges.values(), key=lambda e: (e.get("started_at") or 0, e["id"])):
        yield "exchanges", ex
    for tid in thread_ids:
        yield from (("steps", r) for r in store.thread_steps(db, tid))
    for sid in session_ids:
        yield from (("snapshots", r) for r in db.query(
            "SELECT * FROM snapshots WHERE session_id = ? ORDER BY seq", [sid]))
    commits = [r[0] for tid in thread_ids for r in db.execute(
        "SELECT commit_sha FROM threads WHERE id = ? AND commit_sha IS NOT NULL", [tid]).fetchall()]
    for sha in commits:
        yield from (("line_map", r) for r in db.query(
            "SELECT * FROM line_map WHERE commit_sha = ? ORDER BY path, line_start", [sha]))


def _chain_rows(db: sqlite_utils.Database, key: str | None, seen: set[str]) -> list[dict]:
    """The message rows from `key` up to the first one already seen, oldest first."""
    chain: list[dict] = []
    while key and key not in seen:
        row = next(iter(db.query("SELECT * FROM messages WHERE key = ?", [key])), None)
        if row is None:
            break
        seen.add(key)
        chain.append(row)
        key = row["parent_key"]
    return chain[::-1]


def _encode(table: str, row: dict) -> dict:
    """A row as JSON: message contents and text blobs readable, other bytes in base64."""
    out = {}
    for k, v in row.items():
        if table == "messages" and k == "content" and v is not None:
            out[k] = {"json": store.unpack_content(v)}
        elif isinstance(v, bytes):
            try:
                out[k] = {"text": v.decode("utf-8")}
            except UnicodeDecodeError:
                out[k] = {"base64": base64.b64encode(v).decode("ascii")}
        else:
            out[k] = v
    return out


def _decode(table: str, row: dict) -> dict:
    out = {}
    for k, v in row.items():
        if table == "messages" and isinstance(v, dict) and "json" in v:
            out[k] = store.pack_content(v["json"])
        elif isinstance(v, dict) and "text" in v:
            out[k] = v["text"].encode("utf-8")
        elif isinstance(v, dict) and "base64" in v:
            out[k] = base64.b64decode(v["base64"])
        else:
            out[k] = v
    return out


def export_thread(db: sqlite_utils.Database, ref: str, out: str | os.PathLike | IO[str]) -> ExportSummary:
    """Write the thread `ref` (id, id prefix or bound commit) and its conversation to `out`."""
    thread = resolve_thread(db, ref)
    convs = conversation_ids(db, thread["id"])
    header = {"lit_export": EXPORT_VERSION, "thread": thread["id"], "session": thread["session_id"],
              "commit": thread.get("commit_sha"), "title": thread.get("title"),
              "conversations": convs, "lit_version": __version__, "exported_at": store.now()}
    lines = [json.dumps(header, ensure_ascii=False)]
    counts: dict[str, int] = {}
    for table, row in _rows(db, thread):
        lines.append(json.dumps({"table": table, "row": _encode(table, row)}, ensure_ascii=False))
        counts[table] = counts.get(table, 0) + 1
    text = "\n".join(lines) + "\n"
    name = "<stream>"
    if isinstance(out, (str, os.PathLike)):
        name = str(out)
        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as e:
            raise LitError(f"cannot write {out}: {e.strerror or e}") from e
    else:
        out.write(text)
    return ExportSummary(path=name, thread=thread["id"], session=thread["session_id"],
                         conversations=convs, rows=counts, bytes=len(text.encode("utf-8")))


def read_export(path: str | os.PathLike) -> tuple[dict, list[tuple[str, dict]]]:
    """(header, [(table, row), ...]) of an export file; LitError if it is not one."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise LitError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from e
    try:
        header = json.loads(lines[0]) if lines else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or "lit_export" not in header:
        raise LitError(f"{path} is not a lit export (its first line has no lit_export header)")
    if header["lit_export"] != EXPORT_VERSION:
        raise LitError(f"{path} is a lit export of version {header['lit_export']}; "
                       f"this lit reads version {EXPORT_VERSION} (upgrade lit)")
    rows = []
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            rows.append((item["table"], _decode(item["table"], item["row"])))
        except (ValueError, KeyError, TypeError) as e:
            raise LitError(f"{path}:{n}: not a row of a lit export ({e})") from e
    return header, rows


def import_rows(db: sqlite_utils.Database, rows: list[tuple[str, dict]]) -> tuple[dict, dict, dict]:
    """Insert the rows the DB lacks, redacted; returns (added, present, refused) counts per table."""
    counts: dict[str, dict[str, int]] = {"added": {}, "present": {}, "refused": {}}
    columns = {t: set(db[t].columns_dict) for t in TABLES}
    guard = _Guard(db, rows)
    with store.write_transaction(db):
        for table, row in rows:
            if table not in columns:
                continue  # a table of a newer lit: ignore rather than fail
            row = {k: v for k, v in row.items() if k in columns[table]}
            outcome = _import_row(db, table, row, guard)
            counts[outcome][table] = counts[outcome].get(table, 0) + 1
    return counts["added"], counts["present"], counts["refused"]


class _Guard:
    """What the DB held before the import: the file's rows may not add to it."""

    def __init__(self, db: sqlite_utils.Database, rows: list[tuple[str, dict]]) -> None:
        # Every thread the file names, as a thread row or as the thread of a step, exchange, snapshot or
        # line map row: a forged step needs no thread row to point at a thread of this DB.
        ids = sorted({r.get("id") if t == "threads" else r.get("thread_id") for t, r in rows} - {None})
        self.threads = {tid for tid in ids if db.execute("SELECT 1 FROM threads WHERE id = ?", [tid]).fetchone()}
        shas = sorted({r.get("commit_sha") for t, r in rows if t in ("threads", "line_map")
                       and isinstance(r.get("commit_sha"), str)})
        self.mapped = {sha for sha in shas
                       if db.execute("SELECT 1 FROM line_map WHERE commit_sha = ? LIMIT 1", [sha]).fetchone()}
        self.bound = {sha: tid for sha in shas for (tid,) in db.execute(
            "SELECT id FROM threads WHERE commit_sha = ? LIMIT 1", [sha]).fetchall()}
        # A new thread that claims a commit another thread is bound to is refused, and its rows with it.
        self.refused_threads = {r["id"] for t, r in rows if t == "threads" and r.get("id") not in self.threads
                                and self.bound.get(r.get("commit_sha"), r.get("id")) != r.get("id")}

    def refuses(self, table: str, row: dict) -> bool:
        thread = row.get("id") if table == "threads" else row.get("thread_id")
        if thread in self.refused_threads:
            return True
        if table in ("steps", "exchanges", "snapshots", "line_map") and thread in self.threads:
            return True
        return table == "line_map" and row.get("commit_sha") in self.mapped


def _import_row(db: sqlite_utils.Database, table: str, row: dict, guard: _Guard) -> str:
    """added, present or refused."""
    if table in _NATURAL_KEYS:
        row.pop("id", None)  # snapshot ids are local autoincrements, not identities
        keys = _NATURAL_KEYS[table]
        where = " AND ".join(f"{k} IS ?" for k in keys)
        if db.execute(f"SELECT 1 FROM {table} WHERE {where} LIMIT 1", [row.get(k) for k in keys]).fetchone():
            return "present"
    else:
        pk = "key" if table == "messages" else "hash" if table == "blobs" else "id"
        if db.execute(f"SELECT 1 FROM {table} WHERE {pk} = ?", [row.get(pk)]).fetchone():
            return "present"
    if guard.refuses(table, row):
        return "refused"
    if table == "steps":  # redacted as text, stored as lit stores it (a file may hold either form)
        row = store.packed_step(redact_row(table, store.plain_step(row)))
    else:
        row = redact_row(table, row)
    _insert(db, table, row, ignore=table not in _NATURAL_KEYS)
    return "added"


def _insert(db: sqlite_utils.Database, table: str, row: dict, *, ignore: bool) -> Any:
    cols = list(row)
    sql = (f"INSERT {'OR IGNORE ' if ignore else ''}INTO {table} ({', '.join(cols)})"
           f" VALUES ({', '.join('?' for _ in cols)})")
    return db.execute(sql, [row[c] for c in cols])


def import_file(db: sqlite_utils.Database, path: str | os.PathLike) -> ImportSummary:
    header, rows = read_export(path)
    added, present, refused = import_rows(db, rows)
    return ImportSummary(path=str(path), thread=header.get("thread", ""),
                         session=header.get("session", ""), added=added, present=present, refused=refused)
