"""The relay: every HTTP call the agent makes goes through here to the upstream, byte for byte.

The hot path only moves bytes: each upstream chunk is written to the agent before anything else
happens to it, then appended to the exchange's copy. Streaming is decided per response by
relaying whatever arrives (`iter_any`), never by buffering. The sink (the recorder) gets the
exchange twice, when the request body is in and when the response ended; it queues and returns,
and whatever it raises is counted here and never reaches the agent.

Failure modes, as the agent sees them:
- upstream unreachable (or gone before its status line): 502 with an Anthropic-style error body;
- upstream cut mid-response: the agent's connection is cut too, never ended cleanly;
- the agent hangs up: the upstream call is cancelled, the exchange is kept with complete=False.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import ssl
import threading
import time
from typing import Protocol

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from lit.proxy.exchange import Exchange

log = logging.getLogger("lit.relay")

# RFC 9110 7.6.1: meaningful for one connection only, so never forwarded in either direction.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                        "proxy-connection", "te", "trailer", "trailers", "transfer-encoding", "upgrade"})
# aiohttp computes these from the body it sends, so the agent's values would conflict; and the
# body is read whole before the call, so there is nothing to wait for a 100 Continue about.
REQUEST_DROPPED = HOP_BY_HOP | {"host", "content-length", "expect"}
# What reading an upstream body raises when the upstream stops mid-response.
UPSTREAM_BROKE_OFF = (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError,
                      aiohttp.ClientOSError)
GATE_TIMEOUT = 5.0  # seconds a snapshot may hold an answer back, at most; the agent never waits longer
# The agent's request body: 20 MB requests are ordinary with images, 64 MB is far above any real
# agent, and a body past it is refused before it is read (a 300 MB POST once took lit to 2 GB).
MAX_BODY = 64 * 1024**2
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def refusal(headers, port: int, has_body: bool) -> str | None:
    """Why a request may not reach the upstream, or None: the relay answers only what a local
    agent sends. A web page the developer has open can reach 127.0.0.1 too: through DNS
    rebinding (its Host is then the page's name), or with a no-preflight cross-site POST (its
    browser adds Origin, and the body is text/plain or a form). Neither may write into a thread."""
    hosts = headers.getall("host", [])
    if len(hosts) != 1 or hosts[0].strip().lower() not in {f"{h}:{port}" for h in LOOPBACK_HOSTS} | (
            set(LOOPBACK_HOSTS) if port == 80 else set()):
        return f"lit: the relay answers only Host 127.0.0.1:{port}, localhost:{port} or [::1]:{port}"
    if "origin" in headers:
        return "lit: the relay refuses requests from web pages (an Origin header was sent)"
    if has_body:
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        if not (kind == "application/json" or kind.startswith("application/") and kind.endswith("+json")):
            return f"lit: the relay takes JSON request bodies only, not {kind or 'a body without a content type'}"
    return None


def shown(url: URL | str) -> str:
    """A URL as lit says and stores it: credentials in it (user:pass@) masked."""
    url = URL(str(url))
    if url.user is None and url.password is None:
        return str(url)
    return str(url.with_user(None)).replace("://", "://***@", 1)


class Sink(Protocol):
    def request(self, exchange: Exchange) -> threading.Event | None: ...
    def response(self, exchange: Exchange) -> None: ...


def _dropped(headers, base: frozenset[str]) -> set[str]:
    """Hop-by-hop names: the fixed ones plus any the Connection header lists."""
    names = set(base)
    for value in headers.getall("connection", []):
        names.update(v.strip().lower() for v in value.split(",") if v.strip())
    return names


def error_body(message: str, kind: str = "api_error") -> bytes:
    """An error body in the Messages API's shape, so SDKs show the message as they do the API's."""
    return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()


def _upstream_url(upstream: str) -> URL:
    url = URL(upstream.rstrip("/"))
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"upstream must be an http(s) URL, not {upstream!r}")
    return url


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


def _hung_up(transport) -> bool:
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


class Relay:
    """An HTTP relay on 127.0.0.1 to `upstream`, handing each exchange to `sink`.

    From synchronous code: `port = relay.start()` (its own event loop in a thread), `relay.stop()`.
    From async code: `await relay.start_async()`, `await relay.stop_async()`.
    """

    def __init__(self, upstream: str, sink: Sink | None = None, *, port: int = 0,
                 session_id: str | None = None, host: str = "127.0.0.1",
                 routes: dict[str, str] | None = None):
        self.upstream = _upstream_url(upstream)
        # Path prefixes relayed to another upstream, the prefix removed: {"/openai": "https://api.openai.com/v1"}
        # lets one relay serve an agent's Anthropic and OpenAI clients at once.
        self.routes = {prefix.rstrip("/"): _upstream_url(url) for prefix, url in (routes or {}).items()}
        self.sink = sink
        self.session_id = session_id or getattr(sink, "session_id", None) or "relay"
        self.host, self.port = host, port
        self.exchanges = 0
        self.sink_errors = 0
        self.sink_problems: list[str] = []
        self._seq = 0
        self._stopping = False
        self._in_flight: dict[str, web.Request] = {}
        self._gone_at_stop: set[str] = set()
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- lifecycle -------------------------------------------------------------------------------

    async def start_async(self) -> int:
        """Listen (OSError if the port is taken); returns the port."""
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, ssl=_tls_context()),
            # A stream may sit silent for minutes while the model thinks: no read timeout.
            timeout=aiohttp.ClientTimeout(total=None, connect=None, sock_connect=30, sock_read=None),
            auto_decompress=False,  # pass content-encoded bytes through as they are
            # Send the agent's headers and nothing of aiohttp's own.
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            cookie_jar=aiohttp.DummyCookieJar(),
            # As the agent's own client would: HTTPS_PROXY / NO_PROXY (never for a local upstream),
            # and certifi's CAs besides the system's.
            trust_env=self.upstream.host not in LOOPBACK,
            read_bufsize=1024 * 1024,
        )
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: when the agent hangs up, the handler (and so the upstream call)
        # is cancelled at once instead of at the next chunk.
        # shutdown_timeout: at stop, a call still in flight (a background process of the agent's)
        # gets about 2 s to end, then is cut and handed to the sink as incomplete.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await self.stop_async()
            raise
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.port

    async def stop_async(self) -> None:
        # Calls whose agent had hung up already are said as such, whatever lit does next.
        self._gone_at_stop = {i for i, r in self._in_flight.items() if _hung_up(r.transport)}
        self._stopping = True
        if self._runner:
            await self._runner.cleanup()
            self._runner = None
        if self._session:
            await self._session.close()
            self._session = None

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

    # --- the sink, kept away from the agent -----------------------------------------------------

    def _tell(self, method: str, ex: Exchange):
        if self.sink is None:
            return None
        try:
            return getattr(self.sink, method)(ex)
        except Exception as e:  # noqa: BLE001 - a recording failure must never reach the agent
            self.sink_errors += 1
            if len(self.sink_problems) < 5:
                self.sink_problems.append(f"{method} {ex.id}: {type(e).__name__}: {e}")
            log.debug("sink failed", exc_info=True)
            return None

    # --- the hot path --------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        started, t0 = time.time(), time.perf_counter()
        if not request.raw_path.startswith("/"):
            # An absolute-form target (`POST http://elsewhere/...`) would make lit an open proxy:
            # it relays to its configured upstreams only.
            return web.Response(status=400, content_type="application/json", body=error_body(
                "lit: the relay forwards paths to its upstream only, not absolute URLs",
                "invalid_request_error"))
        has_body = bool(request.content_length) or "transfer-encoding" in request.headers
        why = refusal(request.headers, self.port, has_body)
        if why:
            return web.Response(status=403, content_type="application/json",
                                body=error_body(why, "permission_error"))
        if (request.content_length or 0) > MAX_BODY:
            return web.Response(status=413, content_type="application/json", body=error_body(
                f"lit: request bodies above {MAX_BODY // 1024**2} MB are refused", "request_too_large"))
        body = await request.read()
        self._seq += 1
        self.exchanges += 1
        ex = Exchange(id=f"{self.session_id}.{self._seq}", session_id=self.session_id, seq=self._seq,
                      method=request.method, path=request.path, query=request.query_string,
                      request_headers=dict(request.headers), request_body=body, started_at=started)
        # The sink may hand back a gate: the working tree is being snapshotted (this request
        # carries tool results), and the agent must not get the answer, and run its next tools,
        # before that snapshot is taken. The upstream call goes ahead meanwhile.
        gate = self._tell("request", ex)
        self._in_flight[ex.id] = request
        drop = _dropped(request.headers, REQUEST_DROPPED)
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in drop)
        # raw_path keeps the agent's own encoding of path and query (`?beta=true` and all).
        base = self.upstream
        url = URL(str(base) + request.raw_path, encoded=True)
        for prefix, target in self.routes.items():
            if request.raw_path == prefix or request.raw_path.startswith((prefix + "/", prefix + "?")):
                base = target
                url = URL(str(target) + (request.raw_path[len(prefix):] or "/"), encoded=True)
                break
        chunks: list[bytes] = []
        resp: web.StreamResponse | None = None
        assert self._session is not None
        try:
            try:
                upstream = await self._session.request(
                    request.method, url, headers=headers, data=body if body else None,
                    allow_redirects=False)
            except (TimeoutError, aiohttp.ClientError, OSError) as e:
                return self._unreachable(ex, base, e, t0)
            try:
                if gate is not None and not gate.is_set():
                    await asyncio.get_running_loop().run_in_executor(None, gate.wait, GATE_TIMEOUT)
                ex.status = upstream.status
                ex.response_headers = dict(upstream.headers)
                ex.streamed = upstream.content_type == "text/event-stream"
                resp = web.StreamResponse(status=upstream.status, reason=upstream.reason)
                drop = _dropped(upstream.headers, HOP_BY_HOP)
                for k, v in upstream.headers.items():
                    if k.lower() not in drop:
                        resp.headers.add(k, v)
                await resp.prepare(request)
                try:
                    async for chunk in upstream.content.iter_any():
                        await resp.write(chunk)  # the agent first
                        if ex.ttfb_ms is None:
                            ex.ttfb_ms = (time.perf_counter() - t0) * 1000
                        chunks.append(chunk)
                except UPSTREAM_BROKE_OFF as e:
                    # The upstream broke off: cut the agent's connection after what it already
                    # has (close flushes, then ends the connection without a final chunk).
                    ex.error = f"upstream cut the response: {type(e).__name__}: {e}"
                    if request.transport is not None:
                        request.transport.close()
                    return resp
                await resp.write_eof()
                ex.complete = True
                return resp
            finally:
                upstream.close()  # a no-op after a full read; drops the connection otherwise
        except (ConnectionError, asyncio.CancelledError) as e:
            # The agent hung up, or lit is stopping; the upstream call ends with it. Which one is
            # read from the agent's connection, not from which of the two lit noticed first: an
            # agent killed just before lit stops shows as such.
            ex.error = ex.error or (f"the agent closed the connection: {type(e).__name__}"
                                    if isinstance(e, ConnectionError) or not self._stopping
                                    or ex.id in self._gone_at_stop else "lit stopped during the call")
            raise
        finally:
            self._in_flight.pop(ex.id, None)
            if ex.status is not None or ex.error:
                if chunks:
                    ex.response_body = b"".join(chunks)
                if ex.ttfb_ms is None and ex.status is not None:
                    ex.ttfb_ms = (time.perf_counter() - t0) * 1000
                ex.duration_ms = (time.perf_counter() - t0) * 1000
                self._tell("response", ex)

    def _unreachable(self, ex: Exchange, upstream: URL, error: BaseException, t0: float) -> web.Response:
        detail = (str(error) or type(error).__name__)
        if upstream.password:
            detail = detail.replace(upstream.password, "***")
        message = f"lit: upstream {shown(upstream)} unreachable: {detail}"
        body = error_body(message)
        ex.status, ex.error = 502, message
        ex.response_headers = {"Content-Type": "application/json"}
        ex.response_body = body
        ex.duration_ms = (time.perf_counter() - t0) * 1000
        return web.Response(status=502, body=body, content_type="application/json")
