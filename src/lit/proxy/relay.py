"""The relay: every HTTP call the agent makes goes through here to the upstream, byte for byte.

A byte pump on asyncio, HTTP/1.1 on both sides. Heads are read through asyncio streams; bodies go
from one socket to the other in the protocol's callback, as the socket hands them over (`_Stream`).
Each piece of the request body goes upstream as it arrives, then to the spool (a pipe the
recorder process reads, see `lit.proxy.spool`, which holds a call's records until the call ends);
each answer chunk is written to the agent first, then to the spool. The relay reads only what it
must to move bytes: the request and response heads, and the body framing (Content-Length,
chunked) to know where a message ends. Bodies are never parsed, nothing here hashes or writes a
DB, and an answer is never held. After a 101 Switching Protocols (a WebSocket), bytes go both ways
as they come.

Measured with benchmarks/bench_relay.py against aiohttp, a bare asyncio forwarder and socat: aiohttp
reads a request body before the handler can send it on, and its client and server each parse and
re-frame the stream; pumping bodies through StreamReader.read cost twice the CPU of forwarding them
in the callback (one more copy, one task wake-up per piece). uvloop was no faster here (a 1.4 MB
request: +0.75 ms median to the first byte, 10% more CPU), so the standard event loop.

The one wait the relay may add: a request that carries tool results is a turn boundary, and the
working tree is snapshotted (by the recorder process) while the call goes on. The answer's first
bytes go out at once; only the bytes that end a tool call or the message (which would let the
agent run its next tool) wait, and only while that snapshot is still running (at most 5 s).

Failure modes, as the agent sees them:
- a request no local agent sends (a foreign Host, an Origin header, a non-JSON body): 403,
  not relayed, not recorded; a body over 64 MB: 413;
- upstream unreachable (or gone before its status line): 502 with an Anthropic-style error body;
- upstream cut mid-response: the agent's connection is cut too, never ended cleanly;
- the agent hangs up: the upstream call is cut at once, the exchange kept with complete=False.
A spool failure (the recorder gone or far behind) drops records, never the agent's bytes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from yarl import URL

from lit.proxy import spool as sp
from lit.proxy.spool import SpoolWriter, parse_head

log = logging.getLogger("lit.relay")

# RFC 9110 7.6.1: meaningful for one connection only, so never forwarded in either direction
# (Transfer-Encoding is kept: the relay forwards the body framing as it is).
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                        "proxy-connection", "te", "trailer", "upgrade"})
# Host is the upstream's; Expect: 100-continue is answered by the relay itself.
REQUEST_DROPPED = HOP_BY_HOP | {"host", "expect"}
GATE_TIMEOUT = 5.0  # seconds a snapshot may hold an answer's end back, at most
# A git hook of the session asks here that the recorder catch up before it binds a thread (the
# session's id in a Lit-Session header); never relayed. The wait is bounded: a recorder that is
# gone or stuck must never hang `git commit`.
SYNC_PATH = "/_lit/sync"
SYNC_WAIT = 10.0
# The agent's request body: 20 MB requests are ordinary with images, 64 MB is far above any real
# agent, and a body past it is refused before it is read (a 300 MB POST once took lit to 2 GB).
MAX_BODY = 64 * 1024**2
HEAD_LIMIT = 256 * 1024  # request and response heads
READ_SIZE = 256 * 1024
STOP_GRACE = 1.0  # at stop, a call still in flight (an agent's background process) gets this long
IDLE_REUSE = 30.0  # seconds an idle upstream connection is kept for the next call
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
# Bytes only a request carrying tool results contains (Anthropic, OpenAI chat, OpenAI responses).
TOOL_RESULT_MARKERS = (b'"tool_result"', b'"role":"tool"', b'"role": "tool"', b'"function_call_output"',
                       b'"custom_tool_call_output"')
# Searched as one pattern, one pass for all: five `in` scan a 256 KB piece five times when none is
# there (0.39 ms against 0.10 ms here), and three times before an OpenAI function_call_output.
TOOL_RESULT = re.compile(b"|".join(re.escape(m) for m in TOOL_RESULT_MARKERS))
# Bytes of an answer after which the agent can run a tool: the end of a tool call's block once
# one has begun (Anthropic's tool_use; an OpenAI Responses function, custom or shell call item),
# else the message's end (Anthropic), the response's end (Responses), a chat completion's finish.
# A quoted type never matches inside streamed text, where JSON escapes the quotes.
TOOL_START_MARKERS = (b'"tool_use"', b'"function_call"', b'"custom_tool_call"', b'"local_shell_call"')
BLOCK_END_MARKERS = (b"content_block_stop", b"response.output_item.done")
MESSAGE_END_MARKERS = (b"message_stop", b"response.completed", b'"finish_reason":"', b"[DONE]")
MARKER_TAIL = 32


class Gate(Protocol):
    """Snapshots at turn boundaries, taken in another process: `open(seq)` starts one and
    returns a future done when it is taken (or None when there is nothing to wait for)."""

    def open(self, seq: int) -> asyncio.Future | None: ...

    def sync(self, number: int) -> asyncio.Future | None:
        """A future done (True) once the recorder has written what was spooled before the sync
        record `number`; None when there is no recorder to ask."""


def error_body(message: str, kind: str = "api_error") -> bytes:
    """An error body in the Messages API's shape, so SDKs show the message as they do the API's."""
    return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()


def shown(url: URL | str) -> str:
    """A URL as lit says and stores it: credentials in it (user:pass@) masked."""
    url = URL(str(url))
    if url.user is None and url.password is None:
        return str(url)
    return str(url.with_user(None)).replace("://", "://***@", 1)


def refusal(headers: list[tuple[str, str]], port: int, has_body: bool) -> str | None:
    """Why a request may not reach the upstream, or None: the relay answers only what a local
    agent sends. A web page the developer has open can reach 127.0.0.1 too: through DNS
    rebinding (its Host is then the page's name), or with a no-preflight cross-site POST (its
    browser adds Origin, and the body is text/plain or a form). Neither may write into a thread."""
    hosts = [v for k, v in headers if k.lower() == "host"]
    allowed = {f"{h}:{port}" for h in LOOPBACK_HOSTS} | (set(LOOPBACK_HOSTS) if port == 80 else set())
    if len(hosts) != 1 or hosts[0].strip().lower() not in allowed:
        return f"lit: the relay answers only Host 127.0.0.1:{port}, localhost:{port} or [::1]:{port}"
    if any(k.lower() == "origin" for k, _ in headers):
        return "lit: the relay refuses requests from web pages (an Origin header was sent)"
    if has_body:
        kind = next((v for k, v in headers if k.lower() == "content-type"), "").split(";")[0].strip().lower()
        if not (kind == "application/json" or kind.startswith("application/") and kind.endswith("+json")):
            return f"lit: the relay takes JSON request bodies only, not {kind or 'a body without a content type'}"
    return None


def _tls_context() -> ssl.SSLContext:
    """The system's CAs plus certifi's (what the SDKs use), so an upstream the agent could reach
    directly is reachable through lit too."""
    context = ssl.create_default_context()
    try:
        import certifi  # noqa: PLC0415 - present with the anthropic SDK, but optional here

        context.load_verify_locations(certifi.where())
    except (ImportError, OSError):
        pass
    return context


@dataclass
class Upstream:
    """Where calls go: scheme, host, port, the path prefix, and what the relay sends as Host."""

    url: URL
    secure: bool
    host: str
    port: int
    prefix: str
    host_header: str
    auth: str | None  # Basic credentials from user:pass@ in the URL
    proxy: URL | None  # HTTPS_PROXY / HTTP_PROXY, as the agent's own client would use them

    @classmethod
    def parse(cls, upstream: str) -> Upstream:
        url = URL(upstream.rstrip("/"))
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"upstream must be an http(s) URL, not {shown(upstream)!r}")
        secure = url.scheme == "https"
        port = url.port or (443 if secure else 80)
        host = url.raw_host or ""
        host_header = (f"[{host}]" if ":" in host else host) + ("" if url.is_default_port() else f":{port}")
        auth = None
        if url.user is not None:
            auth = "Basic " + base64.b64encode(f"{url.user}:{url.password or ''}".encode()).decode()
        proxy = None
        if host not in LOOPBACK:
            proxies = urllib.request.getproxies_environment()
            chosen = proxies.get(url.scheme)
            if chosen and not urllib.request.proxy_bypass_environment(host, proxies):
                proxy = URL(chosen if "://" in chosen else "http://" + chosen)
        return cls(url, secure, host, port, url.raw_path.rstrip("/"), host_header, auth, proxy)


class _Stream(asyncio.StreamReaderProtocol):
    """A connection whose heads are read through its StreamReader and whose bodies, while `body`
    is set, go straight from the socket to where they are relayed: each piece as the socket hands
    it over, with no copy into the reader's buffer and no wake-up of the relaying task per piece.
    On a 1.4 MB request that is half the relay's CPU time and most of what it adds to the time to
    first byte (benchmarks/bench_relay.py, against the same pump on StreamReader.read)."""

    def __init__(self, reader: asyncio.StreamReader):
        super().__init__(reader)
        self.reader = reader
        self.body: _Body | None = None

    def data_received(self, data: bytes) -> None:
        body = self.body
        if body is None:
            super().data_received(data)
            return
        rest = body.take(data)
        if body.ended:
            self.body = None
        if rest:
            super().data_received(rest)

    def eof_received(self) -> bool | None:
        if self.body is not None:
            self.body.eof()
        return super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.body is not None:
            self.body.fail(f"{type(exc).__name__}: {exc}" if exc else "the connection closed")
        super().connection_lost(exc)


class _Body:
    """One message body relayed as it arrives: each piece written to `out`, then handed to `copy`
    (the spool), until its framing (a length, "chunked", or "close") says it ended. `head` goes out
    in the same write as the body's first bytes when they came with it (one wake-up of the other
    side, not two), else at once. When `out` holds more than it can take, reading from `source`
    pauses until it drains."""

    def __init__(self, framing: int | str, out: asyncio.StreamWriter, copy: Callable[[bytes], None],
                 source: asyncio.BaseTransport | None, head: bytes = b""):
        self.remaining = framing if isinstance(framing, int) else -1
        self.dechunk = sp.Dechunker(keep=False) if framing == "chunked" else None
        self.out, self.copy, self.head = out, copy, head
        # What pauses while `out` is full, narrowed once here rather than for each piece.
        self.source = source if isinstance(source, asyncio.ReadTransport) else None
        self.done: asyncio.Future = asyncio.get_running_loop().create_future()
        self._resuming: asyncio.Task | None = None
        if self.remaining == 0:
            self.done.set_result(None)

    @property
    def ended(self) -> bool:
        return self.done.done()

    @property
    def wanted(self) -> int:
        return self.remaining if self.remaining > 0 else READ_SIZE

    def take(self, data: bytes) -> bytes:
        """Relay the part of `data` that is the body's; returns what came after its end."""
        rest = b""
        if self.dechunk is not None:
            self.dechunk.feed(data)
            if self.dechunk.done and self.dechunk.rest:
                rest = self.dechunk.rest
                data = data[:len(data) - len(rest)]
            end = self.dechunk.done
        elif self.remaining >= 0:
            if len(data) > self.remaining:
                data, rest = data[:self.remaining], data[self.remaining:]
            self.remaining -= len(data)
            end = self.remaining == 0
        else:
            end = False
        if self.head:
            self.out.write(self.head + data)
            self.head = b""
        else:
            self.out.write(data)
        self.copy(data)
        if end:
            self.done.set_result(None)
        elif (self._resuming is None and self.source is not None
              and self.out.transport is not None and self.out.transport.get_write_buffer_size() > READ_SIZE):
            self.source.pause_reading()
            self._resuming = asyncio.ensure_future(self._resume())
        return rest

    async def _resume(self) -> None:
        assert self.source is not None
        try:
            await self.out.drain()
        except (ConnectionError, OSError) as e:
            self.fail(f"{type(e).__name__}: {e}")
        finally:
            self._resuming = None
            if not self.source.is_closing():
                self.source.resume_reading()

    def eof(self) -> None:
        if self.remaining < 0 and self.dechunk is None:
            if not self.ended:
                self.done.set_result(None)
        else:
            self.fail("the connection closed")

    def fail(self, why: str) -> None:
        if not self.ended:
            self.done.set_exception(ConnectionError(why))


async def _relay_body(conn: _Stream, body: _Body) -> None:
    """What the reader holds of the body already (it came with the head), then the rest straight
    from the socket; raises ConnectionError if the connection ends before the body does."""
    reader = conn.reader
    while reader._buffer and not body.ended:  # noqa: SLF001 - only what is there, never a wait
        body.take(await reader.read(body.wanted))
    if body.head:
        body.out.write(body.head)
        body.head = b""
    if not body.ended:
        if reader.exception() is not None:
            body.fail(str(reader.exception()))
        elif reader.at_eof():
            body.eof()
        else:
            conn.body = body
    try:
        await body.done
    finally:
        conn.body = None
        if body.ended and not body.done.cancelled():
            body.done.exception()  # retrieved: a cancelled call's cause is said elsewhere


async def _open(host: str, port: int, **kwargs: object) -> tuple[_Stream, asyncio.StreamWriter]:
    """asyncio.open_connection, with a `_Stream` as the protocol."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=HEAD_LIMIT)
    protocol = _Stream(reader)
    transport, _ = await loop.create_connection(lambda: protocol, host, port, **kwargs)  # type: ignore[arg-type]
    return protocol, asyncio.StreamWriter(transport, protocol, reader, loop)


@dataclass
class _Pooled:
    conn: _Stream
    writer: asyncio.StreamWriter
    idle_since: float = field(default_factory=time.monotonic)

    @property
    def reader(self) -> asyncio.StreamReader:
        return self.conn.reader

    def usable(self) -> bool:
        return (not self.writer.is_closing() and not self.reader.at_eof() and not self.reader._buffer  # noqa: SLF001
                and time.monotonic() - self.idle_since < IDLE_REUSE)


class _AgentConnection(_Stream):
    """One connection from the agent. Knows, from the socket's own events, whether the agent hung
    up: that (not the order in which lit notices things) says why a call ended early."""

    def __init__(self, relay: Relay):
        self.relay = relay
        super().__init__(asyncio.StreamReader(limit=HEAD_LIMIT))
        self.writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task | None = None
        self.busy = False  # an exchange is in flight
        self.hung_up = False  # the agent closed its end (EOF or reset)
        self.stopped = False  # cancelled by lit's stop
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.transport = transport
        loop = asyncio.get_running_loop()
        self.writer = asyncio.StreamWriter(transport, self, self.reader, loop)  # type: ignore[arg-type]
        self.relay._conns.add(self)  # noqa: SLF001
        self.task = loop.create_task(self.relay._serve(self))  # noqa: SLF001
        self.relay._tasks.add(self.task)  # noqa: SLF001
        self.task.add_done_callback(self.relay._tasks.discard)  # noqa: SLF001

    def eof_received(self) -> bool | None:
        self._gone()
        return super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone()
        self.relay._conns.discard(self)  # noqa: SLF001
        super().connection_lost(exc)

    def _gone(self) -> None:
        self.hung_up = True
        if self.busy and self.task and not self.task.done():
            self.task.cancel()


@dataclass
class _Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    lower: list[tuple[str, str]]  # the same, names in lower case
    chunked: bool
    length: int
    upgrade: bool
    keep_alive: bool


class _Cut(Exception):
    """The upstream stopped mid-response."""


class Relay:
    """An HTTP relay on 127.0.0.1 to `upstream`, appending a copy of each exchange to `spool`.

    From synchronous code: `port = relay.start()` (its own event loop in a thread), `relay.stop()`.
    From async code: `await relay.start_async()`, `await relay.stop_async()`.
    """

    def __init__(self, upstream: str, spool: SpoolWriter | None = None, *, port: int = 0,
                 host: str = "127.0.0.1", routes: dict[str, str] | None = None, gate: Gate | None = None):
        self.upstream = Upstream.parse(upstream)
        # Path prefixes relayed to another upstream, the prefix removed: {"/openai": "https://api.openai.com/v1"}
        # lets one relay serve an agent's Anthropic and OpenAI clients at once.
        self.routes = {prefix.rstrip("/"): Upstream.parse(url) for prefix, url in (routes or {}).items()}
        self.spool = spool
        self.gate = gate
        self.sync_session: str | None = None  # the session whose hooks may ask for a sync
        self._syncs = 0
        self.host, self.port = host, port
        self.exchanges = 0
        self._seq = 0
        self._stopping = False
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[_AgentConnection] = set()
        self._tasks: set[asyncio.Task] = set()
        self._pool: dict[tuple, list[_Pooled]] = {}
        self._tls: ssl.SSLContext | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def spool_lost(self) -> int:
        """Exchanges the spool could not keep whole (the recorder gone, or far behind)."""
        return len(self.spool.lost) if self.spool else 0

    # --- lifecycle -------------------------------------------------------------------------------

    async def start_async(self) -> int:
        """Listen (OSError if the port is taken); returns the port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _AgentConnection(self), self.host, self.port,
                                                reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop_async(self) -> None:
        self._stopping = True
        if self._server:
            self._server.close()
        conns = list(self._conns)
        for conn in conns:
            if not conn.busy and conn.transport is not None:
                conn.transport.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=STOP_GRACE)
        for conn in conns:
            if conn.task and not conn.task.done():
                conn.stopped = True
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)
        for pooled in self._pool.values():
            for p in pooled:
                p.writer.close()
        self._pool.clear()

    def start(self) -> int:
        """Run the relay on its own event loop in a daemon thread; returns the port."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self.start_async())
            except BaseException as e:  # noqa: BLE001 - handed to the caller of start()
                failure.append(e)
                self._loop.close()
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self.stop_async())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="lit-relay", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self.port

    def stop(self, timeout: float = 5.0) -> None:
        if self._loop and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)

    def __enter__(self) -> Relay:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the spool ---------------------------------------------------------------------------------

    def _spool(self, kind: bytes, seq: int, payload: bytes = b"") -> None:
        if self.spool is not None:
            self.spool.add(kind, seq, payload)

    def _end(self, seq: int, complete: bool, error: str | None) -> None:
        self._spool(sp.END, seq, json.dumps({"complete": complete, "error": error}).encode())

    # --- the agent's connection ------------------------------------------------------------------------

    async def _serve(self, conn: _AgentConnection) -> None:
        reader, writer = conn.reader, conn.writer
        assert writer is not None
        try:
            while not self._stopping:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                except asyncio.LimitOverrunError:
                    self._answer(writer, 431, "lit: request headers too large", "invalid_request_error")
                    return
                conn.busy = True
                try:
                    if not await self._exchange(conn, reader, writer, head):
                        return
                finally:
                    conn.busy = False
                if conn.hung_up:
                    return
        except asyncio.CancelledError:
            pass
        except Exception:  # noqa: BLE001 - one connection's bug must not stop the relay
            log.debug("relay connection failed", exc_info=True)
        finally:
            writer.close()

    def _answer(self, writer: asyncio.StreamWriter, status: int, message: str, kind: str) -> bytes:
        """An answer of lit's own (the connection is closed after it); returns its head."""
        body = error_body(message, kind)
        reason = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 413: "Payload Too Large", 431:
                  "Request Header Fields Too Large", 502: "Bad Gateway"}.get(status, "Error")
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        writer.write(head + body)
        return head

    def _admit(self, writer: asyncio.StreamWriter, head: bytes) -> _Request | None:
        """The request's head read and checked; None once lit has answered it itself."""
        parsed = parse_head(head)
        line = parsed[0].split(" ") if parsed else []
        if not parsed or len(line) != 3 or not line[2].startswith("HTTP/1."):
            self._answer(writer, 400, "lit: not an HTTP/1.1 request", "invalid_request_error")
            return None
        method, target, version = line
        headers = parsed[1]
        if not target.startswith("/"):
            # An absolute-form target (`POST http://elsewhere/...`) would make lit an open proxy:
            # it relays to its configured upstreams only.
            self._answer(writer, 400, "lit: the relay forwards paths to its upstream only, not absolute URLs",
                         "invalid_request_error")
            return None
        lower = [(k.lower(), v) for k, v in headers]
        chunked = any(k == "transfer-encoding" and "chunked" in v.lower() for k, v in lower)
        lengths = {v.strip() for k, v in lower if k == "content-length"}
        try:
            length = int(lengths.pop()) if lengths and not chunked else 0
            if lengths or length < 0:
                raise ValueError
        except ValueError:
            self._answer(writer, 400, "lit: a bad Content-Length", "invalid_request_error")
            return None
        why = refusal(headers, self.port, chunked or length > 0)
        if why:
            self._answer(writer, 403, why, "permission_error")
            return None
        if length > MAX_BODY:
            self._answer(writer, 413, f"lit: request bodies above {MAX_BODY // 1024**2} MB are refused",
                         "request_too_large")
            return None
        connection = {t.strip().lower() for k, v in lower if k == "connection" for t in v.split(",")}
        return _Request(method, target, version, headers, lower, chunked, length,
                        upgrade="upgrade" in connection and any(k == "upgrade" for k, _ in lower),
                        keep_alive=version == "HTTP/1.1" and "close" not in connection or "keep-alive" in connection)

    @staticmethod
    def _upstream_head(req: _Request, upstream: Upstream, path: str) -> bytes:
        out = [f"{req.method} {path} {req.version}", f"Host: {upstream.host_header}"]
        out += [f"{k}: {v}" for k, v in req.headers if k.lower() not in REQUEST_DROPPED
                or req.upgrade and k.lower() in ("upgrade", "connection")]
        if upstream.auth and not any(k == "authorization" for k, _ in req.lower):
            out.append(f"Authorization: {upstream.auth}")
        return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")

    async def _call(self, req: _Request, conn: _AgentConnection, writer: asyncio.StreamWriter,
                    upstream: Upstream, upstream_head: bytes, seq: int
                    ) -> tuple[_Pooled, int, bytes, asyncio.Future | None] | None:
        """Send the request upstream and read its answer's head; None once a 502 was answered."""
        body_kept: list[bytes] | None = None
        done: asyncio.Future | None = None
        for attempt in range(2):
            try:
                up, reused = await self._connect(upstream, fresh=attempt > 0)
            except (TimeoutError, OSError, ssl.SSLError, ValueError) as e:
                if attempt == 0:
                    await self._drain_body(conn, req, seq)
                self._unreachable(writer, seq, upstream, e)
                return None
            if attempt == 0:
                # Kept (references, not copies) only on a reused connection, so that a call the
                # upstream's idle close cut before any answer can be sent again.
                body_kept = [] if reused else None
                done = await self._pump_request(conn, up.writer, upstream_head, req, seq, body_kept)
            else:
                up.writer.write(upstream_head)
                for piece in body_kept or []:
                    up.writer.write(piece)
                await up.writer.drain()
            try:
                status, response_head = await self._response_head(up, writer)
                return up, status, response_head, done
            except (asyncio.IncompleteReadError, ConnectionError) as e:
                up.writer.close()
                if attempt == 0 and reused and body_kept is not None:
                    continue
                self._unreachable(writer, seq, upstream, e)
                return None
        return None  # pragma: no cover - the loop returns

    async def _exchange(self, conn: _AgentConnection, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter, head: bytes) -> bool:
        """One request and its answer; returns whether the connection may carry another."""
        req = self._admit(writer, head)
        if req is None:
            return False
        if req.target == SYNC_PATH:
            await self._sync(req, writer)
            return False
        self._seq += 1
        seq = self._seq
        self.exchanges += 1
        self._spool(sp.REQUEST_HEAD, seq, head)
        upstream, path = self._route(req.target)
        if any(k == "expect" and v.lower() == "100-continue" for k, v in req.lower):
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        upstream_head = self._upstream_head(req, upstream, path)

        up: _Pooled | None = None
        error: str | None = None
        complete = False
        try:
            called = await self._call(req, conn, writer, upstream, upstream_head, seq)
            if called is None:
                return False
            up, status, response_head, done = called
            rlower = [(k.lower(), v) for k, v in parse_head(response_head)[1]]  # type: ignore[index]
            self._spool(sp.RESPONSE_HEAD, seq, response_head)
            if status == 101:
                conn.busy = False  # from here on, either side closing is the tunnel's normal end
                writer.write(response_head)
                await self._tunnel(reader, writer, up, seq)
                up = None
                complete = True
                return False
            framing = self._framing(req.method, status, rlower)
            close_after = framing == "close" or not req.keep_alive
            await self._pump_response(up, writer, self._agent_head(response_head, close_after), framing, seq, done)
            complete = True
            if framing != "close" and any(k == "connection" and "close" in v.lower() for k, v in rlower):
                up.writer.close()
                up = None
            elif framing == "close":
                up = None
            return not close_after
        except _Cut as e:
            error = f"upstream cut the response: {e}"
            if up:
                up.writer.close()
                up = None
            if writer.transport is not None:
                writer.transport.close()  # flushes what the agent has, then no clean end
            return False
        except asyncio.CancelledError:
            error = self._cancel_cause(conn)
            if up:
                up.writer.transport.abort()  # the upstream call ends with the agent's
                up = None
            raise
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            error = error or (self._cancel_cause(conn) if conn.hung_up or self._stopping
                              else f"the agent closed the connection: {type(e).__name__}")
            if up:
                up.writer.transport.abort()
                up = None
            return False
        finally:
            if up is not None and complete:
                self._release(upstream, up)
            elif up is not None:
                up.writer.close()
            if complete or error:
                self._end(seq, complete, error)

    async def _sync(self, req: _Request, writer: asyncio.StreamWriter) -> None:
        """A hook's sync: a record in the spool, answered once the recorder has written up to it
        ({"synced": true}), or at once or after SYNC_WAIT with {"synced": false, "why": ...}."""
        asker = next((v for k, v in req.lower if k == "lit-session"), None)
        if req.method != "POST" or not self.sync_session or asker != self.sync_session:
            self._answer(writer, 404, "lit: not a sync of this session", "not_found_error")
            return
        self._syncs += 1
        done = None
        if self.gate is not None and self.spool is not None and not self.spool.backlogged:
            done = self.gate.sync(self._syncs)
        answer: dict = {"synced": False, "why": "the session's recorder stopped"}
        if done is not None:
            self._spool(sp.SYNC, 0, b"%d" % self._syncs)
            try:
                if await asyncio.wait_for(asyncio.shield(done), SYNC_WAIT):
                    answer = {"synced": True}
            except TimeoutError:
                answer["why"] = f"the session's recorder is more than {SYNC_WAIT:g} s behind"
        elif self.spool is not None and self.spool.backlogged and not self.spool.broken:
            answer["why"] = "the session's recorder is far behind"
        body = json.dumps(answer).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n%s" % (len(body), body))
        await writer.drain()

    def _cancel_cause(self, conn: _AgentConnection) -> str:
        """Why a call ended early, from the agent's connection: an agent that had hung up when
        lit stopped is said as such, whatever lit noticed first."""
        if conn.hung_up or _peer_closed(conn.transport):
            return "the agent closed the connection"
        if conn.stopped or self._stopping:
            return "lit stopped during the call"
        return "the call was cancelled"

    def _route(self, target: str) -> tuple[Upstream, str]:
        for prefix, up in self.routes.items():
            if target == prefix or target.startswith((prefix + "/", prefix + "?")):
                rest = target[len(prefix):] or "/"
                return up, up.prefix + (rest if rest.startswith("/") else "/" + rest)
        return self.upstream, self.upstream.prefix + target

    async def _connect(self, upstream: Upstream, fresh: bool = False) -> tuple[_Pooled, bool]:
        key = (upstream.secure, upstream.host, upstream.port, str(upstream.proxy))
        idle = self._pool.get(key, [])
        while idle and not fresh:
            pooled = idle.pop()
            if pooled.usable():
                return pooled, True
            pooled.writer.close()
        if upstream.secure and self._tls is None:
            self._tls = _tls_context()
        if upstream.proxy is None:
            stream, writer = await asyncio.wait_for(_open(
                upstream.host, upstream.port, ssl=self._tls if upstream.secure else None,
                server_hostname=upstream.host if upstream.secure else None), 30)
        else:
            stream, writer = await asyncio.wait_for(self._via_proxy(upstream), 30)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Pooled(stream, writer), False

    async def _via_proxy(self, upstream: Upstream) -> tuple[_Stream, asyncio.StreamWriter]:
        proxy = upstream.proxy
        assert proxy is not None and proxy.host
        stream, writer = await _open(proxy.host, proxy.port or 80)
        if not upstream.secure:
            raise ValueError(f"plain HTTP through the proxy {shown(proxy)} is not supported; use https")
        auth = ""
        if proxy.user is not None:
            token = base64.b64encode(f"{proxy.user}:{proxy.password or ''}".encode()).decode()
            auth = f"Proxy-Authorization: Basic {token}\r\n"
        target = f"{upstream.host}:{upstream.port}"
        writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth}\r\n".encode())
        answer = await stream.reader.readuntil(b"\r\n\r\n")
        if answer.split(b" ", 2)[1:2] != [b"200"]:
            writer.close()
            first = answer.split(b"\r\n", 1)[0].decode("latin-1")
            raise ValueError(f"the proxy {shown(proxy)} refused: {first}")
        await writer.start_tls(self._tls, server_hostname=upstream.host)  # type: ignore[arg-type]
        return stream, writer

    def _release(self, upstream: Upstream, pooled: _Pooled) -> None:
        if self._stopping:
            pooled.writer.close()
            return
        pooled.idle_since = time.monotonic()
        key = (upstream.secure, upstream.host, upstream.port, str(upstream.proxy))
        self._pool.setdefault(key, []).append(pooled)

    async def _drain_body(self, conn: _AgentConnection, req: _Request, seq: int) -> None:
        """Read (and spool) a request body that cannot be sent on, so the record keeps it."""
        class _Nowhere:
            transport = None

            def write(self, data: bytes) -> None:
                pass

            async def drain(self) -> None:
                pass

        await self._pump_request(conn, _Nowhere(), b"", req, seq, None)  # type: ignore[arg-type]

    async def _pump_request(self, conn: _AgentConnection, up: asyncio.StreamWriter, head: bytes, req: _Request,
                            seq: int, kept: list[bytes] | None) -> asyncio.Future | None:
        """The request body, upstream as it arrives (each piece then to the spool, and to `kept`
        when given); once it is all upstream, opens the gate if it carries tool results. (Not as
        soon as one is seen: the recorder then took a core from the upload, while the agent, lit
        and the upstream all had work; once the body is sent, the agent and lit wait.)"""
        look = self.gate is not None
        tail = b""

        def copy(piece: bytes) -> None:
            nonlocal look, tail
            self._spool(sp.REQUEST_BODY, seq, piece)
            if kept is not None:
                kept.append(piece)
            if look:
                if TOOL_RESULT.search(piece) or TOOL_RESULT.search(tail + piece[:MARKER_TAIL]):
                    look = False
                tail = piece[-MARKER_TAIL:]

        if req.chunked:
            up.write(head)
            await self._chunked_body(conn.reader, up, copy)
        else:
            await _relay_body(conn, _Body(req.length, up, copy, conn.transport, head))
        if look or self.gate is None:
            return None
        done = self.gate.open(seq)
        if done is not None:
            self._spool(sp.GATE, seq)
        return done

    @staticmethod
    async def _chunked_body(reader: asyncio.StreamReader, up: asyncio.StreamWriter,
                            copy: Callable[[bytes], None]) -> None:

        def send(piece: bytes) -> None:
            up.write(piece)
            copy(piece)

        total = 0
        while True:
            size_line = await reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError as e:
                raise ConnectionError("a malformed chunked body") from e
            total += size
            if total > MAX_BODY:
                raise ConnectionError("a chunked body over the cap")
            if size == 0:
                trailer = size_line
                while True:
                    line = await reader.readuntil(b"\r\n")
                    trailer += line
                    if line == b"\r\n":
                        break
                send(trailer)
                break
            send(size_line + await reader.readexactly(size + 2))
            await up.drain()

    async def _response_head(self, up: _Pooled, writer: asyncio.StreamWriter) -> tuple[int, bytes]:
        """The upstream's status line and headers; interim 1xx answers (but a 101) go to the agent."""
        while True:
            try:
                head = await up.reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError as e:
                raise ConnectionError("the upstream's answer has headers too large") from e
            try:
                status = int(head[9:12])
            except ValueError as e:
                raise ConnectionError("the upstream did not answer in HTTP") from e
            if 100 <= status < 200 and status != 101:
                if status != 100:  # a 100 Continue was given to the agent already
                    writer.write(head)
                continue
            return status, head

    @staticmethod
    def _framing(method: str, status: int, headers: list[tuple[str, str]]) -> str | int:
        """How the response body ends: "none", "chunked", a length, or "close"."""
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return "none"
        if any(k == "transfer-encoding" and "chunked" in v.lower() for k, v in headers):
            return "chunked"
        length = next((v for k, v in headers if k == "content-length"), None)
        if length is not None:
            try:
                return int(length)
            except ValueError:
                return "close"
        return "close"

    @staticmethod
    def _agent_head(head: bytes, close: bool) -> bytes:
        """The upstream's head for the agent: its per-connection headers are the relay's own."""
        lines = head[:-4].split(b"\r\n")
        kept = [lines[0]] + [ln for ln in lines[1:]
                             if ln.split(b":", 1)[0].strip().lower().decode("latin-1") not in HOP_BY_HOP]
        if close:
            kept.append(b"Connection: close")
        return b"\r\n".join(kept) + b"\r\n\r\n"

    async def _pump_response(self, up: _Pooled, writer: asyncio.StreamWriter, head: bytes, framing: str | int,
                             seq: int, gate: asyncio.Future | None) -> None:
        if framing == "none":
            writer.write(head)
            await writer.drain()
            return
        if gate is not None and not gate.done():
            writer.write(head)
            await self._pump_gated(up, writer, framing, seq, gate)
            return

        def copy(piece: bytes) -> None:  # after the agent got it
            self._spool(sp.RESPONSE_BODY, seq, piece)

        try:
            await _relay_body(up.conn, _Body(framing, writer, copy, up.writer.transport, head))
        except ConnectionError as e:
            raise _Cut(str(e)) from e
        await writer.drain()

    async def _pump_gated(self, up: _Pooled, writer: asyncio.StreamWriter, framing: str | int, seq: int,
                          gate: asyncio.Future) -> None:
        """An answer whose end waits for the turn's snapshot: read piece by piece, to hold back the
        bytes that would let the agent run its next tool until the snapshot is taken."""
        remaining = framing if isinstance(framing, int) else -1
        dechunk = sp.Dechunker(keep=False) if framing == "chunked" else None
        tail, tool = b"", False
        read = up.reader.read
        while remaining:
            try:
                piece = await read(READ_SIZE if remaining < 0 else min(remaining, READ_SIZE))
            except (ConnectionError, OSError) as e:
                raise _Cut(f"{type(e).__name__}: {e}") from e
            if not piece:
                if framing == "close":
                    break
                raise _Cut("the upstream closed the connection")
            if dechunk is not None:
                dechunk.feed(piece)
                last = dechunk.done
            else:
                remaining -= len(piece)
                last = remaining == 0
            if gate is not None and not gate.done():
                cut, tool = _turn_end(tail, piece, last, tool)
                tail = piece[-MARKER_TAIL:]
                if cut >= 0:
                    # What comes before the turn's end goes out now; the rest once the snapshot is in.
                    if cut:
                        writer.write(piece[:cut])
                        self._spool(sp.RESPONSE_BODY, seq, piece[:cut])
                        piece = piece[cut:]
                    await writer.drain()
                    await _wait_gate(gate)
                    gate = None
            writer.write(piece)  # the agent first
            self._spool(sp.RESPONSE_BODY, seq, piece)
            await writer.drain()
            if last:
                break

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: _Pooled,
                      seq: int) -> None:
        """After a 101: bytes both ways, as they come, each direction tagged in the spool."""
        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter, kind: bytes) -> None:
            try:
                while piece := await src.read(READ_SIZE):
                    dst.write(piece)
                    self._spool(kind, seq, piece)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                if dst.can_write_eof():
                    try:
                        dst.write_eof()
                    except (ConnectionError, OSError):
                        pass

        tasks = [asyncio.ensure_future(copy(reader, up.writer, sp.CLIENT_FRAMES)),
                 asyncio.ensure_future(copy(up.reader, writer, sp.SERVER_FRAMES))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            # One side ended: the other gets a moment to say its last bytes (a close frame).
            await asyncio.wait(tasks, timeout=1.0)
        finally:
            for t in tasks:
                t.cancel()
            up.writer.close()

    def _unreachable(self, writer: asyncio.StreamWriter, seq: int, upstream: Upstream, error: BaseException) -> None:
        detail = str(error) or type(error).__name__
        if upstream.url.password:
            detail = detail.replace(upstream.url.password, "***")
        message = f"lit: upstream {shown(upstream.url)} unreachable: {detail}"
        body = error_body(message)
        head = self._answer(writer, 502, message, "api_error")
        self._spool(sp.RESPONSE_HEAD, seq, head)
        self._spool(sp.RESPONSE_BODY, seq, body)
        self._end(seq, False, message)


def _turn_end(tail: bytes, piece: bytes, last: bool, tool: bool) -> tuple[int, bool]:
    """Where in `piece` the bytes that let the agent run a tool begin (-1: not in it), and whether
    a tool call has begun by the end of it (`tool`: before it)."""
    edge = tail + piece[:MARKER_TAIL]
    start = 0
    if not tool:
        begun = [i for i in (piece.find(m) for m in TOOL_START_MARKERS) if i >= 0]
        tool = bool(begun) or any(m in edge for m in TOOL_START_MARKERS)
        start = min(begun, default=0)
    ends = MESSAGE_END_MARKERS + BLOCK_END_MARKERS if tool else MESSAGE_END_MARKERS
    found = [i for i in (piece.find(m, start) for m in ends) if i >= 0]
    if found:
        return min(found), tool
    if any(m in edge for m in ends):
        return 0, tool
    return (len(piece) - 1 if last else -1), tool


async def _wait_gate(gate: asyncio.Future) -> None:
    try:
        await asyncio.wait_for(asyncio.shield(gate), GATE_TIMEOUT)
    except (TimeoutError, Exception):  # noqa: BLE001 - a snapshot never holds the agent longer
        pass


def _peer_closed(transport: asyncio.BaseTransport | None) -> bool:
    """Whether the agent's end of the connection is closed (EOF or reset waiting to be read)."""
    if transport is None:
        return True
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    try:
        with socket.socket(fileno=os.dup(sock.fileno())) as peek:
            return peek.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True

