"""OpenAI's Chat Completions and Responses APIs, parsed into the same `ParsedExchange` as the
Messages API: content blocks of the Anthropic shapes (text, thinking, tool_use, tool_result), so
the recorder, blame, weave, serve and pr need no change.

Like the Anthropic parser, nothing here raises on bad input: what cannot be parsed is noted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from lit.proxy.anthropic import ParsedExchange, decode_body, header, iter_sse, join_errors, read_json

STOP_REASONS = {"stop": "end_turn", "tool_calls": "tool_use", "function_call": "tool_use",
                "length": "max_tokens", "content_filter": "refusal"}
_CHAT_CONTEXT = {"messages", "tools", "model", "stream", "functions"}
_RESPONSES_CONTEXT = {"input", "instructions", "tools", "model", "stream"}
# Input items that set how the model runs (Codex's reasoning effort), not what was said: kept as params.
_SETTINGS_ITEMS = {"configuration_update"}


def _loads(s: Any) -> Any:
    if not isinstance(s, str):
        return s if s is not None else {}
    try:
        return read_json(s) if s.strip() else {}
    except ValueError:
        return {"_arguments": s}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict)
                         and p.get("type") in ("text", "input_text", "output_text", "summary_text"))
    return ""


def _usage(u: dict | None) -> dict:
    u = u or {}
    out = {}
    inp = u.get("prompt_tokens", u.get("input_tokens"))
    outp = u.get("completion_tokens", u.get("output_tokens"))
    details = u.get("prompt_tokens_details") or u.get("input_tokens_details") or {}
    if isinstance(inp, int):
        out["input_tokens"] = inp
    if isinstance(outp, int):
        out["output_tokens"] = outp
    if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
        out["cache_read_input_tokens"] = details["cached_tokens"]
    return out


def _load_request(body: bytes, p: ParsedExchange) -> dict | None:
    try:
        data = read_json(body)
    except (ValueError, UnicodeDecodeError) as e:
        p.parse_error = f"request: not JSON ({e})"
        return None
    if not isinstance(data, dict):
        p.parse_error = "request: JSON is not an object"
        return None
    p.model = data.get("model") if isinstance(data.get("model"), str) else None
    p.stream = bool(data.get("stream"))
    return data


def _request_done(p: ParsedExchange, data: dict, messages: list[dict], system: str | None,
                  context: set[str]) -> ParsedExchange:
    p.messages, p.system = messages, system
    p.tools = data.get("tools") if isinstance(data.get("tools"), list) else None
    p.params = {k: v for k, v in data.items() if k not in context}
    p.request_ok = True
    return p


def _decoded(body: bytes, headers: dict[str, str], p: ParsedExchange) -> bytes | None:
    try:
        return decode_body(body, headers)
    except Exception as e:  # noqa: BLE001 - any decoding failure is a parse error, never a crash
        p.parse_error = join_errors(p.parse_error, f"response: cannot decode ({e})")
        return None


# --- Chat Completions ----------------------------------------------------------------------------


def parse_chat_request(body: bytes) -> ParsedExchange:
    p = ParsedExchange(protocol="openai-chat")
    data = _load_request(body, p)
    if data is None:
        return p
    messages = data.get("messages")
    if not isinstance(messages, list):
        p.parse_error = "request: no messages list"
        return p
    system_parts: list[str] = []
    out: list[dict] = []
    for m in messages:
        if not isinstance(m, dict):
            continue
        role = m.get("role")
        if role in ("system", "developer"):
            if not out:
                system_parts.append(_text_of(m.get("content")))
                continue
            out.append({"role": "system", "content": [{"type": "text", "text": _text_of(m.get("content"))}]})
        elif role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.get("tool_call_id"), "content": _text_of(m.get("content"))}
            if out and out[-1]["role"] == "user" and all(b.get("type") == "tool_result" for b in out[-1]["content"]):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        elif role == "assistant":
            content: list[dict] = []
            reasoning = m.get("reasoning_content") or m.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                content.append({"type": "thinking", "thinking": reasoning})
            text = _text_of(m.get("content"))
            if text:
                content.append({"type": "text", "text": text})
            for call in m.get("tool_calls") or []:
                content.append(_chat_call(call))
            out.append({"role": "assistant", "content": content})
        else:
            content = m.get("content")
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else [
                {"type": "text", "text": c.get("text", "")} if c.get("type") == "text" else c
                for c in content or [] if isinstance(c, dict)]
            out.append({"role": "user", "content": blocks})
    return _request_done(p, data, out, "\n\n".join(system_parts) if system_parts else None, _CHAT_CONTEXT)


def parse_chat_response(body: bytes, headers: dict[str, str], status: int | None,
                        p: ParsedExchange) -> ParsedExchange:
    raw = _decoded(body, headers, p)
    if raw is None:
        return p
    if "text/event-stream" in header(headers, "content-type").lower():
        return _assemble_chat_stream(raw, p)
    try:
        data = read_json(raw) if raw else None
    except (ValueError, UnicodeDecodeError) as e:
        p.parse_error = join_errors(p.parse_error, f"response: not JSON ({e})")
        return p
    if not isinstance(data, dict):
        return p
    if "error" in data and not data.get("choices"):
        p.error = data["error"] if isinstance(data["error"], dict) else {"message": str(data["error"])}
        return p
    choice = (data.get("choices") or [{}])[0]
    msg = choice.get("message") or {}
    content: list[dict] = []
    reasoning = msg.get("reasoning_content") or msg.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        content.append({"type": "thinking", "thinking": reasoning})
    if isinstance(msg.get("content"), str) and msg["content"]:
        content.append({"type": "text", "text": msg["content"]})
    for call in msg.get("tool_calls") or []:
        content.append(_chat_call(call))
    _finish(p, content, STOP_REASONS.get(choice.get("finish_reason"), choice.get("finish_reason")),
            _usage(data.get("usage")), data.get("model"))
    return p


def _assemble_chat_stream(raw: bytes, p: ParsedExchange) -> ParsedExchange:
    reasoning, text = [], []
    calls: dict[int, dict] = {}
    finish, usage, model, done = None, {}, None, False
    for _event, data in iter_sse(raw):
        if data.strip() == "[DONE]":
            done = True
            continue
        try:
            chunk = read_json(data)
        except ValueError:
            p.parse_error = join_errors(p.parse_error, "response: bad chunk in stream")
            continue
        if not isinstance(chunk, dict):
            continue
        model = chunk.get("model") or model
        if chunk.get("usage"):
            usage = _usage(chunk["usage"])
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            r = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(r, str):
                reasoning.append(r)
            if isinstance(delta.get("content"), str):
                text.append(delta["content"])
            for tc in delta.get("tool_calls") or []:
                slot = calls.setdefault(tc.get("index", len(calls)),
                                        {"id": None, "name": None, "args": [], "custom": False})
                slot["id"] = tc.get("id") or slot["id"]
                slot["custom"] = slot["custom"] or tc.get("type") == "custom" or "custom" in tc
                fn = tc.get("function") or tc.get("custom") or {}
                slot["name"] = fn.get("name") or slot["name"]
                piece = fn.get("arguments", fn.get("input"))
                if isinstance(piece, str):
                    slot["args"].append(piece)
            finish = choice.get("finish_reason") or finish
    content: list[dict] = []
    if "".join(reasoning):
        content.append({"type": "thinking", "thinking": "".join(reasoning)})
    if "".join(text):
        content.append({"type": "text", "text": "".join(text)})
    for i in sorted(calls):
        c = calls[i]
        if c["custom"]:
            content.append({"type": "custom_tool_use", "id": c["id"], "name": c["name"], "input": "".join(c["args"])})
        else:
            content.append({"type": "tool_use", "id": c["id"], "name": c["name"], "input": _loads("".join(c["args"]))})
    if not done and not finish:
        p.parse_error = join_errors(p.parse_error, "response: stream ended before [DONE]")
    _finish(p, content, STOP_REASONS.get(finish, finish), usage, model)
    return p


def _chat_call(call: dict) -> dict:
    """A tool call of a Chat Completions message: a function's JSON arguments, or a custom tool's text."""
    if call.get("type") == "custom" or "custom" in call:
        custom = call.get("custom") or {}
        return {"type": "custom_tool_use", "id": call.get("id"), "name": custom.get("name"),
                "input": custom.get("input") if isinstance(custom.get("input"), str) else ""}
    fn = call.get("function") or {}
    return {"type": "tool_use", "id": call.get("id"), "name": fn.get("name"), "input": _loads(fn.get("arguments"))}


def _finish(p: ParsedExchange, content: list[dict], stop: str | None, usage: dict, model: str | None) -> None:
    p.response = {"role": "assistant", "content": content}
    p.stop_reason = stop
    p.usage = usage
    if not p.model and isinstance(model, str):
        p.model = model
    p.response_ok = True


# --- Responses API -------------------------------------------------------------------------------


def parse_responses_request(body: bytes) -> ParsedExchange:
    p = ParsedExchange(protocol="openai-responses")
    data = _load_request(body, p)
    if data is None:
        return p
    items = data.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    if not isinstance(items, list):
        p.parse_error = "request: no input"
        return p
    out: list[dict] = []
    more_tools: list[dict] = []
    settings: list[dict] = []

    def add(role: str, block: dict) -> None:
        if out and out[-1]["role"] == role and role != "system":
            out[-1]["content"].append(block)
        else:
            out.append({"role": role, "content": [block]})

    for item in items:
        if not isinstance(item, dict):
            continue
        itype = item.get("type", "message")
        if itype == "message":
            role = item.get("role", "user")
            role = "system" if role in ("system", "developer") else role
            text = _text_of(item.get("content"))
            add("assistant" if role == "assistant" else role, {"type": "text", "text": text})
        elif itype == "function_call":
            add("assistant", {"type": "tool_use", "id": item.get("call_id"), "name": item.get("name"),
                              "input": _loads(item.get("arguments"))})
        elif itype == "custom_tool_call":
            add("assistant", _custom_call(item))
        elif itype in ("function_call_output", "custom_tool_call_output"):
            output = item.get("output")
            add("user", {"type": "tool_result", "tool_use_id": item.get("call_id"),
                         "content": output if isinstance(output, str) else _text_of(output)})
        elif itype == "reasoning":
            add("assistant", _thinking(item))
        elif itype == "additional_tools":
            more_tools.extend(t for t in item.get("tools") or [] if isinstance(t, dict))
        elif itype in _SETTINGS_ITEMS:
            settings.append(item)
        else:
            add("user", {k: v for k, v in item.items() if k != "id"})
    instructions = data.get("instructions") if isinstance(data.get("instructions"), str) else None
    _request_done(p, data, out, instructions, _RESPONSES_CONTEXT)
    if more_tools:  # Codex sends some tools as an input item rather than in `tools`
        p.tools = (p.tools or []) + more_tools
    if settings:
        p.params["input_settings"] = settings
    return p


def _custom_call(item: dict) -> dict:
    """A freeform tool call (Codex's apply_patch): its input is text, not JSON arguments."""
    return {"type": "custom_tool_use", "id": item.get("call_id"), "name": item.get("name"),
            "input": item.get("input") if isinstance(item.get("input"), str) else ""}


def _thinking(item: dict) -> dict:
    """A reasoning item: its summary as the thinking, and the encrypted reasoning (when the client
    asked for it) kept as the block's signature, as it is for Anthropic's thinking blocks."""
    block = {"type": "thinking", "thinking": _text_of(item.get("summary")) or _text_of(item.get("content"))}
    if isinstance(item.get("encrypted_content"), str):
        block["signature"] = item["encrypted_content"]
    return block


def patch_files(patch: str) -> list[str]:
    """The files an apply_patch input adds, updates, deletes or moves to, in order."""
    files: list[str] = []
    for line in patch.splitlines():
        for marker in ("*** Add File: ", "*** Update File: ", "*** Delete File: ", "*** Move to: "):
            if line.startswith(marker) and line[len(marker):].strip() not in files:
                files.append(line[len(marker):].strip())
    return files


def parse_responses_response(body: bytes, headers: dict[str, str], status: int | None,
                             p: ParsedExchange) -> ParsedExchange:
    raw = _decoded(body, headers, p)
    if raw is None:
        return p
    if "text/event-stream" in header(headers, "content-type").lower():
        response, items = None, {}
        for _event, data in iter_sse(raw):
            try:
                ev = read_json(data)
            except ValueError:
                continue
            if not isinstance(ev, dict):
                continue
            etype = ev.get("type", "")
            if etype in ("response.completed", "response.incomplete", "response.failed"):
                response = ev.get("response")
            elif etype == "response.output_item.done":
                items[ev.get("output_index", len(items))] = ev.get("item")
            elif etype == "error":  # over a WebSocket, an error is an event of its own
                p.error = ev.get("error") if isinstance(ev.get("error"), dict) else {"message": str(ev)[:500]}
        if isinstance(response, dict) and not response.get("output") and items:
            # A response not stored upstream (`store: false`) may close with an empty output list.
            response = {**response, "output": [items[i] for i in sorted(items)]}
        if response is None:
            if not items:
                if p.error is None:
                    p.parse_error = join_errors(p.parse_error, "response: no response.completed event")
                return p
            p.parse_error = join_errors(p.parse_error, "response: stream ended before response.completed")
            response = {"output": [items[i] for i in sorted(items)]}
        _responses_output(p, response)
        return p
    try:
        data = read_json(raw) if raw else None
    except (ValueError, UnicodeDecodeError) as e:
        p.parse_error = join_errors(p.parse_error, f"response: not JSON ({e})")
        return p
    if isinstance(data, dict) and data.get("error") and not data.get("output"):
        p.error = data["error"] if isinstance(data["error"], dict) else {"message": str(data["error"])}
    elif isinstance(data, dict):
        _responses_output(p, data)
    return p


def _responses_output(p: ParsedExchange, response: dict) -> None:
    content: list[dict] = []
    calls = False
    for item in response.get("output") or []:
        if not isinstance(item, dict):
            continue
        itype = item.get("type")
        if itype == "reasoning":
            content.append(_thinking(item))
        elif itype == "message":
            content.append({"type": "text", "text": _text_of(item.get("content"))})
        elif itype == "function_call":
            calls = True
            content.append({"type": "tool_use", "id": item.get("call_id"), "name": item.get("name"),
                            "input": _loads(item.get("arguments"))})
        elif itype == "custom_tool_call":
            calls = True
            content.append(_custom_call(item))
        else:
            content.append(item)
    status = response.get("status")
    stop = "tool_use" if calls else ("end_turn" if status in (None, "completed") else status)
    _finish(p, content, stop, _usage(response.get("usage")), response.get("model"))
    p.response_id = response.get("id") if isinstance(response.get("id"), str) else None


# --- the Responses API over a WebSocket ----------------------------------------------------------

_LAST_EVENTS = ("response.completed", "response.failed", "response.incomplete", "error")


class ResponsesSocket:
    """Cuts one Responses API WebSocket into exchanges as its text messages come: each
    `response.create` and the events answering it are one exchange, in the shapes of the HTTP API
    (the request is the message without its `type`; the response is the events as SSE, as
    content-type text/event-stream), so the HTTP parsers read both."""

    def __init__(self) -> None:
        self.open = False
        self._events: list[bytes] = []

    def feed(self, from_client: bool, text: str) -> list[tuple[str, bytes, bool]]:
        """What `text` starts or ends: ("request", body, False) when a `response.create` is sent,
        ("response", body, complete) when its last event comes (or a new request cuts it short)."""
        try:
            data = read_json(text)
        except ValueError:
            return []
        if not isinstance(data, dict):
            return []
        out: list[tuple[str, bytes, bool]] = []
        if from_client:
            if data.get("type") != "response.create":
                return []
            if self.open:  # a new request before the last one ended: the client gave up on it
                out.append(("response", b"".join(self._events), False))
            self.open, self._events = True, []
            out.append(("request", json.dumps({k: v for k, v in data.items() if k != "type"}).encode(), False))
        elif self.open:
            kind = str(data.get("type") or "")
            self._events.append(f"event: {kind}\ndata: {text}\n\n".encode())
            if kind in _LAST_EVENTS:
                out.append(("response", b"".join(self._events), True))
                self.open, self._events = False, []
        return out

    def close(self) -> list[tuple[str, bytes, bool]]:
        """The connection ended: a response still open is incomplete."""
        if not self.open:
            return []
        self.open = False
        return [("response", b"".join(self._events), False)]


def websocket_exchanges(frames: Iterable[tuple[bool, str]]) -> Iterator[tuple[bytes, bytes, bool]]:
    """The exchanges of a whole Responses WebSocket, from its text messages in order as (from the
    client, text): (request body, response body, complete) each."""
    socket, request = ResponsesSocket(), b""
    for from_client, text in frames:
        for what, body, complete in socket.feed(from_client, text):
            if what == "request":
                request = body
            else:
                yield request, body, complete
    for _, body, complete in socket.close():
        yield request, body, complete


# --- dispatch ------------------------------------------------------------------------------------


def protocol_for(method: str, path: str) -> str | None:
    """Which parser an exchange gets, by its path (a base URL may add a prefix)."""
    if method != "POST":
        return None
    p = path.rstrip("/")
    if p.endswith("/v1/messages") or p == "/messages":
        return "anthropic"
    if p.endswith("/chat/completions"):
        return "openai-chat"
    if p.endswith("/responses"):
        return "openai-responses"
    return None
