"""The recorder: turns what the relay saw into sessions, exchanges, messages, threads and steps.

The relay hands each exchange over twice (`request` when the body is in, `response` when it
ended) and never waits: both go on a queue to one writer thread, which parses, hashes, writes
SQLite (each exchange in its own short transactions) and takes snapshots. A failure here is
counted and remembered, never raised to the relay: the agent must not notice lit.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lit import agents, redact, store
from lit.proxy import anthropic, openai, wsframes
from lit.git.run import GitError, repo_and_head
from lit.proxy.exchange import Exchange
from lit.summary import Summary
from lit.redact import redact_headers, redact_query
from lit.steps import first_line, from_block, is_context, raw_if_more, redacted_raw, result_text

if TYPE_CHECKING:
    from lit.git.snapshot import Chain

log = logging.getLogger("lit.recorder")

# Tool inputs that start a subagent: its first user message is this field of the call.
SUBAGENT_PROMPT_FIELDS = ("prompt", "task", "description")
PARSERS = {
    "anthropic": (anthropic.parse_request, anthropic.parse_response),
    "openai-chat": (openai.parse_chat_request, openai.parse_chat_response),
    "openai-responses": (openai.parse_responses_request, openai.parse_responses_response),
}
COMPACTION_MARKERS = ("This session is being continued from a previous conversation",)
# Tool-less calls an agent makes beside the conversation, recognised by what they ask for: a title,
# a topic check, a commit message, a summary of the conversation so far.
SIDE_REQUEST = re.compile(
    r"^\s*title:|\b(\d+|one|two|three|four|five|six|seven|eight|ten)[- ]words? title\b|\bgenerates? (a |the )?"
    r"(short |concise )?(session |conversation )?title\b|\btitle for (this|the) (conversation|session)\b"
    r"|\bgenerates? (concise, )?(one-line )?git commit messages?\b|\bsummari[sz]e (this|the) (partial )?conversation\b"
    r"|\bis this (message )?a new (conversation )?topic\b", re.IGNORECASE)
# Answers whose text edits files (aider's edit formats): the edits are the answer's text step's doing.
TEXT_EDITS = (re.compile(r"^<{5,9} SEARCH\s*$.*?^>{5,9} REPLACE\s*$", re.DOTALL | re.MULTILINE),
              re.compile(r"^\*\*\* Begin Patch\s*$", re.MULTILINE),
              re.compile(r"^--- \S.*\n\+\+\+ \S.*\n@@", re.MULTILINE))


def sanitize_headers(headers: dict[str, str]) -> dict[str, str]:
    """Headers as stored: a secret header's value (x-api-key, X-Auth, Cookie...) never is."""
    return redact_headers(headers)


# Request headers whose values change from call to call: kept in the exchange's row.
PER_CALL_HEADERS = frozenset({"content-length", "x-stainless-retry-count", "x-stainless-timeout",
                              "x-stainless-read-timeout", "idempotency-key", "x-request-id", "x-client-request-id",
                              "traceparent", "tracestate", "date"})
KEPT_RESPONSE_HEADERS = ("content-type", "content-encoding", "request-id", "retry-after", "x-should-retry")


def kept_response_headers(headers: dict[str, str], status: int | None) -> dict[str, str]:
    """The response headers worth a row each call; rate-limit headers only when the call failed.
    Names in lower case (as HTTP/2 sends them), so a query needs no guess at their case."""
    return {k.lower(): v for k, v in headers.items()
            if k.lower() in KEPT_RESPONSE_HEADERS or (status or 0) >= 400 and "ratelimit" in k.lower()}


def git_info(cwd: str) -> tuple[str | None, str | None]:
    """(repository root, HEAD sha) for cwd; (None, None) outside a repository."""
    try:
        return repo_and_head(cwd)
    except GitError:
        return None, None


@dataclass
class _Socket:
    """A Responses API WebSocket being read: each direction's frames, and the call in flight."""
    upgrade: Exchange
    readers: dict[bool, wsframes.MessageReader]
    calls: openai.ResponsesSocket = field(default_factory=openai.ResponsesSocket)
    count: int = 0
    current: Exchange | None = None


@dataclass
class _Conversation:
    id: str
    role: str  # main | side | subagent
    parent_step_id: str | None = None


class Recorder:
    """One session's writer. See docs/ARCHITECTURE.md for the interface."""

    def __init__(self, db_path: str | os.PathLike | None = None, *, argv: list[str] | None = None,
                 cwd: str | None = None, upstream: str | None = None,
                 session_id: str | None = None, snapshots: bool = True, pid: int | None = None):
        self.session_id = session_id or store.new_id()
        self.cwd = cwd or os.getcwd()
        self.db_path = store.resolve_db_path(db_path)
        self.db = store.connect(self.db_path)  # StoreError (one line) if it cannot be opened
        self.repo_root, self.head_start = git_info(self.cwd)
        self.snapshots = snapshots and self.repo_root is not None
        self.summary = Summary(self.session_id, repo_root=self.repo_root)
        # Every content once per distinct text (a step's text, its block, the message holding it).
        self.redactor = redact.CachedRedactor.of(redact.default())
        self._redact = self.redactor.obj
        self._queue: queue.Queue = queue.Queue()
        self._parsed: dict[str, anthropic.ParsedExchange] = {}
        self._conv_of_key: dict[str, str] = {}
        self._conversations: dict[str, _Conversation] = {}
        self._agent: str | None = None
        self._argv = list(argv or [])
        self._prompts: list[str] = []  # the session's prompts, to know a side call that quotes one
        self._text_edits: dict[str, list[str]] = {}  # conversation -> text steps whose edits no snapshot holds yet
        self._response_keys: dict[str, str] = {}  # upstream response id -> its message key (previous_response_id)
        self._sockets: dict[str, _Socket] = {}  # upgrade exchange id -> its WebSocket, while it is open
        # Turn snapshots taken as the relay asked (lit.recording), before the request is parsed:
        # exchange id -> [taken, (tree, ms) or the exception]
        self._captures: dict[str, list] = {}
        self._captures_lock = threading.Lock()
        self._chain: Chain | None = None  # the chain's tip and the last tree, kept between turns
        self._stored: set[str] = set()
        self._history = anthropic.MessageHistory()
        self._blobs: dict[tuple[str, str], str] = {}  # (kind, canonical JSON) -> hash of the redacted blob
        try:
            with store.write_transaction(self.db):
                self.db["sessions"].insert({
                    "id": self.session_id, "started_at": store.now(),
                    "argv": json.dumps(self._redact(list(argv or []))),
                    "cwd": self.cwd, "repo_root": self.repo_root, "head_start": self.head_start,
                    "upstream": upstream, "pid": pid or os.getpid(), "exchanges_unrecorded": 0,
                })
                store.open_thread(self.db, self.session_id, self.repo_root)
        except Exception as e:  # noqa: BLE001 - said in one line before the child starts
            raise store.StoreError(f"cannot write the lit DB at {self.db_path}: {e} "
                                   "(use --db PATH or set LIT_DB)") from e
        self._writer = threading.Thread(target=self._run, name="lit-recorder", daemon=True)
        self._writer.start()
        if self.snapshots:
            self._queue.put(("snapshot", "start", []))

    # --- the relay's side: never blocks, never raises -----------------------------------------

    def set_port(self, port: int) -> None:
        self._queue.put(("port", port))

    def request(self, ex: Exchange) -> None:
        self._queue.put(("request", ex))

    def response(self, ex: Exchange) -> None:
        self._queue.put(("response", ex))

    def websocket(self, ex: Exchange, direction: str, at: float, payload: bytes) -> None:
        """Bytes of the WebSocket the relay tunnels after `ex`'s 101, as they went through
        (direction "c": from the agent, "s": from the upstream), handed over as they come."""
        self._queue.put(("websocket", ex, direction, at, payload))

    def sync(self, written: Callable[[], None]) -> None:
        """Call `written` once everything handed over before this call is written (a git hook
        binds a thread only then)."""
        self._queue.put(("sync", written))

    def finish(self, exit_code: int | None, timeout: float = 60.0) -> Summary:
        """Drain the queue, take the end snapshot, close the session; returns what to tell the user."""
        self._queue.put(("finish", exit_code))
        self._writer.join(timeout)
        if self._writer.is_alive():
            self.summary.problems.append("the recorder did not finish writing in time")
        return self.summary

    def _capture(self, exchange_id: str) -> list:
        with self._captures_lock:
            return self._captures.setdefault(exchange_id, [threading.Event(), None])

    def abandon(self, timeout: float = 60.0) -> Summary:
        """Write what is queued and stop, leaving the session open: lit was killed, and `lit
        sessions` should say the session was interrupted."""
        self._queue.put(("abandon",))
        self._writer.join(timeout)
        return self.summary

    def capture_turn(self, exchange_id: str, captured: Callable[[], None] | None = None) -> None:
        """Take the snapshot of the turn that `exchange_id` ends, now (from the snapshot thread,
        while the request is still on its way); its row is written when the request is parsed.
        `captured` is called once the working tree is read, or the reading failed."""
        capture = self._capture(exchange_id)
        said = threading.Event()

        def once() -> None:
            if not said.is_set():
                said.set()
                if captured is not None:
                    captured()

        t0 = time.perf_counter()
        try:
            # Only the tree, now: the chain's commit is made with the row.
            capture[1] = (self._snapshot_chain().write_tree(once), (time.perf_counter() - t0) * 1000)
        except Exception as e:  # noqa: BLE001 - said when the turn's row is written
            capture[1] = e
        capture[0].set()
        once()

    def _snapshot_chain(self) -> Chain:
        from lit.git import snapshot  # noqa: PLC0415 - git linkage is optional for recording

        if self._chain is None:
            self._chain = snapshot.Chain(self.repo_root, self.session_id, watched=True)
        return self._chain

    # --- the writer thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            kind = item[0]
            try:
                if kind == "request":
                    self._on_request(item[1])
                elif kind == "response":
                    self._on_response(item[1])
                elif kind == "websocket":
                    self._on_websocket(*item[1:])
                elif kind == "snapshot":
                    self._snapshot(item[1], item[2])
                elif kind == "sync":
                    item[1]()
                elif kind == "port":
                    with store.write_transaction(self.db):
                        self.db["sessions"].update(self.session_id, {"port": item[1]})
                elif kind == "finish":
                    self._on_finish(item[1])
                elif kind == "abandon":
                    return
            except Exception as e:  # noqa: BLE001 - recording failures are counted, never raised
                why = (f"cannot write {self.db_path}: {e}" if isinstance(e, sqlite3.OperationalError)
                       else f"{kind}: {type(e).__name__}: {e}")
                if kind == "finish":  # the session stays open in the DB; no exchange was lost here
                    self.summary.problems.append(f"the session was not closed: {why}")
                else:
                    self._problem(why)
                log.debug("recording failed", exc_info=True)
            if kind == "finish":  # even when closing the session failed (a full disk): lit must exit
                return

    def _problem(self, text: str) -> None:
        self.summary.unrecorded += 1
        if len(self.summary.problems) < 5:
            self.summary.problems.append(text)

    def _on_request(self, ex: Exchange) -> None:
        protocol = openai.protocol_for(ex.method, ex.path)
        row: dict[str, Any] = {
            "id": ex.id, "session_id": ex.session_id, "seq": ex.seq, "started_at": ex.started_at,
            "method": ex.method, "path": ex.path, "query": redact_query(ex.query), "complete": 0,
            **self._request_headers(ex.request_headers),
            "request_bytes": len(ex.request_body),
            "client_session_id": anthropic.header(ex.request_headers, "x-claude-code-session-id") or None,
        }
        ua = anthropic.header(ex.request_headers, "user-agent")
        if protocol is None:
            if ex.request_body and len(ex.request_body) <= 256 * 1024:
                row["request_blob"] = store.put_blob(self.db, self._redact_bytes(ex.request_body), "request")
            with store.write_transaction(self.db):
                self.db["exchanges"].insert(row, replace=True)
            return
        parsed = (anthropic.parse_request(ex.request_body, history=self._history) if protocol == "anthropic"
                  else PARSERS[protocol][0](ex.request_body))
        self._parsed[ex.id] = parsed
        row.update({"protocol": parsed.protocol, "model": parsed.model, "streamed": int(parsed.stream),
                    "parse_error": parsed.parse_error})
        if not parsed.request_ok:
            self.summary.unreadable += 1
            if len(self.summary.problems) < 5:
                self.summary.problems.append(f"unreadable: exchange {ex.seq}: {parsed.parse_error}")
            with store.write_transaction(self.db):
                row["request_blob"] = store.put_blob(self.db, self._redact_bytes(ex.request_body), "request")
                self.db["exchanges"].insert(row, replace=True)
            return
        if parsed.params:
            row["params"] = json.dumps(self._redact(parsed.params), sort_keys=True)
        continued = self._response_keys.get(str(parsed.params.get("previous_response_id")))
        conv, new_messages, keys = self._place(parsed, continued)
        snapshot_steps: list[str] = []
        with store.write_transaction(self.db):  # steps are written: see write_transaction
            if parsed.system is not None:
                row["system_hash"] = self._blob(parsed.system, "system")
            if parsed.tools:
                row["tools_hash"] = self._blob(parsed.tools, "tools")
            row.update({"message_key": keys[-1] if keys else continued, "conversation_id": conv.id,
                        "role": conv.role})
            stored = [m.get("content") for m in parsed.messages]
            if conv.role != "side":
                thread_id = store.current_thread(self.db, self.session_id)
                row["thread_id"] = thread_id
                if conv.role == "main" and not self._agent:
                    self._agent = agents.agent_name(ua, self._argv)
                    if self._agent:
                        self.db["sessions"].update(self.session_id, {"agent": self._agent})
                first_new = len(parsed.messages) - len(new_messages)
                snapshot_steps = self._request_steps(ex, conv, thread_id, new_messages,
                                                     stored, first_new)
                # An answer's text edits were applied before the agent asked again: this is their turn's end.
                snapshot_steps = self._text_edits.pop(conv.id, []) + snapshot_steps
            store.put_messages(self.db, parsed.messages, keys, stored, parent=continued,
                               stored=self._stored, prepare=self._redact)
            self.db["exchanges"].insert(row, replace=True)
        # A subagent's turns are turn boundaries too: what its tools wrote is blamed on its own calls.
        if conv.role in ("main", "subagent") and snapshot_steps and self.snapshots:
            self._snapshot("turn", snapshot_steps, ex.id if ex.snapshot_asked else None)
        with self._captures_lock:
            self._captures.pop(ex.id, None)

    def _place(self, parsed: anthropic.ParsedExchange,
               continued: str | None = None) -> tuple[_Conversation, list[dict], list[str]]:
        """Which conversation a request continues, and which of its messages are new to it.
        `continued` is the key of the response a request names as its previous one (the Responses
        API's previous_response_id, as Codex sends over a WebSocket): its messages follow that one."""
        keys = self._message_keys(parsed, continued)
        known = next((i for i in range(len(keys) - 1, -1, -1) if keys[i] in self._conv_of_key), -1)
        if known >= 0:
            conv = self._conversations[self._conv_of_key[keys[known]]]
        elif continued in self._conv_of_key:
            conv = self._conversations[self._conv_of_key[continued]]
        else:
            conv = self._new_conversation(parsed)
        for k in keys:
            self._conv_of_key.setdefault(k, conv.id)
        return conv, parsed.messages[known + 1:], keys

    def _request_headers(self, headers: dict[str, str]) -> dict[str, str | None]:
        """The headers that change per call in the row, the others in one blob (see store m003)."""
        kept = sanitize_headers(headers)
        per_call = {k: v for k, v in kept.items() if k.lower() in PER_CALL_HEADERS}
        same = {k: v for k, v in kept.items() if k.lower() not in PER_CALL_HEADERS}
        return {"request_headers": store.put_blob(self.db, store.canonical_json(same), "headers"),
                "request_headers_call": json.dumps(per_call, sort_keys=True) if per_call else None}

    def _blob(self, value: Any, kind: str) -> str:
        """The system prompt and tools, redacted and stored once per session: an agent sends the
        same ones on every call."""
        canonical = store.canonical_json(value)
        known = self._blobs.get((kind, canonical))
        if known is None or not self._blob_written(known):
            known = store.put_blob(self.db, store.canonical_json(self._redact(value)), kind)
            if len(self._blobs) > 64:
                self._blobs.clear()
            self._blobs[(kind, canonical)] = known
        return known

    def _blob_written(self, h: str) -> bool:
        # A transaction rolled back (a full disk) may have taken the blob with it.
        return self.db.execute("SELECT 1 FROM blobs WHERE hash = ?", [h]).fetchone() is not None

    def _message_keys(self, parsed: anthropic.ParsedExchange, continued: str | None = None) -> list[str]:
        """Each message's key; those known from an earlier request (MessageHistory) are not
        computed again."""
        keys = [] if continued else list(parsed.known_keys)
        keys += store.message_keys(parsed.messages[len(keys):], parent=keys[-1] if keys else continued)
        if parsed.raw_messages is not None and not continued:
            self._history.remember(parsed.raw_messages, parsed.messages, keys)
        return keys

    def _new_conversation(self, parsed: anthropic.ParsedExchange) -> _Conversation:
        """Any conversation an agent carries on is a thread's (tools or not); side calls are told
        apart by what they ask for, and a subagent by its first message being a tool call's prompt."""
        conv = _Conversation(id=f"{self.session_id}.c{len(self._conversations) + 1}", role="main")
        if self._is_side_request(parsed):
            conv.role = "side"
        else:
            first = next((_user_text(m) for m in parsed.messages if m.get("role") == "user"), "")
            parent = self._subagent_parent(first) if first else None
            if parent:
                conv.role, conv.parent_step_id = "subagent", parent
        self._conversations[conv.id] = conv
        return conv

    def _is_side_request(self, parsed: anthropic.ParsedExchange) -> bool:
        if parsed.tools:
            return False
        if not any(m.get("role") == "user" for m in parsed.messages):
            return True  # nothing was asked: a probe
        params = parsed.params or {}
        limit = params.get("max_tokens", params.get("max_output_tokens", params.get("max_completion_tokens")))
        if isinstance(limit, int) and limit <= 1:
            return True  # a quota probe
        if _structured_output(params):
            return True  # a title or a topic check, answered as JSON
        texts = [_system_text(parsed.system)] + [_user_text(m) for m in parsed.messages
                                                 if m.get("role") in ("user", "system")]
        head = "\n".join(t[:600] for t in texts if t)
        if SIDE_REQUEST.search(head):
            return True
        # A call that quotes a prompt of the session back (a title for it, a commit message for it).
        body = "\n".join(texts)
        users = [m for m in parsed.messages if m.get("role") == "user"]
        return any(p in body for p in self._prompts) and not (len(users) == 1 and _user_text(users[0]) in self._prompts)

    def _subagent_parent(self, first_text: str) -> str | None:
        rows = self.db.execute(
            "SELECT id, tool_input FROM steps WHERE session_id = ? AND kind = 'tool_call'"
            " ORDER BY created_at DESC LIMIT 50", [self.session_id]).fetchall()
        for step_id, tool_input in rows:
            try:
                data = json.loads(tool_input or "{}")
            except ValueError:
                continue
            if isinstance(data, dict) and any(
                    isinstance(data.get(f), str) and data[f].strip() and data[f].strip() in first_text
                    for f in SUBAGENT_PROMPT_FIELDS if f == "prompt"):
                return step_id
        return None

    def _redact_bytes(self, body: bytes, headers: dict[str, str] | None = None) -> bytes:
        """A raw body kept because it could not be parsed is still scrubbed of secrets."""
        try:
            body = anthropic.decode_body(body, headers or {})
        except Exception:  # noqa: BLE001 - undecodable: kept as it came, text-redacted below
            pass
        text = body.decode("utf-8", "surrogateescape")
        return self._redact(text).encode("utf-8", "surrogateescape")

    def _request_steps(self, ex: Exchange, conv: _Conversation, thread_id: str | None,
                       new_messages: list[dict], stored: list, first_new: int) -> list[str]:
        """Steps from the new user turn; returns the tool calls whose results arrived. Blocks the
        steps hold whole become references in `stored` (the content to store per message)."""
        answered: list[str] = []
        for offset, m in enumerate(new_messages):
            if m.get("role") != "user" or not isinstance(m.get("content"), list):
                continue
            # A user message the agent answered itself (aider's "I am not sharing any files" / "Ok.")
            # is context it sends every time, not something the user typed.
            injected = any(later.get("role") == "assistant" for later in new_messages[offset + 1:])
            prompt_parts = []
            refs = list(m["content"])
            for bi, block in enumerate(m["content"]):
                if not isinstance(block, dict):
                    continue
                if block.get("type") == "tool_result":
                    call = self.db.execute(
                        "SELECT id, thread_id FROM steps WHERE session_id = ? AND tool_use_id = ?"
                        " AND kind = 'tool_call'", [self.session_id, block.get("tool_use_id")]).fetchone()
                    if call:
                        answered.append(call[0])
                    step_id, row = self._add_step(ex, conv, call[1] if call else thread_id, {
                        "kind": "tool_result", "text": result_text(block.get("content")),
                        "tool_use_id": block.get("tool_use_id"), "is_error": int(bool(block.get("is_error"))),
                        "raw": raw_if_more(block, {"type", "tool_use_id", "content", "is_error"}),
                    })
                    refs[bi] = self._ref(step_id, row, block)
                elif block.get("type") == "text":
                    text = block.get("text", "")
                    if is_context(text) or injected:
                        step_id, row = self._add_step(ex, conv, thread_id, {"kind": "context", "text": text})
                        refs[bi] = self._ref(step_id, row, block)
                    else:
                        prompt_parts.append(text)
                elif block.get("type") != "text":
                    self._add_step(ex, conv, thread_id, {"kind": "other", "raw": json.dumps(block)})
            stored[first_new + offset] = refs
            if prompt_parts:
                text = "\n\n".join(prompt_parts)
                kind = "other" if text.startswith(COMPACTION_MARKERS) else "prompt"
                self._add_step(ex, conv, thread_id, {"kind": kind, "text": text})
                if kind == "prompt":
                    self._prompts.append(text)
                    self.db.execute("UPDATE threads SET title = ? WHERE id = ? AND title IS NULL",
                                    [first_line(self._redact(text)), thread_id])
        return answered

    def _ref(self, step_id: str, row: dict, block: dict) -> dict:
        """{"$step": id} where the step rebuilds the (redacted) block exactly, else the block."""
        rebuilt = store.block_from_step(row)
        return {"$step": step_id} if rebuilt is not None and rebuilt == self._redact_block(block) else block

    def _redact_block(self, block: dict) -> dict:
        """A block as a step keeps it: redacted, but for a thinking block's signature (see redacted_raw)."""
        if block.get("type") == "thinking" and isinstance(block.get("signature"), str):
            return {**self._redact({k: v for k, v in block.items() if k != "signature"}),
                    "signature": block["signature"]}
        return self._redact(block)

    def _add_step(self, ex: Exchange, conv: _Conversation, thread_id: str | None,
                  fields: dict) -> tuple[str, dict]:
        thread_id = thread_id or store.current_thread(self.db, self.session_id)
        seq = store.next_step_seq(self.db, thread_id)
        step_id = f"{thread_id}.{seq}"
        row = {"id": step_id, "thread_id": thread_id, "session_id": self.session_id, "seq": seq,
               "exchange_id": ex.id, "conversation_id": conv.id, "parent_step_id": conv.parent_step_id,
               "created_at": store.now(), "model": self._parsed.get(ex.id).model if ex.id in self._parsed else None,
               **fields}
        if row.get("text"):
            row["text"] = self._redact(row["text"])
        if row.get("raw"):
            row["raw"] = redacted_raw(row["raw"], self._redact)
        if row.get("tool_input") is not None:
            row["tool_input"] = json.dumps(self._redact(row["tool_input"]), ensure_ascii=False)
        self.db["steps"].insert(store.packed_step(row))
        self.summary.steps += 1
        return step_id, row

    def _on_websocket(self, ex: Exchange, direction: str, at: float, payload: bytes) -> None:
        """The Responses API over a WebSocket (Codex): each `response.create` is an exchange of its
        own, `<upgrade id>.<n>`, recorded when it is sent and when its last event comes, so its
        steps, turn snapshot and thread are as live as over HTTP."""
        socket = self._sockets.get(ex.id)
        if socket is None:
            if openai.protocol_for("POST", ex.path) != "openai-responses":
                return  # another protocol over a WebSocket: the upgrade's own row says it happened
            readers = {}
            for side in (True, False):
                deflate, fresh = wsframes.deflate_settings(ex.response_headers, side)
                readers[side] = wsframes.MessageReader(deflate=deflate, no_context_takeover=fresh)
            socket = self._sockets[ex.id] = _Socket(ex, readers)
        from_client = direction == "c"
        for opcode, message in socket.readers[from_client].feed(payload):
            if opcode == wsframes.TEXT:
                for what, body, complete in socket.calls.feed(from_client, message.decode("utf-8", "replace")):
                    self._socket_call(socket, what, body, complete, at)

    def _socket_call(self, socket: _Socket, what: str, body: bytes, complete: bool, at: float) -> None:
        up = socket.upgrade
        if what == "request":
            socket.count += 1
            socket.current = Exchange(id=f"{up.id}.{socket.count}", session_id=up.session_id, seq=up.seq,
                                      method="POST", path=up.path, query=up.query,
                                      request_headers=up.request_headers, request_body=body, started_at=at)
            self._on_request(socket.current)
            return
        call, socket.current = socket.current, None
        if call is None:
            return
        call.status, call.streamed, call.complete = 200, True, complete  # a call over a WebSocket has no status
        call.response_headers = {"content-type": "text/event-stream"}
        call.response_body, call.duration_ms = body, (at - call.started_at) * 1000
        if not complete:
            call.error = up.error or "the WebSocket closed before the response ended"
        self._on_response(call)

    def _close_socket(self, ex: Exchange) -> None:
        """The upgrade ended: frames not handed over as they came are read now; a call in flight is
        recorded incomplete."""
        if ex.id not in self._sockets:
            for direction, at, payload in ex.frames:
                self._on_websocket(ex, direction, at, payload)
        socket = self._sockets.pop(ex.id, None)
        if socket is not None:
            for what, body, complete in socket.calls.close():
                self._socket_call(socket, what, body, complete, time.time())

    def _on_response(self, ex: Exchange) -> None:
        if ex.status == 101:
            self._close_socket(ex)
        update: dict[str, Any] = {
            "status": ex.status, "streamed": int(ex.streamed), "complete": int(ex.complete),
            "error": self._redact(ex.error) if ex.error else ex.error,
            "ttfb_ms": ex.ttfb_ms, "duration_ms": ex.duration_ms,
            "response_headers": json.dumps(kept_response_headers(ex.response_headers, ex.status)),
            "response_bytes": len(ex.response_body),
            "request_id": anthropic.header(ex.response_headers, "request-id") or None,
        }
        parsed = self._parsed.pop(ex.id, None)
        row = self.db.execute("SELECT conversation_id, role, message_key, thread_id FROM exchanges"
                              " WHERE id = ?", [ex.id]).fetchone()
        with store.write_transaction(self.db):  # steps are written: see write_transaction
            if parsed is None:
                if ex.response_body and len(ex.response_body) <= 256 * 1024:
                    update["response_blob"] = self._response_blob(ex)
                self.db["exchanges"].update(ex.id, update)
                self.summary.exchanges += 1
                return
            PARSERS[parsed.protocol][1](ex.response_body, ex.response_headers, ex.status, parsed)
            update.update({"model": parsed.model, "stop_reason": parsed.stop_reason,
                           "parse_error": parsed.parse_error, **_usage_columns(parsed.usage)})
            if parsed.error and not parsed.response_ok:
                update["error"] = update["error"] or self._redact(json.dumps(parsed.error))[:1000]
            if parsed.parse_error and ex.response_body:
                update["response_blob"] = self._response_blob(ex)
            if parsed.response_ok and row and parsed.response is not None:
                conv_id, role, message_key, thread_id = row
                key = store.message_key(message_key, parsed.response)
                update["response_key"] = key
                self._conv_of_key.setdefault(key, conv_id)
                if parsed.response_id:
                    self._response_keys[parsed.response_id] = key
                conv = self._conversations.get(conv_id)
                content = list(parsed.response["content"])
                # A retried call (the stream broke, the agent asks again) must not repeat steps. An
                # answer that reached its last event is whole even when the agent hung up before the
                # stream's own end (Codex may close as soon as response.completed is in).
                whole = ex.complete or parsed.stop_reason is not None and not parsed.parse_error
                if conv and conv.role != "side" and whole and not self._seen_response(key, ex.id):
                    self._parsed[ex.id] = parsed  # for the model column of the steps
                    for i, block in enumerate(parsed.response["content"]):
                        fields = from_block(block)
                        # Only an agent without tools edits from its answer's text (an agent with tools
                        # showing a diff in its closing words has made its edits already).
                        files = (_edited_files(fields.get("text")) if fields["kind"] == "text" and not parsed.tools
                                 else None)
                        if files is not None:
                            fields["tool_input"] = {"files": files}
                        step_id, step_row = self._add_step(ex, conv, thread_id, fields)
                        if files is not None:
                            self._text_edits.setdefault(conv_id, []).append(step_id)
                        if isinstance(block, dict):
                            content[i] = self._ref(step_id, step_row, block)
                    self._parsed.pop(ex.id, None)
                self.db.execute(
                    "INSERT OR IGNORE INTO messages (key, parent_key, depth, role, content, created_at)"
                    " VALUES (?, ?, (SELECT COALESCE(MAX(depth), -1) + 1 FROM messages WHERE key = ?),"
                    " ?, ?, ?)",
                    [key, message_key, message_key, "assistant",
                     store.pack_content(self._redact(content)), store.now()])
            self.db["exchanges"].update(ex.id, update)
        self.summary.exchanges += 1

    def _response_blob(self, ex: Exchange) -> str:
        return store.put_blob(self.db, self._redact_bytes(ex.response_body, ex.response_headers), "response")

    def _seen_response(self, key: str, exchange_id: str) -> bool:
        # Within this session only: a replayed run elsewhere answers with the very same messages.
        return self.db.execute("SELECT 1 FROM exchanges WHERE response_key = ? AND id != ? AND session_id = ?"
                               " LIMIT 1", [key, exchange_id, self.session_id]).fetchone() is not None

    def _snapshot(self, reason: str, step_ids: list[str], exchange_id: str | None = None) -> None:
        if not self.snapshots:
            return
        from lit.git import snapshot  # noqa: PLC0415 - git linkage is optional for recording

        thread_id = store.current_thread(self.db, self.session_id)
        capture = self._capture(exchange_id) if exchange_id else None
        try:
            taken = None
            if capture is not None and capture[0].wait(60):
                if isinstance(capture[1], Exception):
                    raise capture[1]
                taken = capture[1]
            snapshot.record_snapshot(self.db, self.repo_root, self.session_id, thread_id, reason, step_ids,
                                     taken=taken, chain=self._snapshot_chain())
        except Exception as e:  # noqa: BLE001 - the exchange is recorded; only the attribution suffers
            self.summary.snapshot_failures += 1
            if len(self.summary.problems) < 5:
                self.summary.problems.append(f"snapshot: {type(e).__name__}: {e}")

    def _on_finish(self, exit_code: int | None) -> None:
        if self.snapshots:
            self._snapshot("end", [s for steps in self._text_edits.values() for s in steps])
            from lit.git import snapshot  # noqa: PLC0415

            if self._chain is not None:
                self._chain.close()
            snapshot.forget_index(self.repo_root, self.session_id)
        _, head_end = git_info(self.cwd) if self.repo_root else (None, None)
        with store.write_transaction(self.db):
            for thread_id, in self.db.execute(
                    "SELECT id FROM threads WHERE session_id = ? AND status = 'open'",
                    [self.session_id]).fetchall():
                kinds = {r[0] for r in self.db.execute("SELECT DISTINCT kind FROM steps WHERE thread_id = ?",
                                                       [thread_id]).fetchall()}
                if "tool_call" in kinds or "prompt" in kinds:
                    status = "pending"  # a person may commit it later (lit hooks install binds it then)
                elif kinds and _fold_into_bound(self.db, self.session_id, thread_id):
                    continue
                elif kinds:
                    status = "closed"  # only the agent's last words, and no commit before them
                else:
                    self.db.execute("DELETE FROM threads WHERE id = ?", [thread_id])
                    continue
                self.db.execute("UPDATE threads SET status = ?, ended_at = ? WHERE id = ?",
                                [status, store.now(), thread_id])
            self.db["sessions"].update(self.session_id, {
                "ended_at": store.now(), "exit_code": exit_code, "head_end": head_end,
                "exchanges_unrecorded": self.summary.unrecorded,
                "notes": "; ".join(self.summary.problems) or None})
        if self.snapshots:
            from lit.git import snapshot  # noqa: PLC0415

            snapshot.prune(self.db, self.repo_root, self.session_id)
        self.summary.threads = [tuple(r) for r in self.db.execute(
            "SELECT id, commit_sha, status FROM threads WHERE session_id = ? AND status != 'closed' ORDER BY seq",
            [self.session_id]).fetchall()]
        try:
            self.db.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            # The session is over: closed here, the last connection folds the WAL into the DB and
            # removes it, whatever the process does next (lit.recording skips the teardown).
            self.db.conn.close()
        except Exception:  # noqa: BLE001
            pass


# --- helpers -----------------------------------------------------------------------------------


def _fold_into_bound(db, session_id: str, thread_id: str) -> bool:
    """The agent's last words after its commit ("Committed as 1a2b3c4.") end the thread that
    commit bound: its steps and exchanges move there (renumbered after its last step) and the
    empty thread is dropped, rather than left as a thread of its own that nothing can bind.
    False when the thread before it in the session is not bound."""
    before = db.execute(
        """SELECT p.id FROM threads p JOIN threads t ON t.id = ? WHERE p.session_id = ? AND p.seq < t.seq
           ORDER BY p.seq DESC LIMIT 1""", [thread_id, session_id]).fetchone()
    if not before or db.execute("SELECT status FROM threads WHERE id = ?", [before[0]]).fetchone()[0] != "bound":
        return False
    target = before[0]
    offset = store.next_step_seq(db, target) - 1
    db.execute("""UPDATE steps SET parent_step_id = ? || '.' || (CAST(substr(parent_step_id, ?) AS INTEGER) + ?)
                  WHERE thread_id = ? AND parent_step_id LIKE ? || '.%'""",
               [target, len(thread_id) + 2, offset, thread_id, thread_id])
    db.execute("UPDATE steps SET thread_id = ?, seq = seq + ?, id = ? || '.' || (seq + ?) WHERE thread_id = ?",
               [target, offset, target, offset, thread_id])
    for table in ("exchanges", "snapshots"):
        db.execute(f"UPDATE {table} SET thread_id = ? WHERE thread_id = ?", [target, thread_id])
    db.execute("DELETE FROM threads WHERE id = ?", [thread_id])
    return True


def _usage_columns(usage: dict) -> dict:
    keys = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    return {k: usage[k] for k in keys if isinstance(usage.get(k), int)}


def _user_text(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "\n".join(b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text")


def _system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return "\n".join(b.get("text", "") for b in system if isinstance(b, dict))
    return ""


def _structured_output(params: dict) -> bool:
    """Whether a request asks for JSON that fits a schema (Anthropic's output_format, OpenAI's
    response_format or text.format)."""
    formats = [params.get("output_format"), params.get("response_format"),
               (params.get("text") or {}).get("format") if isinstance(params.get("text"), dict) else None,
               (params.get("output_config") or {}).get("format") if isinstance(params.get("output_config"), dict)
               else None]
    return any(isinstance(f, dict) and f.get("type") in ("json_schema", "json_object") for f in formats)


def _edited_files(text: str | None) -> list[str] | None:
    """For an answer's text that carries file edits (SEARCH/REPLACE blocks, a patch, a unified diff):
    the files it names (the line before each block, or the patch's headers); None when it edits nothing."""
    if not text or not any(p.search(text) for p in TEXT_EDITS):
        return None
    files: list[str] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        name = None
        if re.fullmatch(r"<{5,9} SEARCH\s*", line):
            # The file name is the last non-fence line above the block (aider's format).
            above = [ln.strip() for ln in lines[max(0, i - 3):i] if ln.strip() and not ln.strip().startswith("```")]
            name = above[-1] if above else None
        elif line.startswith(("+++ ", "*** Add File: ", "*** Update File: ")):
            name = line.split(" ", 1)[1].split(": ", 1)[-1].strip()
            name = name[2:] if name.startswith("b/") else name
        if name and name != "/dev/null" and name not in files:
            files.append(name.strip("`*"))
    return files
