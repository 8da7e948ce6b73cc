"""A scripted Messages API server on 127.0.0.1: the upstream of lit's tests, benchmarks and
`lit replay`. It answers each POST /v1/messages with the next reply of its script, streamed as
SSE when the request asks for a stream, and keeps every request it received.

A reply is one of:
- a message dict (`content`, optional `stop_reason`, `usage`, `model`, `id`): answered as the
  API would, JSON or SSE; on /v1/chat/completions and /v1/responses the same message is answered
  in OpenAI's shapes, so one script serves both kinds of client;
- `{"status": 529, "body": {...} | b"...", "headers": {...}}`: an error or any raw answer;
- `{"chunks": [b"...", ...], "delay": 0.01, "reset_after": 3, "stall_after": 2, "stall": 60,
  "headers": {...}}`: raw bytes streamed chunk by chunk (malformed streams, mid-stream resets, a
  stream that goes silent for `stall` seconds after `stall_after` chunks);
- a callable taking the request's JSON and returning one of the above.

The Responses API is also served over a WebSocket (an upgrade on /v1/responses, as Codex asks
first): each `response.create` frame is a request, answered with one text frame per event.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from lit.proxy import openai, openai_encode
from lit.proxy.anthropic import message_to_sse

Reply = dict | Callable[[dict], dict]


def text_message(text: str, **extra: Any) -> dict:
    return {"content": [{"type": "text", "text": text}], "stop_reason": "end_turn", **extra}


def tool_message(name: str, tool_input: dict, *, thinking: str | None = None, text: str | None = None,
                 tool_id: str | None = None) -> dict:
    content: list[dict] = []
    if thinking:
        content.append({"type": "thinking", "thinking": thinking, "signature": "sig-" + uuid.uuid4().hex})
    if text:
        content.append({"type": "text", "text": text})
    content.append({"type": "tool_use", "id": tool_id or "toolu_" + uuid.uuid4().hex[:24],
                    "name": name, "input": tool_input})
    return {"content": content, "stop_reason": "tool_use"}


class ScriptedUpstream:
    def __init__(self, replies: list[Reply] | Callable[[dict], dict] | None = None, *,
                 chunk_delay: float = 0.0, host: str = "127.0.0.1", port: int = 0, websocket: bool = True):
        self.replies = replies if replies is not None else []
        self.websocket = websocket  # whether /v1/responses takes a WebSocket upgrade (else 404, as a proxy may)
        self.chunk_delay = chunk_delay
        self.host, self.port = host, port
        self.requests: list[dict] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._count = 0
        self.hung_up: list[float] = []  # when a client left in the middle of a stalled stream
        self.websocket_frames: list[list[tuple[bool, str]]] = []  # per connection: (from the client, text)
        self._conversations: dict[str, list[dict]] = {}  # response id -> the input and output it ended

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> ScriptedUpstream:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="scripted-upstream", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("scripted upstream did not start")

    def stop(self) -> None:
        if self._loop and self._runner:
            fut = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            try:
                fut.result(5)
            except Exception:  # noqa: BLE001 - stopping a test server must not fail the test
                pass
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(5)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, self.host, self.port)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self._loop.run_forever()

    def next_reply(self, body: dict) -> dict:
        if callable(self.replies):
            return self.replies(body)
        if self._count >= len(self.replies):
            return {"status": 500, "body": {"type": "error", "error": {
                "type": "api_error", "message": f"scripted upstream: no reply left for request {self._count + 1}"}}}
        reply = self.replies[self._count]
        self._count += 1
        return reply(body) if callable(reply) else reply

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        self.requests.append({"method": request.method, "path": request.path,
                              "query": request.query_string, "headers": dict(request.headers),
                              "body": raw, "json": body if isinstance(body, dict) else {}})
        if request.method == "HEAD" or request.method == "GET" and request.path == "/":
            return web.Response(status=200)
        if request.path.endswith("/count_tokens"):
            return web.json_response({"input_tokens": len(raw) // 4})
        if request.path == "/v1/models":
            return web.json_response({"data": [{"id": "claude-sonnet-4-6", "type": "model"}], "has_more": False})
        if request.method != "POST":  # only a POST is a call to the model: no reply of the script spent on it
            return web.Response(status=404, text=f"scripted upstream: no {request.method} {request.path}")
        reply = self.next_reply(body if isinstance(body, dict) else {})
        headers = {"request-id": "req_" + uuid.uuid4().hex[:24], **reply.get("headers", {})}
        if "chunks" in reply:
            return await self._stream_raw(request, reply, headers)
        if "status" in reply or "body" in reply:
            payload = reply.get("body", b"")
            if isinstance(payload, (dict, list)):
                payload = json.dumps(payload).encode()
                headers.setdefault("content-type", "application/json")
            return web.Response(status=reply.get("status", 200), body=payload, headers=headers)
        message = self._complete(reply, body)
        stream = bool(body.get("stream"))
        protocol = openai.protocol_for("POST", request.path)
        if protocol in ("openai-chat", "openai-responses"):
            encode = {"openai-chat": (openai_encode.chat_completion, openai_encode.chat_stream),
                      "openai-responses": (openai_encode.response_object, openai_encode.responses_stream)}[protocol]
            if not stream:
                return web.json_response(encode[0](message, message["model"]), headers=headers)
            return await self._stream_raw(
                request, {"chunks": encode[1](message, message["model"]),
                          "delay": reply.get("delay", self.chunk_delay)},
                {**headers, "content-type": "text/event-stream"})
        if stream:
            chunks = message_to_sse(message)
            return await self._stream_raw(
                request, {"chunks": chunks, "delay": reply.get("delay", self.chunk_delay)},
                {**headers, "content-type": "text/event-stream", "cache-control": "no-cache"})
        return web.json_response(message, headers=headers)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        """The Responses API over a WebSocket: each `response.create` frame is a request (the body
        without its `type`), answered with the stream's events, one text frame each."""
        if not self.websocket or openai.protocol_for("POST", request.path) != "openai-responses":
            self.requests.append({"method": request.method, "path": request.path, "query": request.query_string,
                                  "headers": dict(request.headers), "body": b"", "json": {}, "websocket": True})
            return web.Response(status=404, text="no WebSocket here")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        frames: list[tuple[bool, str]] = []
        self.websocket_frames.append(frames)
        async for frame in ws:
            if frame.type != WSMsgType.TEXT:
                continue
            frames.append((True, frame.data))
            try:
                data = json.loads(frame.data)
            except ValueError:
                continue
            if not isinstance(data, dict) or data.get("type") != "response.create":
                continue
            body = {k: v for k, v in data.items() if k != "type"}
            # The client sends only what is new after `previous_response_id`; the model sees it all.
            earlier = self._conversations.get(str(body.get("previous_response_id")), [])
            body = {**body, "input": earlier + list(body.get("input") or [])}
            self.requests.append({"method": "POST", "path": request.path, "query": request.query_string,
                                  "headers": dict(request.headers), "body": frame.data.encode(), "json": body,
                                  "websocket": True})
            if body.get("generate") is False:  # a warm-up: nothing to say, no reply of the script used
                reply: dict = {"content": [], "usage": {"input_tokens": 0, "output_tokens": 0}}
            else:
                reply = self.next_reply(body)
            if "status" in reply or "body" in reply or "chunks" in reply:
                error = reply.get("body") if isinstance(reply.get("body"), dict) else {"message": "scripted error"}
                event = json.dumps({"type": "error", "status": reply.get("status", 500),
                                    "error": error.get("error", error)})
                frames.append((False, event))
                await ws.send_str(event)
                continue
            message = self._complete(reply, body)
            for event in openai_encode.responses_events(message, message["model"]):
                if event["type"] == "response.completed":
                    self._conversations[event["response"]["id"]] = body["input"] + event["response"]["output"]
                frames.append((False, json.dumps(event)))
                await ws.send_str(frames[-1][1])
                if self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)
        return ws

    def _complete(self, reply: dict, body: dict) -> dict:
        usage = {"input_tokens": len(json.dumps(body.get("messages", body.get("input", [])))) // 4,
                 "output_tokens": max(1, len(json.dumps(reply.get("content", []))) // 4),
                 "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        usage.update(reply.get("usage", {}))
        return {"id": reply.get("id", "msg_" + uuid.uuid4().hex[:24]), "type": "message",
                "role": "assistant", "model": reply.get("model", body.get("model", "claude-sonnet-4-6")),
                "content": reply["content"], "stop_reason": reply.get("stop_reason", "end_turn"),
                "stop_sequence": None, "usage": usage}

    async def _stream_raw(self, request: web.Request, reply: dict, headers: dict) -> web.StreamResponse:
        resp = web.StreamResponse(status=reply.get("status", 200), headers={
            "content-type": "text/event-stream", **headers})
        await resp.prepare(request)
        delay = reply.get("delay", self.chunk_delay)
        reset_after = reply.get("reset_after")
        for i, chunk in enumerate(reply["chunks"]):
            if reset_after is not None and i >= reset_after:
                if request.transport:
                    request.transport.abort()  # a reset mid-stream, as a failing upstream does
                return resp
            if i == reply.get("stall_after") and not await self._stall(request, reply.get("stall", 60.0)):
                return resp
            await resp.write(chunk)
            if delay:
                await asyncio.sleep(delay)
        await resp.write_eof()
        return resp

    async def _stall(self, request: web.Request, seconds: float) -> bool:
        """Say nothing for `seconds`; False (and the time noted) if the client hangs up meanwhile."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if request.transport is None or request.transport.is_closing():
                self.hung_up.append(time.monotonic())
                return False
            await asyncio.sleep(0.02)
        return True


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()

