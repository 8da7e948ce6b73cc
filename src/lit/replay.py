"""`lit replay`: a recorded conversation served as a Messages API upstream on 127.0.0.1.

An agent pointed at it (ANTHROPIC_BASE_URL) gets, for each request, the response recorded at
that turn of the conversation, streamed when it asks for a stream, so a recorded thread becomes
a deterministic fixture: same responses, same tool calls (with the recorded tool_use ids), no
API key and no network.

A request is matched to its turn by the length of its message list (the agent resends the whole
conversation, so turn k carries 2k-1 messages; a retry lands on the same turn). It must then
agree with the recording on what decides the conversation: the roles, the user's prompt text,
the ids of the tool results it sends back, and the tool calls of the assistant turns. Tool
result contents are not compared: they depend on the machine (paths, timings), and a replay in
a fresh directory must still work. A request that disagrees gets an Anthropic-style 400 error
saying which turn and what differed, and the same line is printed on stderr.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from lit import portable, store
from lit.errors import LitError
from lit.proxy.anthropic import parse_request
from lit.scripted import ScriptedUpstream


@dataclass
class Turn:
    number: int  # 1-based, in conversation order
    messages: list[dict]  # the recorded request's messages (normalized as the parser does)
    response: dict  # content, stop_reason, model, usage: what the upstream answered


@dataclass
class Recording:
    thread_id: str
    session_id: str
    turns: list[Turn]
    source: str  # what the user named: a thread id or a file


@dataclass
class Mismatch:
    turn: int | None
    message: str


def load(source: str, db_path: str | os.PathLike | None = None) -> Recording:
    """A recording from an export file (if `source` is a file) or from a thread in the DB."""
    if Path(source).is_file():
        header, rows = portable.read_export(source)
        db = sqlite_utils.Database(memory=True)
        store.migrate(db)
        portable.import_rows(db, rows)
        return from_db(db, header["thread"], source=source)
    if os.sep in source or source.endswith(".jsonl"):
        raise LitError(f"no such file: {source}")
    return from_db(store.read(db_path), source, source=source)


def from_db(db: sqlite_utils.Database, ref: str, *, source: str | None = None) -> Recording:
    thread = portable.resolve_thread(db, ref)
    convs = portable.conversation_ids(db, thread["id"])
    if not convs:
        raise LitError(f"thread {thread['id']} has no recorded exchanges to replay")
    main = convs[0]
    turns: list[Turn] = []
    for ex in portable.conversation_exchanges(db, main):
        if not ex.get("response_key") or not ex.get("message_key"):
            continue  # an error or a cut-off call: the agent retried it, and the retry is here
        row = db.execute("SELECT content FROM messages WHERE key = ?", [ex["response_key"]]).fetchone()
        if row is None:
            continue
        usage = {k: ex.get(k) or 0 for k in ("input_tokens", "output_tokens",
                                              "cache_creation_input_tokens", "cache_read_input_tokens")}
        content = store.resolve_content(db, store.unpack_content(row[0]))
        response = {"content": content, "stop_reason": ex.get("stop_reason") or "end_turn", "usage": usage}
        if ex.get("model"):
            response["model"] = ex["model"]
        turns.append(Turn(0, store.message_chain(db, ex["message_key"]), response))
    # A retried call is recorded twice with the same messages: keep the last answer.
    by_length: dict[int, Turn] = {}
    for t in turns:
        by_length[len(t.messages)] = t
    turns = sorted(by_length.values(), key=lambda t: len(t.messages))
    for i, t in enumerate(turns, start=1):
        t.number = i
    if not turns:
        raise LitError(f"thread {thread['id']} has no complete responses to replay")
    return Recording(thread["id"], thread["session_id"], turns, source or ref)


def prompt_of(recording: Recording) -> str:
    """The user's first prompt in the recording: what an agent must be given to replay it."""
    return _prompt_text(recording.turns[0].messages[0].get("content") or [])


def _clip(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= n else text[: n - 3] + "...")


def _prompt_text(content: list) -> str:
    # Claude Code wraps dynamic context (dates, paths) in <system-reminder> blocks: not the prompt.
    return "\n".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"
                     and not b.get("text", "").lstrip().startswith("<system-reminder>"))


def _ids(content: list, kind: str, key: str) -> list:
    return [b.get(key) for b in content if isinstance(b, dict) and b.get("type") == kind]


def difference(recorded: list[dict], got: list[dict]) -> str | None:
    """What differs between a recorded request's messages and a new one's, in one line."""
    if len(recorded) != len(got):
        return f"{len(got)} messages where the recording has {len(recorded)}"
    for i, (r, g) in enumerate(zip(recorded, got, strict=True), start=1):
        if r.get("role") != g.get("role"):
            return f"message {i} is from {g.get('role')!r}, the recording's from {r.get('role')!r}"
        rc, gc = r.get("content") or [], g.get("content") or []
        if r.get("role") == "assistant":
            rt = [(b.get("id"), b.get("name")) for b in rc if b.get("type") == "tool_use"]
            gt = [(b.get("id"), b.get("name")) for b in gc if b.get("type") == "tool_use"]
            if rt != gt:
                return f"message {i} (assistant) calls tools {gt}, the recording {rt}"
            continue
        rp, gp = _prompt_text(rc), _prompt_text(gc)
        if rp != gp:
            what = "the prompt" if i == 1 else f"the user text of message {i}"
            return f"{what} differs: recorded {_clip(rp)}, got {_clip(gp)}"
        rr, gr = _ids(rc, "tool_result", "tool_use_id"), _ids(gc, "tool_result", "tool_use_id")
        if rr != gr:
            return f"message {i} sends tool results for {gr}, the recording for {rr}"
    return None


def match(recording: Recording, messages: list[dict]) -> tuple[Turn | None, str | None]:
    """(the turn to answer, None), or (the turn it claims to be or None, what is wrong)."""
    n = len(messages)
    turn = next((t for t in recording.turns if len(t.messages) == n), None)
    if turn is None:
        lengths = ", ".join(str(len(t.messages)) for t in recording.turns)
        if n > len(recording.turns[-1].messages):
            return None, (f"request with {n} messages goes past the end of the recording "
                          f"({len(recording.turns)} turns; their requests have {lengths} messages)")
        return None, f"no turn of the recording has {n} messages (its requests have {lengths})"
    diff = difference(turn.messages, messages)
    if diff:
        return turn, f"turn {turn.number} does not match the recording: {diff}"
    return turn, None


class Replay(ScriptedUpstream):
    """`Replay(source).start()`: the recording served on 127.0.0.1 (`.url`), until `.stop()`."""

    def __init__(self, source: str | Recording, *, db_path: str | os.PathLike | None = None,
                 port: int = 0, on_mismatch: Callable[[Mismatch], None] | None = None,
                 on_turn: Callable[[Turn], None] | None = None):
        super().__init__(self._reply, port=port)
        self.recording = source if isinstance(source, Recording) else load(source, db_path)
        self.mismatches: list[Mismatch] = []
        self.served: list[int] = []  # the turn numbers answered, in order
        self.on_mismatch = on_mismatch
        self.on_turn = on_turn

    def start(self) -> None:
        if self.port:  # said in one line here, rather than as a server thread that never starts
            with socket.socket() as s:
                try:
                    s.bind((self.host, self.port))
                except OSError as e:
                    raise LitError(f"cannot listen on {self.host}:{self.port}: {e.strerror}") from e
        super().start()

    def _reply(self, body: dict) -> dict:
        parsed = parse_request(json.dumps(body).encode())
        turn, error = match(self.recording, parsed.messages)
        if error or turn is None:
            mismatch = Mismatch(turn.number if turn else None, error or "")
            self.mismatches.append(mismatch)
            if self.on_mismatch:
                self.on_mismatch(mismatch)
            return {"status": 400, "body": {"type": "error", "error": {
                "type": "invalid_request_error", "message": f"lit replay: {error}"}}}
        self.served.append(turn.number)
        if self.on_turn:
            self.on_turn(turn)
        return turn.response


def print_mismatch(mismatch: Mismatch) -> None:
    print(f"lit replay: {mismatch.message}", file=sys.stderr, flush=True)


def describe(turn: Turn) -> str:
    """One line for a served turn: what the recorded response does."""
    parts = []
    for block in turn.response.get("content") or []:
        kind = block.get("type")
        parts.append(f"{kind} {block.get('name')}" if kind == "tool_use" else str(kind))
    return f"turn {turn.number}: {', '.join(parts) or 'empty'} ({turn.response.get('stop_reason')})"
