"""The Anthropic Messages API: parse what the relay saw into a `ParsedExchange`, and encode a
message back into the SSE events an upstream would stream (for `lit replay` and the scripted
upstream of the tests).

Parsing never raises: what cannot be parsed is noted in `parse_error` and the recorder keeps the
raw bytes.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

# Request fields that are neither the conversation nor its fixed context: kept as `params`.
_CONTEXT_FIELDS = {"messages", "system", "tools", "model", "stream"}


@dataclass
class ParsedExchange:
    protocol: str = "anthropic"
    model: str | None = None
    system: Any = None  # str or list of blocks (cache_control stripped)
    tools: list | None = None
    messages: list[dict] = field(default_factory=list)  # cache_control stripped
    params: dict = field(default_factory=dict)
    stream: bool = False
    response: dict | None = None  # the assembled response message (role, content, stop_reason, usage)
    response_id: str | None = None  # the upstream's id of the response (a later request may continue it)
    usage: dict = field(default_factory=dict)
    stop_reason: str | None = None
    error: dict | None = None  # an API error body the upstream sent
    parse_error: str | None = None
    request_ok: bool = False
    response_ok: bool = False
    # The request's messages as sent, and the keys of those already known from an earlier request
    # (see MessageHistory): the recorder hashes only the messages past them.
    raw_messages: list | None = None
    known_keys: list[str] = field(default_factory=list)


class MessageHistory:
    """The last requests' messages, as sent and as stored, with their keys. An agent resends the
    whole conversation on every call: a request's messages that equal, from the first on, those
    of a recent request are taken from it, so only the new ones are normalized and hashed (a
    session of N calls costs O(N) hashing, not O(N^2)). Equality of the parsed JSON is a C loop,
    far cheaper than hashing the canonical JSON again."""

    def __init__(self, size: int = 8):
        self.size = size
        self._recent: list[tuple[list, list[dict], list[str]]] = []

    def match(self, raw: list) -> tuple[int, list[dict], list[str]]:
        best: tuple[int, list[dict], list[str]] = (0, [], [])
        for prev_raw, normalized, keys in self._recent:
            n = _common_prefix(raw, prev_raw, min(len(raw), len(prev_raw), len(keys)))
            if n > best[0]:
                best = (n, normalized[:n], keys[:n])
            if n and n >= len(prev_raw) - 4:  # the conversation this request continues
                break
        return best

    def remember(self, raw: list, normalized: list[dict], keys: list[str]) -> None:
        self._recent.insert(0, (raw, normalized, keys))
        del self._recent[self.size:]


def strip_cache_control(value: Any) -> Any:
    """Agents move `cache_control` markers from turn to turn; they are not content, and keeping
    them would make the same message hash differently on every call."""
    if isinstance(value, dict):
        return {k: strip_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [strip_cache_control(v) for v in value]
    return value


def decode_body(body: bytes, headers: dict[str, str]) -> bytes:
    """Undo a content-encoding (the relay passes bytes through still compressed)."""
    enc = header(headers, "content-encoding").lower().strip()
    if not enc or enc == "identity" or not body:
        return body
    if enc == "gzip":
        return gzip.decompress(body)
    if enc == "deflate":
        try:
            return zlib.decompress(body)
        except zlib.error:
            return zlib.decompress(body, -zlib.MAX_WBITS)
    if enc == "br":
        import brotli  # type: ignore[import-not-found]  # aiohttp[speedups]; rare for this API

        return brotli.decompress(body)
    raise ValueError(f"unsupported content-encoding {enc!r}")


def header(headers: dict[str, str], name: str) -> str:
    """A header's value by its name in lower case, whatever case it was sent in ("" if absent)."""
    for k, v in headers.items():
        if k.lower() == name:
            return v
    return ""


def _common_prefix(a: list, b: list, limit: int) -> int:
    """How many first items a and b share: list equality runs in C, so the common cases (all
    shared, or all but the last few, where agents move their cache markers) cost one compare."""
    for k in range(limit, max(limit - 4, 0) - 1, -1):
        if a[:k] == b[:k]:
            return k
    lo, hi = 0, max(limit - 4, 0)  # a[:lo] == b[:lo]; a[:hi + 1] differs
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def parse_request(body: bytes, parsed: ParsedExchange | None = None,
                  history: MessageHistory | None = None) -> ParsedExchange:
    p = parsed or ParsedExchange()
    try:
        data = read_json(body)
    except (ValueError, UnicodeDecodeError) as e:
        p.parse_error = f"request: not JSON ({e})"
        return p
    if not isinstance(data, dict):
        p.parse_error = "request: JSON is not an object"
        return p
    p.model = data.get("model") if isinstance(data.get("model"), str) else None
    p.stream = bool(data.get("stream"))
    system = data.get("system")
    p.system = strip_cache_control(system) if system is not None else None
    tools = data.get("tools")
    p.tools = strip_cache_control(tools) if isinstance(tools, list) else None
    messages = data.get("messages")
    if isinstance(messages, list):
        raw = [m for m in messages if isinstance(m, dict)]
        n, known, p.known_keys = history.match(raw) if history else (0, [], [])
        p.messages = known + [_normalize_message(strip_cache_control(m)) for m in raw[n:]]
        p.raw_messages = raw
    else:
        p.parse_error = "request: no messages list"
    p.params = {k: v for k, v in data.items() if k not in _CONTEXT_FIELDS}
    p.request_ok = isinstance(messages, list)
    return p


def _normalize_message(m: dict) -> dict:
    """A message with string content and the same with one text block are the same message."""
    content = m.get("content")
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    out = dict(m)
    out["content"] = content
    return out


def parse_response(body: bytes, headers: dict[str, str], status: int | None,
                   parsed: ParsedExchange) -> ParsedExchange:
    p = parsed
    try:
        raw = decode_body(body, headers)
    except Exception as e:  # noqa: BLE001 - any decoding failure is a parse error, never a crash
        p.parse_error = join_errors(p.parse_error, f"response: cannot decode ({e})")
        return p
    ctype = header(headers, "content-type").lower()
    if "text/event-stream" in ctype:
        message, err = assemble_sse(raw)
        if err:
            p.parse_error = join_errors(p.parse_error, f"response: {err}")
        if message is not None:
            _set_response(p, message)
        return p
    if not raw:
        return p
    try:
        data = read_json(raw)
    except (ValueError, UnicodeDecodeError) as e:
        p.parse_error = join_errors(p.parse_error, f"response: not JSON ({e})")
        return p
    if isinstance(data, dict) and data.get("type") == "error":
        p.error = data.get("error") if isinstance(data.get("error"), dict) else {"message": str(data)}
        return p
    if isinstance(data, dict) and isinstance(data.get("content"), list):
        _set_response(p, data)
    elif status and status >= 400:
        p.error = {"message": str(data)[:500]}
    return p


def _set_response(p: ParsedExchange, message: dict) -> None:
    p.response = {
        "role": message.get("role", "assistant"),
        "content": strip_cache_control(message.get("content") or []),
    }
    p.usage = {k: v for k, v in (message.get("usage") or {}).items() if isinstance(v, int)}
    p.stop_reason = message.get("stop_reason")
    if not p.model and isinstance(message.get("model"), str):
        p.model = message["model"]
    p.response_ok = True


def read_json(data: str | bytes) -> Any:
    """json.loads, for what agents and upstreams send: JSON nested deeper than Python parses (a
    hostile body) is bad JSON like any other, a ValueError, never a RecursionError that would
    lose the whole exchange."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("nested too deeply to read") from None


def join_errors(a: str | None, b: str) -> str:
    """Two parse errors said as one."""
    return f"{a}; {b}" if a else b


def iter_sse(raw: bytes):
    """Yield (event, data) pairs from an SSE byte stream (any line endings)."""
    text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    for frame in text.split("\n\n"):
        event, data_lines = None, []
        for line in frame.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "event":
                event = value
            elif name == "data":
                data_lines.append(value)
        if event is not None or data_lines:
            yield event, "\n".join(data_lines)


def assemble_sse(raw: bytes) -> tuple[dict | None, str | None]:
    """Rebuild the response message from Messages API stream events.

    Handles text_delta, thinking_delta, signature_delta, input_json_delta (tool inputs arrive as
    JSON fragments), citations_delta, and any block type it does not know (kept as sent).
    Returns (message or None, error or None); a stream cut short gives the blocks seen so far.
    """
    stream = _Stream()
    for event, data in iter_sse(raw):
        if not data:
            continue
        try:
            ev = read_json(data)
        except ValueError:
            stream.errors.append(f"bad event data for {event!r}")
            continue
        if isinstance(ev, dict):
            handler = stream.handlers.get(ev.get("type") or event)
            if handler:
                handler(ev)
    return stream.result()


class _Stream:
    """The message a stream has built so far: one handler per event type."""

    DELTA_FIELDS = {"text_delta": "text", "thinking_delta": "thinking", "signature_delta": "signature"}

    def __init__(self) -> None:
        self.message: dict | None = None
        self.blocks: dict[int, dict] = {}
        # Deltas are collected in lists and joined once: a 10 MB stream is ~100,000 deltas, and
        # growing a string per delta would be quadratic.
        self.pieces: dict[tuple[int, str], list[str]] = {}
        self.partial_json: dict[int, list[str]] = {}
        self.errors: list[str] = []
        self.stopped = False
        self.handlers = {"message_start": self.message_start, "content_block_start": self.block_start,
                         "content_block_delta": self.block_delta, "content_block_stop": self.block_stop,
                         "message_delta": self.message_delta, "message_stop": self.message_stop,
                         "error": self.error}

    def message_start(self, ev: dict) -> None:
        self.message = dict(ev.get("message") or {})
        self.message.setdefault("content", [])
        self.message["usage"] = dict(self.message.get("usage") or {})

    def block_start(self, ev: dict) -> None:
        self.blocks[ev.get("index", len(self.blocks))] = dict(ev.get("content_block") or {})

    def block_delta(self, ev: dict) -> None:
        idx = ev.get("index")
        block = self.blocks.setdefault(idx, {"type": "unknown"})
        delta = ev.get("delta") or {}
        dtype = delta.get("type")
        if dtype in self.DELTA_FIELDS:
            name = self.DELTA_FIELDS[dtype]
            self.pieces.setdefault((idx, name), [block.get(name, "")]).append(delta.get(name, ""))
        elif dtype == "input_json_delta":
            self.partial_json.setdefault(idx, []).append(delta.get("partial_json", ""))
        elif dtype == "citations_delta":
            block.setdefault("citations", []).append(delta.get("citation"))
        else:
            block.setdefault("deltas", []).append(delta)

    def block_stop(self, ev: dict) -> None:
        idx = ev.get("index")
        if idx in self.partial_json:
            _finish_input(self.blocks.get(idx, {}), "".join(self.partial_json.pop(idx)), self.errors)

    def message_delta(self, ev: dict) -> None:
        if self.message is None:
            self.message = {"content": [], "usage": {}}
        delta = ev.get("delta") or {}
        for k in ("stop_reason", "stop_sequence", "container"):
            if k in delta:
                self.message[k] = delta[k]
        self.message["usage"].update({k: v for k, v in (ev.get("usage") or {}).items() if v is not None})

    def message_stop(self, ev: dict) -> None:
        self.stopped = True

    def error(self, ev: dict) -> None:
        self.errors.append(f"stream error: {json.dumps(ev.get('error'))[:300]}")

    def result(self) -> tuple[dict | None, str | None]:
        blocks, errors = self.blocks, self.errors
        for (idx, name), parts in self.pieces.items():
            blocks[idx][name] = "".join(parts)
        for idx, frag in self.partial_json.items():  # a stream cut inside a tool input
            _finish_input(blocks.get(idx, {}), "".join(frag), errors)
        if self.message is None and not blocks:
            return None, "; ".join(errors) or "no message events in stream"
        message = self.message if self.message is not None else {"content": [], "usage": {}}
        message["content"] = [blocks[i] for i in sorted(blocks, key=lambda x: (x is None, x))]
        if not self.stopped and not errors:
            errors.append("stream ended before message_stop")
        return message, ("; ".join(errors) or None)


def _finish_input(block: dict, fragment: str, errors: list[str]) -> None:
    if not fragment:
        block.setdefault("input", {})
        return
    try:
        block["input"] = read_json(fragment)
    except ValueError:
        block["input"] = {"_partial_json": fragment}
        errors.append("tool input JSON incomplete")


# --- encoding: a message -> the SSE an upstream streams ------------------------------------------


def sse_event(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def message_to_sse(message: dict, *, chunk_chars: int = 24) -> list[bytes]:
    """The stream events for a complete message, as the Messages API sends them: message_start,
    then per block a start, deltas (text and tool input cut into pieces) and a stop, then
    message_delta with stop_reason and output usage, then message_stop."""
    usage = dict(message.get("usage") or {})
    start = {k: v for k, v in message.items() if k not in ("content", "stop_reason", "usage")}
    start.update(
        {
            "type": "message",
            "role": "assistant",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**{k: v for k, v in usage.items() if k != "output_tokens"}, "output_tokens": 1},
        }
    )
    events = [sse_event("message_start", {"type": "message_start", "message": start})]
    for i, block in enumerate(message.get("content") or []):
        btype = block.get("type")
        if btype == "text":
            events.append(_block_start(i, {"type": "text", "text": ""}))
            for piece in _pieces(block.get("text", ""), chunk_chars):
                events.append(_delta(i, {"type": "text_delta", "text": piece}))
        elif btype == "thinking":
            events.append(_block_start(i, {"type": "thinking", "thinking": ""}))
            for piece in _pieces(block.get("thinking", ""), chunk_chars):
                events.append(_delta(i, {"type": "thinking_delta", "thinking": piece}))
            if block.get("signature"):
                events.append(_delta(i, {"type": "signature_delta", "signature": block["signature"]}))
        elif btype in ("tool_use", "server_tool_use"):
            head = {k: v for k, v in block.items() if k != "input"}
            events.append(_block_start(i, {**head, "input": {}}))
            for piece in _pieces(json.dumps(block.get("input", {})), chunk_chars):
                events.append(_delta(i, {"type": "input_json_delta", "partial_json": piece}))
        else:
            events.append(_block_start(i, block))
        events.append(sse_event("content_block_stop", {"type": "content_block_stop", "index": i}))
    events.append(
        sse_event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message.get("stop_reason", "end_turn"), "stop_sequence": None},
                "usage": {"output_tokens": usage.get("output_tokens", 0)},
            },
        )
    )
    events.append(sse_event("message_stop", {"type": "message_stop"}))
    return events


def _block_start(i: int, block: dict) -> bytes:
    return sse_event("content_block_start", {"type": "content_block_start", "index": i, "content_block": block})


def _delta(i: int, delta: dict) -> bytes:
    return sse_event("content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta})


def _pieces(text: str, n: int) -> list[str]:
    return [text[i : i + n] for i in range(0, len(text), n)] or [""]
