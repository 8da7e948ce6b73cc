"""The thread store: lit's SQLite schema, its migrations and the queries the commands share.

One DB is shared by every repository (like llm's logs.db). Migrations are small functions
applied once each and recorded in `_lit_migrations`, so a DB made by an older lit keeps working.

Tables (the names users query in Datasette):
  sessions   one `lit record` run
  exchanges  one HTTP call through the relay
  messages   each message once, keyed by sha256(parent key + canonical content)
  blobs      system prompts, tool definitions and unparseable bodies, once by content hash
  threads    the steps that lead to one commit
  steps      prompt / thinking / text / tool_call / tool_result / other, in thread order (a tool
             result's text above 1 kB compressed: read it with step_text, or lit_text() in SQL)
  snapshots  the working tree captured at turn boundaries (commits on refs/lit/snapshots/...)
  line_map   for a bound commit: new-side line ranges -> the step that wrote them (NULL: human)
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlite_utils

from lit.dbfile import StoreError, not_a_folder, open_read_only
from lit.paths import resolve_db_path

STEP_KINDS = ("prompt", "context", "thinking", "text", "tool_call", "tool_result", "other")
# What people wrote or the model said: the steps full-text search finds, kept plain text.
SEARCHED_KINDS = ("prompt", "thinking", "text")
# Program output and what an agent adds (tool results, context blocks, unknown blocks): the bulk of a
# session, stored zlib-compressed (a BLOB in steps.text) above PACK_ABOVE bytes, as messages are.
PACKED_KINDS = frozenset({"tool_result", "context", "other"})
PACK_ABOVE = 1024


def now() -> float:
    return time.time()


def new_id(nbytes: int = 6) -> str:
    """A short random hex id (12 characters): sessions and threads."""
    return secrets.token_hex(nbytes)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(value: Any) -> str:
    """sha256 (first 128 bits, hex) of the canonical JSON of value, or of the bytes/str itself."""
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
    else:
        data = canonical_json(value).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()[:32]


def message_key(parent_key: str | None, message: Any) -> str:
    """The key of a message: its content and its parent's key, so a request is a pointer to its
    last message and conversations are chains that share forked prefixes (llm's newer schema)."""
    return content_hash((parent_key or "") + "\n" + canonical_json(message))


# --- migrations -------------------------------------------------------------------------------

MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = []


def migration(fn: Callable[[sqlite_utils.Database], None]):
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_initial(db: sqlite_utils.Database) -> None:
    db["sessions"].create(
        {
            "id": str,
            "started_at": float,
            "ended_at": float,
            "argv": str,  # JSON list
            "cwd": str,
            "repo_root": str,  # NULL outside a git repository
            "head_start": str,
            "head_end": str,
            "exit_code": int,
            "agent": str,  # e.g. "claude-cli/2.1.197", from the user-agent
            "upstream": str,
            "port": int,
            "pid": int,
            "exchanges_unrecorded": int,  # recording failures, counted, never surfaced
            "notes": str,  # what lit said at exit about what was not recorded
        },
        pk="id",
    )
    db["exchanges"].create(
        {
            "id": str,
            "session_id": str,
            "seq": int,
            "started_at": float,
            "method": str,
            "path": str,
            "query": str,
            "protocol": str,  # anthropic | openai-chat | openai-responses | NULL
            "status": int,
            "streamed": int,
            "complete": int,  # 0 while in flight or when cut off
            "error": str,  # relay error (upstream unreachable, reset, client gone)
            "parse_error": str,  # what could not be parsed; the raw body is then kept in blobs
            "ttfb_ms": float,
            "duration_ms": float,
            "request_headers": str,  # hash of the JSON in blobs (the same on every call); secrets removed
            # (m003 adds request_headers_call: JSON of the headers that change per call)
            "response_headers": str,  # JSON of the headers worth keeping (type, request-id, retry-after...)
            "request_bytes": int,
            "response_bytes": int,
            "request_blob": str,  # raw request body, only when it could not be parsed
            "response_blob": str,  # raw response body, only when it could not be parsed
            "params": str,  # JSON: max_tokens, thinking, temperature, tool_choice, metadata...
            "model": str,
            "system_hash": str,
            "tools_hash": str,
            "message_key": str,  # the request's last message
            "response_key": str,  # the response message (child of message_key)
            "conversation_id": str,
            "role": str,  # main | side | subagent
            "thread_id": str,
            "stop_reason": str,
            "input_tokens": int,
            "output_tokens": int,
            "cache_creation_input_tokens": int,
            "cache_read_input_tokens": int,
            "client_session_id": str,  # x-claude-code-session-id and the like
            "request_id": str,  # the upstream's request-id header
        },
        pk="id",
        foreign_keys=[("session_id", "sessions", "id")],
    )
    db["messages"].create(
        {
            "key": str,
            "parent_key": str,
            "depth": int,
            "role": str,
            "content": bytes,  # zlib of the JSON (cache_control stripped); see unpack_content() and message_chain()
            "created_at": float,
        },
        pk="key",
    )
    db["blobs"].create({"hash": str, "kind": str, "size": int, "content": bytes}, pk="hash")
    db["threads"].create(
        {
            "id": str,
            "session_id": str,
            "seq": int,
            "started_at": float,
            "ended_at": float,
            "status": str,  # open | pending (session ended, unbound) | bound
            "commit_sha": str,
            "bound_at": float,
            "repo_root": str,
            "title": str,  # the first prompt, one line
            "base_snapshot": str,  # snapshot commit the thread starts from
        },
        pk="id",
        foreign_keys=[("session_id", "sessions", "id")],
    )
    db["steps"].create(
        {
            "id": str,  # "<thread id>.<seq>"
            "thread_id": str,
            "session_id": str,
            "seq": int,
            "exchange_id": str,
            "conversation_id": str,
            "parent_step_id": str,  # a subagent's steps hang under the tool call that started it
            "created_at": float,
            "kind": str,  # prompt | context (added by the agent) | thinking | text | tool_call | tool_result | other
            "text": str,
            "tool_name": str,
            "tool_input": str,  # JSON
            "tool_use_id": str,
            "is_error": int,
            "model": str,
            "raw": str,  # JSON of the block when it carries more (signature, unknown types)
        },
        pk="id",
        foreign_keys=[("thread_id", "threads", "id")],
    )
    db["snapshots"].create(
        {
            "id": int,
            "session_id": str,
            "thread_id": str,
            "seq": int,
            "commit_sha": str,
            "tree_sha": str,
            "reason": str,  # start | turn | commit | end
            "step_ids": str,  # JSON list: the tool calls whose effects this snapshot captures
            "taken_at": float,
            "duration_ms": float,
        },
        pk="id",
    )
    db["line_map"].create(
        {
            "commit_sha": str,
            "path": str,
            "line_start": int,
            "line_end": int,
            "step_id": str,  # NULL: a person wrote these lines
            "thread_id": str,
        },
    )
    db["exchanges"].create_index(["session_id", "seq"])
    db["exchanges"].create_index(["conversation_id"])
    db["steps"].create_index(["thread_id", "seq"])
    db["steps"].create_index(["tool_use_id"])
    db["threads"].create_index(["commit_sha"])
    db["threads"].create_index(["session_id", "seq"])
    db["snapshots"].create_index(["session_id", "seq"])
    db["snapshots"].create_index(["commit_sha"])
    db["line_map"].create_index(["commit_sha", "path"])
    _enable_steps_fts(db)


FTS_COLUMNS = ("text", "tool_name")
# The values the index holds for a step row (`new`, `old` or `steps`): the text of searched kinds
# only, and the tool's name (searching "Bash" finds the calls; their results are paired by tool_use_id).
_FTS_VALUES = "CASE WHEN {r}.kind IN ('prompt', 'thinking', 'text') THEN {r}.text END, {r}.tool_name"


def _enable_steps_fts(db: sqlite_utils.Database) -> None:
    """Full-text search over steps, as sqlite-utils' enable_fts makes it (so Datasette finds it),
    but with detail=column: the index is ~40% smaller, and single-word and prefix searches (what
    people type) still work; phrase queries do not. Only prompts, thinking and text are indexed
    (and tool names): tool results are program output, most of the bytes and little of what people
    search for, and their text may be compressed."""
    cols = ", ".join(f'"{c}"' for c in FTS_COLUMNS)
    db.execute(f'CREATE VIRTUAL TABLE "steps_fts" USING FTS5 (\n    {cols},\n    content="steps", detail=column\n)')
    new, old = _FTS_VALUES.format(r="new"), _FTS_VALUES.format(r="old")
    db.execute(f"""CREATE TRIGGER "steps_ai" AFTER INSERT ON "steps" BEGIN
  INSERT INTO "steps_fts" (rowid, {cols}) VALUES (new.rowid, {new});
END""")
    # A delete must name the values that were indexed: the same CASE as the insert.
    db.execute(f"""CREATE TRIGGER "steps_ad" AFTER DELETE ON "steps" BEGIN
  INSERT INTO "steps_fts" ("steps_fts", rowid, {cols}) VALUES('delete', old.rowid, {old});
END""")
    db.execute(f"""CREATE TRIGGER "steps_au" AFTER UPDATE ON "steps" BEGIN
  INSERT INTO "steps_fts" ("steps_fts", rowid, {cols}) VALUES('delete', old.rowid, {old});
  INSERT INTO "steps_fts" (rowid, {cols}) VALUES (new.rowid, {new});
END""")


def reindex_steps(db: sqlite_utils.Database) -> None:
    """Build the steps index again from the table. The index holds less than its content table by
    design, so FTS5's own 'rebuild' (and 'integrity-check' with rank 1, which compares the two)
    would index, or expect, every step's text; its index-only check (rank 0, as PRAGMA
    integrity_check runs it) holds."""
    cols = ", ".join(f'"{c}"' for c in FTS_COLUMNS)
    db.execute("INSERT INTO steps_fts(steps_fts) VALUES('delete-all')")
    db.execute(f"INSERT INTO steps_fts (rowid, {cols}) SELECT rowid, {_FTS_VALUES.format(r='steps')} FROM steps")


@migration
def m002_browse_indexes(db: sqlite_utils.Database) -> None:
    """For `lit serve`: the default sorts (threads newest first, steps in time order) and the facets
    people click (kind, tool, model) answer from an index instead of reading every step. Measured on
    100,000 steps: a facet 120 -> 12 ms, the steps table's first page 57 -> 0.4 ms."""
    db["steps"].create_index(["created_at"])
    db["steps"].create_index(["kind", "is_error"])
    db["steps"].create_index(["tool_name"])
    db["steps"].create_index(["model"])
    db["threads"].create_index(["started_at"])
    db["exchanges"].create_index(["started_at"])
    db["exchanges"].create_index(["model"])



@migration
def m003_request_headers_per_call(db: sqlite_utils.Database) -> None:
    """The request headers that change on every call (Content-Length, retry counts, request ids)
    in a row of their own, so the rest, the same on every call, is one blob for the session (was:
    a new blob per call, because Content-Length is)."""
    db["exchanges"].add_column("request_headers_call", str)


@migration
def m004_pack_tool_output(db: sqlite_utils.Database) -> None:
    """Tool results and other program output above PACK_ABOVE bytes stored compressed (see
    pack_text), and the full-text index of prompts, thinking and text only (was: every step's text
    and tool input). Readers take both forms of steps.text (step_text), so a DB packed halfway
    reads the same."""
    for trigger in ("steps_ai", "steps_ad", "steps_au"):
        db.execute(f'DROP TRIGGER IF EXISTS "{trigger}"')
    db.execute('DROP TABLE IF EXISTS "steps_fts"')
    kinds = ", ".join(f"'{k}'" for k in sorted(PACKED_KINDS))
    rows = db.execute(f"SELECT rowid, kind, text FROM steps WHERE kind IN ({kinds}) AND typeof(text) = 'text'"
                      " AND length(CAST(text AS BLOB)) > ?", [PACK_ABOVE]).fetchall()
    db.conn.executemany("UPDATE steps SET text = ? WHERE rowid = ?",
                        ((pack_text(kind, text), rowid) for rowid, kind, text in rows))
    _enable_steps_fts(db)
    reindex_steps(db)


# --- opening -----------------------------------------------------------------------------------


def read(path: str | os.PathLike | None = None) -> sqlite_utils.Database:
    """lit's DB for a command that only reads it: opened read-only, so it works on a read-only
    filesystem and for a user who cannot write it (see open_read_only). A DB made by an older lit
    is migrated first when it can be written. Raises StoreError with a one-line reason."""
    db_path = resolve_db_path(path)
    conn, _ = open_read_only(db_path)
    done = {r[0] for r in conn.execute("SELECT name FROM _lit_migrations").fetchall()}
    if {fn.__name__ for fn in MIGRATIONS} - done:
        conn.close()
        if not os.access(db_path, os.W_OK) or not os.access(db_path.parent, os.W_OK):
            raise StoreError(f"{db_path} was made by an older lit and cannot be written here to bring it "
                             "up to date: run any lit command where it can be written")
        return connect(db_path, create=False)
    return sqlite_utils.Database(conn)


def connect(path: str | os.PathLike | None = None, *, create: bool = True) -> sqlite_utils.Database:
    """Open (and migrate) lit's DB: WAL mode, a busy timeout, foreign keys off (rows arrive in
    any order from concurrent processes). Raises StoreError with a one-line reason."""
    db_path = resolve_db_path(path)
    not_a_folder(db_path)
    if not create and not db_path.exists():
        raise StoreError(f"no lit DB at {db_path}: record a session first (lit record -- AGENT)")
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(db_path), timeout=30, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 30000")
        # Only takes effect before the first table exists. Steps of a few kB fill 8 kB pages far
        # better than 4 kB ones (measured: a third of 4 kB pages left empty by 2.5 kB rows).
        conn.execute("PRAGMA page_size = 8192")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        db = sqlite_utils.Database(conn)
        migrate(db)
    except (sqlite3.Error, OSError) as e:
        raise StoreError(f"cannot open the lit DB at {db_path}: {e} (use --db PATH or set LIT_DB)") from e
    return db


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply the migrations not yet applied, each in its own IMMEDIATE transaction (so several
    `lit record` processes opening a new DB at once serialise); returns their names."""
    conn = db.conn
    with conn:
        conn.execute("CREATE TABLE IF NOT EXISTS _lit_migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    done = {row[0] for row in conn.execute("SELECT name FROM _lit_migrations").fetchall()}
    applied = []
    for fn in MIGRATIONS:
        name = fn.__name__
        if name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT 1 FROM _lit_migrations WHERE name = ?", [name]).fetchone():
                conn.execute("ROLLBACK")
                continue
            fn(db)
            conn.execute("INSERT INTO _lit_migrations VALUES (?, ?)", [name, now()])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied


# --- writes shared by the recorder and the hooks ----------------------------------------------


@contextmanager
def write_transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One transaction that takes the write lock first (BEGIN IMMEDIATE, waiting for other writers
    up to the busy timeout), for writes that other processes may be making to the same DB.

    `with db.conn:` is not enough: sqlite-utils' insert and update open their own deferred BEGIN,
    and preparing an INSERT into steps makes FTS5 read its config first (the first time in each
    connection). If another process commits between that read and the write, SQLite answers
    "database is locked" at once (SQLITE_BUSY_SNAPSHOT: the busy timeout does not apply), and the
    exchange is lost. Inside this transaction sqlite-utils nests savepoints instead."""
    conn = db.conn
    if conn.in_transaction:  # already in one: part of it
        yield db
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:  # a full disk can fail this too: the first error is the one to say
                pass
        raise


def put_blob(db: sqlite_utils.Database, content: bytes | str, kind: str) -> str:
    data = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content
    h = hashlib.sha256(data).hexdigest()[:32]
    db.execute(
        "INSERT OR IGNORE INTO blobs (hash, kind, size, content) VALUES (?, ?, ?, ?)",
        [h, kind, len(data), data],
    )
    return h


def get_blob(db: sqlite_utils.Database, h: str | None) -> bytes | None:
    if not h:
        return None
    row = db.execute("SELECT content FROM blobs WHERE hash = ?", [h]).fetchone()
    return row[0] if row else None


def message_keys(messages: Iterable[Any], parent: str | None = None) -> list[str]:
    """The key of each message of a chain (see message_key) that follows `parent` (None: from the
    root): the last one is the chain's."""
    keys: list[str] = []
    for m in messages:
        parent = message_key(parent, m)
        keys.append(parent)
    return keys


def put_messages(db: sqlite_utils.Database, messages: Sequence[dict], keys: Sequence[str],
                 contents: Sequence[Any] | None = None, *, parent: str | None = None,
                 stored: set[str] | None = None, prepare: Callable[[Any], Any] | None = None) -> int:
    """Store a request's chain of messages, each once, under their keys (message_keys of the
    messages as sent, after `parent`: a request that continues a stored response, as the Responses
    API's previous_response_id does). `contents`: what to keep of each (default: its content; the
    recorder passes blocks held by steps as references); `prepare` runs on a content about to be
    stored (the recorder's redaction), so only once per message. `stored` is the writer's memory of
    the keys it wrote: the history an agent resends costs no query. Returns how many were new here."""
    contents = [m.get("content") for m in messages] if contents is None else contents
    stored = set() if stored is None else stored
    depth, new = 0, 0
    if parent:
        row = db.execute("SELECT depth FROM messages WHERE key = ?", [parent]).fetchone()
        depth = row[0] + 1 if row else 0
    for m, key, content in zip(messages, keys, contents, strict=True):
        if key not in stored:
            stored.add(key)
            cur = db.execute(
                "INSERT OR IGNORE INTO messages (key, parent_key, depth, role, content, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [key, parent, depth, m.get("role"), pack_content(prepare(content) if prepare else content), now()])
            new += cur.rowcount
        parent, depth = key, depth + 1
    return new


def pack_content(content: Any) -> bytes:
    """Messages are stored compressed, and a block that a step holds whole is stored as
    {"$step": id} (see block_from_step): content is kept once, in the table people query."""
    return zlib.compress(canonical_json(content).encode("utf-8", "surrogatepass"), 6)


def unpack_content(data: bytes | str | None) -> Any:
    if data is None:
        return None
    if isinstance(data, bytes):
        data = zlib.decompress(data).decode("utf-8", "surrogatepass")
    return json.loads(data)


def pack_text(kind: str | None, text: str | None) -> str | bytes | None:
    """A step's text as stored: zlib-compressed bytes for the kinds in PACKED_KINDS above
    PACK_ABOVE bytes, else the text itself (short output stays plain for any SQL tool to read)."""
    if kind not in PACKED_KINDS or not isinstance(text, str) or len(text) <= PACK_ABOVE // 4:
        return text
    data = text.encode("utf-8", "surrogatepass")
    return zlib.compress(data, 6) if len(data) > PACK_ABOVE else text


def step_text(value: str | bytes | None) -> str | None:
    """A step's text as people read it, stored either way (see pack_text). Bytes that are not lit's
    (a hand-edited row) are read as UTF-8 rather than failing the reader."""
    if not isinstance(value, bytes):
        return value
    try:
        return zlib.decompress(value).decode("utf-8", "surrogatepass")
    except (zlib.error, UnicodeDecodeError):
        return value.decode("utf-8", "replace")


def plain_step(row: dict) -> dict:
    """A step row with its text as text (see step_text)."""
    return {**row, "text": step_text(row["text"])} if isinstance(row.get("text"), bytes) else row


def packed_step(row: dict) -> dict:
    """A step row with its text as stored (see pack_text)."""
    text = row.get("text")
    return {**row, "text": pack_text(row.get("kind"), text)} if isinstance(text, str) else row


def block_from_step(step: dict) -> dict | None:
    """The content block a step was made from, rebuilt from its columns (None if it can't be)."""
    kind, raw = step.get("kind"), step.get("raw")
    extra = json.loads(raw) if raw else {}
    if kind == "thinking" and step.get("text") is not None and set(extra) <= {"type", "signature"}:
        block = {"type": "thinking", "thinking": step["text"]}
        if extra.get("signature") is not None:
            block["signature"] = extra["signature"]
        return block
    if kind == "text" and not raw:
        return {"type": "text", "text": step.get("text") or ""}
    if kind == "tool_call" and not raw:
        return {"type": "tool_use", "id": step.get("tool_use_id"), "name": step.get("tool_name"),
                "input": json.loads(step["tool_input"]) if step.get("tool_input") else {}}
    if kind == "tool_result" and not raw:
        block = {"type": "tool_result", "tool_use_id": step.get("tool_use_id"), "content": step.get("text") or ""}
        if step.get("is_error"):
            block["is_error"] = True
        return block
    return None


def resolve_content(db: sqlite_utils.Database, content: Any) -> Any:
    """Replace {"$step": id} references in stored message content with the blocks."""
    if not isinstance(content, list) or not any(isinstance(b, dict) and "$step" in b for b in content):
        return content
    out = []
    for b in content:
        if isinstance(b, dict) and "$step" in b:
            rows = list(db.query("SELECT * FROM steps WHERE id = ?", [b["$step"]]))
            b = (block_from_step(plain_step(rows[0])) if rows else None) or {"type": "text", "text": "[missing step]"}
        out.append(b)
    return out


def message_chain(db: sqlite_utils.Database, key: str | None) -> list[dict]:
    """The messages from the root to `key`, oldest first (step references resolved)."""
    chain = []
    while key:
        row = db.execute(
            "SELECT parent_key, role, content FROM messages WHERE key = ?", [key]
        ).fetchone()
        if not row:
            break
        chain.append({"role": row[1], "content": resolve_content(db, unpack_content(row[2]))})
        key = row[0]
    chain.reverse()
    return chain


def open_thread(db: sqlite_utils.Database, session_id: str, repo_root: str | None,
                base_snapshot: str | None = None) -> str:
    seq_row = db.execute(
        "SELECT COALESCE(MAX(seq), 0) FROM threads WHERE session_id = ?", [session_id]
    ).fetchone()
    thread_id = new_id()
    db["threads"].insert(
        {
            "id": thread_id,
            "session_id": session_id,
            "seq": seq_row[0] + 1,
            "started_at": now(),
            "status": "open",
            "repo_root": repo_root,
            "base_snapshot": base_snapshot,
        }
    )
    return thread_id


def current_thread(db: sqlite_utils.Database, session_id: str) -> str | None:
    row = db.execute(
        "SELECT id FROM threads WHERE session_id = ? AND status = 'open' ORDER BY seq DESC LIMIT 1",
        [session_id],
    ).fetchone()
    return row[0] if row else None


def next_step_seq(db: sqlite_utils.Database, thread_id: str) -> int:
    row = db.execute("SELECT COALESCE(MAX(seq), 0) FROM steps WHERE thread_id = ?", [thread_id]).fetchone()
    return row[0] + 1


def put_imported_threads(db: sqlite_utils.Database, sessions: list[dict], threads: list[dict], steps: list[dict],
                         line_map: list[dict]) -> list[str]:
    """Threads read from another tool's records (lit.importers.attribution), each with its steps
    and line map, in one transaction. A thread the DB has already is left as it is (its id comes
    from the source, so importing twice adds nothing); returns the ids of the threads added."""
    added: list[str] = []
    with write_transaction(db):
        for row in sessions:
            db["sessions"].insert(row, ignore=True)
        for row in threads:
            if db.execute("SELECT 1 FROM threads WHERE id = ?", [row["id"]]).fetchone():
                continue
            db["threads"].insert(row)
            added.append(row["id"])
        new = set(added)
        columns = {c for row in steps for c in row}
        db["steps"].insert_all((packed_step({c: row.get(c) for c in columns}) for row in steps
                                if row["thread_id"] in new), ignore=True)
        db["line_map"].insert_all(row for row in line_map if row["thread_id"] in new)
    return added


def rebind_threads(db: sqlite_utils.Database, commit: str, thread_ids: list[str], line_map: list[dict]) -> None:
    """Bind threads to `commit` (found by content: a squash merge lost their trailers) and give the
    commit the line map that was found, in one transaction."""
    with write_transaction(db):
        t = now()
        for tid in thread_ids:
            db.execute("UPDATE threads SET status = 'bound', commit_sha = ?, bound_at = ? WHERE id = ?",
                       [commit, t, tid])
        db.execute("DELETE FROM line_map WHERE commit_sha = ?", [commit])
        db["line_map"].insert_all(line_map)


# --- reads of what an import added before (lit.importers.session) --------------------------------


def session_exists(db: sqlite_utils.Database, session_id: str) -> bool:
    return db.execute("SELECT 1 FROM sessions WHERE id = ?", [session_id]).fetchone() is not None


def session_of_client(db: sqlite_utils.Database, client_session_id: str) -> str | None:
    """The lit session that recorded an agent's session live (its exchanges carry the agent's id)."""
    row = db.execute("SELECT session_id FROM exchanges WHERE client_session_id = ? LIMIT 1",
                     [client_session_id]).fetchone()
    return row[0] if row else None


def session_steps(db: sqlite_utils.Database, session_id: str) -> list[dict]:
    """A session's steps in thread order: id, kind, tool_use_id, thread_id, seq, and the thread's status."""
    return list(db.query("SELECT s.id, s.kind, s.tool_use_id, s.thread_id, s.seq, t.status FROM steps s"
                         " JOIN threads t ON s.thread_id = t.id WHERE s.session_id = ? ORDER BY t.seq, s.seq",
                         [session_id]))


def bound_commits(db: sqlite_utils.Database) -> set[str]:
    return {r[0] for r in db.execute("SELECT commit_sha FROM threads WHERE commit_sha IS NOT NULL")}


def exchanges_by_request(db: sqlite_utils.Database, session_id: str) -> dict[str, str]:
    """request id -> exchange id, for a session's exchanges."""
    return {rid: ex for ex, rid in db.execute("SELECT id, request_id FROM exchanges WHERE session_id = ?",
                                              [session_id])}


def last_seq(db: sqlite_utils.Database, table: str, session_id: str) -> int:
    """The highest seq of a session's exchanges or threads (0: none yet)."""
    if table not in ("exchanges", "threads"):
        raise ValueError(f"no seq per session in {table}")
    return db.execute(f"SELECT COALESCE(MAX(seq), 0) FROM {table} WHERE session_id = ?", [session_id]).fetchone()[0]


# --- reads the commands share ------------------------------------------------------------------


def thread_steps(db: sqlite_utils.Database | sqlite3.Connection, thread_id: str) -> list[dict]:
    """A thread's step rows in order, their text as text (on a sqlite-utils DB or a sqlite3 connection)."""
    cur = db.execute("SELECT * FROM steps WHERE thread_id = ? ORDER BY seq", [thread_id])
    names = [d[0] for d in cur.description]
    return [plain_step(dict(zip(names, row, strict=True))) for row in cur.fetchall()]
