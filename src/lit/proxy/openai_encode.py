"""A message in the Anthropic shape (text, thinking and tool_use blocks) answered as OpenAI's Chat
Completions or Responses API would answer it, JSON or streamed: what the scripted upstream and
`lit replay` serve to OpenAI clients."""

from __future__ import annotations

import json
import time
import uuid


def _sse(data: dict | str, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return (f"event: {event}\n" if event else "").encode() + f"data: {payload}\n\n".encode()


def _pieces(text: str, n: int = 24) -> list[str]:
    return [text[i: i + n] for i in range(0, len(text), n)] or [""]


def _custom(call: dict) -> bool:
    """A freeform tool's call (text input, as Codex's apply_patch), not a function's JSON arguments."""
    return call.get("type") == "custom_tool_use" or isinstance(call.get("input"), str)


def _arguments(call: dict) -> str:
    value = call.get("input", {})
    return value if isinstance(value, str) else json.dumps(value)


def _parts(message: dict) -> tuple[str, str, list[dict]]:
    thinking = "".join(b.get("thinking", "") for b in message["content"] if b.get("type") == "thinking")
    text = "".join(b.get("text", "") for b in message["content"] if b.get("type") == "text")
    calls = [b for b in message["content"] if b.get("type") in ("tool_use", "custom_tool_use")]
    return thinking, text, calls


def chat_completion(message: dict, model: str) -> dict:
    thinking, text, calls = _parts(message)
    msg: dict = {"role": "assistant", "content": text or None}
    if thinking:
        msg["reasoning_content"] = thinking
    if calls:
        msg["tool_calls"] = [{"id": c["id"], "type": "custom", "custom": {"name": c["name"], "input": c["input"]}}
                             if _custom(c) else {"id": c["id"], "type": "function",
                                                 "function": {"name": c["name"], "arguments": _arguments(c)}}
                             for c in calls]
    usage = message.get("usage", {})
    return {"id": "chatcmpl-" + uuid.uuid4().hex[:20], "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "message": msg, "logprobs": None,
                                         "finish_reason": "tool_calls" if calls else "stop"}],
            "usage": {"prompt_tokens": usage.get("input_tokens", 0), "completion_tokens": usage.get("output_tokens", 0),
                      "total_tokens": usage.get("input_tokens", 0) + usage.get("output_tokens", 0)}}


def chat_stream(message: dict, model: str, include_usage: bool = True) -> list[bytes]:
    thinking, text, calls = _parts(message)
    cid, created = "chatcmpl-" + uuid.uuid4().hex[:20], int(time.time())

    def chunk(delta: dict, finish: str | None = None) -> bytes:
        return _sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                     "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]})

    out = [chunk({"role": "assistant", "content": ""})]
    if thinking:
        out += [chunk({"reasoning_content": p}) for p in _pieces(thinking)]
    if text:
        out += [chunk({"content": p}) for p in _pieces(text)]
    for i, c in enumerate(calls):
        kind, field = ("custom", "input") if _custom(c) else ("function", "arguments")
        out.append(chunk({"tool_calls": [{"index": i, "id": c["id"], "type": kind,
                                          kind: {"name": c["name"], field: ""}}]}))
        out += [chunk({"tool_calls": [{"index": i, kind: {field: p}}]}) for p in _pieces(_arguments(c))]
    out.append(chunk({}, "tool_calls" if calls else "stop"))
    if include_usage:
        usage = chat_completion(message, model)["usage"]
        out.append(_sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                         "choices": [], "usage": usage}))
    out.append(_sse("[DONE]"))
    return out


def _output_items(message: dict) -> list[dict]:
    items: list[dict] = []
    for b in message["content"]:
        if b.get("type") == "thinking":
            item = {"type": "reasoning", "id": "rs_" + uuid.uuid4().hex[:20],
                    "summary": [{"type": "summary_text", "text": b.get("thinking", "")}]}
            if b.get("signature"):  # what a client that asks for reasoning.encrypted_content gets back
                item["encrypted_content"] = b["signature"]
            items.append(item)
        elif b.get("type") == "text":
            items.append({"type": "message", "id": "msg_" + uuid.uuid4().hex[:20], "role": "assistant",
                          "status": "completed",
                          "content": [{"type": "output_text", "text": b.get("text", ""), "annotations": []}]})
        elif b.get("type") in ("tool_use", "custom_tool_use") and isinstance(b.get("input"), str):
            # Text input is a freeform tool's (Codex's apply_patch): a custom tool call.
            items.append({"type": "custom_tool_call", "id": "ctc_" + uuid.uuid4().hex[:20], "call_id": b["id"],
                          "name": b["name"], "input": b["input"], "status": "completed"})
        elif b.get("type") == "tool_use":
            items.append({"type": "function_call", "id": "fc_" + uuid.uuid4().hex[:20], "call_id": b["id"],
                          "name": b["name"], "arguments": json.dumps(b.get("input", {})), "status": "completed"})
    return items


def response_object(message: dict, model: str, items: list[dict] | None = None) -> dict:
    usage = message.get("usage", {})
    return {"id": "resp_" + uuid.uuid4().hex[:20], "object": "response", "created_at": int(time.time()),
            "status": "completed", "model": model, "output": items if items is not None else _output_items(message),
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "error": None,
            "incomplete_details": None, "instructions": None, "metadata": {}, "temperature": 1.0, "top_p": 1.0,
            "usage": {"input_tokens": usage.get("input_tokens", 0), "output_tokens": usage.get("output_tokens", 0),
                      "total_tokens": usage.get("input_tokens", 0) + usage.get("output_tokens", 0),
                      "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens_details": {"reasoning_tokens": 0}}}


# A tool call's item: the field its input streams in, and the events that stream it.
_STREAMED_INPUT = {"function_call": ("arguments", "response.function_call_arguments"),
                   "custom_tool_call": ("input", "response.custom_tool_call_input")}


def responses_stream(message: dict, model: str) -> list[bytes]:
    return [_sse(event, event=event["type"]) for event in responses_events(message, model)]


def responses_events(message: dict, model: str) -> list[dict]:
    """The Responses API's stream events for a message: SSE over HTTP, one text frame each over a
    WebSocket."""
    items = _output_items(message)
    final = response_object(message, model, items)
    seq = iter(range(1_000_000))

    def ev(kind: str, **data) -> dict:
        return {"type": kind, "sequence_number": next(seq), **data}

    started = {**final, "status": "in_progress", "output": [], "usage": None}
    out = [ev("response.created", response=started), ev("response.in_progress", response=started)]
    for i, item in enumerate(items):
        if item["type"] == "message":
            text = item["content"][0]["text"]
            out.append(ev("response.output_item.added", output_index=i,
                          item={**item, "status": "in_progress", "content": []}))
            out.append(ev("response.content_part.added", item_id=item["id"], output_index=i, content_index=0,
                          part={"type": "output_text", "text": "", "annotations": []}))
            out += [ev("response.output_text.delta", item_id=item["id"], output_index=i, content_index=0,
                       delta=p, logprobs=[]) for p in _pieces(text)]
            out.append(ev("response.output_text.done", item_id=item["id"], output_index=i, content_index=0,
                          text=text, logprobs=[]))
            out.append(ev("response.content_part.done", item_id=item["id"], output_index=i, content_index=0,
                          part=item["content"][0]))
        elif item["type"] in _STREAMED_INPUT:
            field, events = _STREAMED_INPUT[item["type"]]
            out.append(ev("response.output_item.added", output_index=i,
                          item={**item, field: "", "status": "in_progress"}))
            out += [ev(f"{events}.delta", item_id=item["id"], output_index=i, delta=p) for p in _pieces(item[field])]
            named = {"name": item["name"]} if item["type"] == "function_call" else {}
            out.append(ev(f"{events}.done", item_id=item["id"], output_index=i, **{field: item[field]}, **named))
        else:
            out.append(ev("response.output_item.added", output_index=i, item={**item, "summary": []}))
        out.append(ev("response.output_item.done", output_index=i, item=item))
    out.append(ev("response.completed", response=final))
    return out
