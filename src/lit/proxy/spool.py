"""The spool: the relay's copy of every byte it moves, for the recorder process to read.

The relay appends records to a pipe with plain `os.writev` and never waits for the reader: it
holds them until the exchange ends (at most `HOLD`), so that neither the writes nor the recorder's
reads compete with the call for the machine; what the pipe cannot take at once stays in the
relay's memory, in order, and goes out when the pipe has room. Nothing here parses a body,
hashes or touches SQLite; a record is a header and the bytes as they went through.

A record is a 24-byte header and `length` bytes of payload:

    offset  size  field
    0       1     kind     one ASCII letter, below
    1       3     zero
    4       4     seq      the exchange's number in the session (uint32, little-endian); 0: the session
    8       8     at       time.time() when the relay saw the bytes (float64, little-endian)
    16      8     length   of the payload (uint64, little-endian)

Kinds, in the order they come for one exchange (the records of concurrent exchanges interleave):

    H  request head: request line and headers exactly as the agent sent them, up to and
       including the blank line
    B  request body bytes as received (still chunk-framed if the agent sent Transfer-Encoding:
       chunked), in the pieces they came in, each after it went upstream
    h  response head: status line and headers as the upstream sent them (interim 1xx heads are
       not spooled, a 101 is); for an answer of lit's own (a 502), the head lit sent
    b  response body bytes as relayed (still chunk-framed if chunked, still content-encoded)
    c  after a 101 Switching Protocols (WebSocket): the bytes the agent sent, as sent (frames
       masked, as on the wire), in the order they were relayed
    s  after a 101: the bytes the upstream sent, as sent
    G  the relay asked the recorder for this turn's snapshot (the request carries tool results);
       the recorder writes the turn's snapshot row from that snapshot, not from one of its own
    E  the end of the exchange: JSON {"complete": bool, "error": str | null}
    L  lost: the relay dropped this exchange's records from here on (JSON {"why": str}); an E
       still follows

Session records (seq 0):

    S  start: JSON settings of the session, from `lit record` (the first record)
    F  finish: JSON {"exit_code": int | null} (the last record; without it, lit was killed)
    Y  sync: a git hook asked the session to catch up (payload: the sync's number, ASCII); the
       recorder says so on its done pipe ("s<number>\n") once everything before it is written

`ExchangeAssembler` turns the records back into `Exchange` objects: the request when its
response begins (or the exchange ends), the response at E. Bodies come out with the transfer
framing removed and the content encoding kept, as the parsers expect them. WebSocket bytes are
handed over as they come (`on_frames(exchange, "c" or "s", at, bytes)`), or kept in
`Exchange.frames` for the protocol parsers to read at the end.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import os
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from lit.proxy.exchange import Exchange

HEADER = struct.Struct("<c3xIdQ")
REQUEST_HEAD, REQUEST_BODY = b"H", b"B"
RESPONSE_HEAD, RESPONSE_BODY = b"h", b"b"
CLIENT_FRAMES, SERVER_FRAMES = b"c", b"s"
END, LOST, GATE = b"E", b"L", b"G"
START, FINISH, SYNC = b"S", b"F", b"Y"
# What the relay may hold while the recorder falls behind; past it, the exchanges that go on
# are dropped from the record (counted and said), never slowed down.
BACKLOG_LIMIT = 512 * 1024**2
# How long records may wait for the exchange's end before they go to the pipe anyway: what a
# `kill -9` of lit can take from the record (lit's own exits write everything).
HOLD = 0.05
# Written at once: an exchange's end, a hook's sync, and what an agent sends over a WebSocket (a
# Codex turn's tool results: the recorder takes that turn's snapshot when it reads them, as no
# gate holds a WebSocket's answer).
URGENT = {END, SYNC, CLIENT_FRAMES}
PIPE_SIZE = 1024 * 1024  # F_SETPIPE_SZ: fewer wake-ups for the reader, fewer partial writes
F_SETPIPE_SZ = 1031


def pipe() -> tuple[int, int]:
    """A spool pipe (read end, write end), made as large as the system allows."""
    r, w = os.pipe()
    try:
        import fcntl  # noqa: PLC0415 - Linux and the BSDs only

        fcntl.fcntl(w, F_SETPIPE_SZ, PIPE_SIZE)
    except (ImportError, OSError):
        pass
    return r, w


class SpoolWriter:
    """The relay's end: `add()` from the relay's event loop thread, never blocking, never raising.

    Records are held (references, not copies) and written together when an exchange ends, when a
    hook asks for a sync, or `HOLD` seconds after the first of them, whichever comes first: so the
    pipe writes and the recorder's reads fall after a call, not in its time to first byte or its
    stream, and a long stream still reaches the recorder as it goes.

    A failure (the reader is gone, the backlog limit) drops records, never bytes for the agent;
    `lost` holds the exchanges that are incomplete in the record because of it."""

    def __init__(self, fd: int):
        self.fd = fd
        os.set_blocking(fd, False)
        # Each pending view with the exchange it belongs to: what a break leaves unwritten is lost.
        self._pending: collections.deque[memoryview] = collections.deque()
        self._pending_seqs: collections.deque[int] = collections.deque()
        self._pending_bytes = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watching = False
        self._timer: asyncio.TimerHandle | None = None
        self.broken: str | None = None
        self.lost: set[int] = set()

    @property
    def backlogged(self) -> bool:
        """Whether records are being dropped: the recorder is gone, or too far behind."""
        return bool(self.broken) or self._pending_bytes > BACKLOG_LIMIT

    def add(self, kind: bytes, seq: int, payload: bytes | memoryview = b"") -> None:
        if self.broken:
            if seq:
                self.lost.add(seq)
            return
        if seq in self.lost and kind != END:
            return
        if self._pending_bytes > BACKLOG_LIMIT and kind != END:
            self.lost.add(seq)
            why = json.dumps({"why": "the recorder fell behind by more than "
                                     f"{BACKLOG_LIMIT // 1024**2} MB"}).encode()
            self._hold(seq, memoryview(HEADER.pack(LOST, seq, time.time(), len(why)) + why))
            return
        self._hold(seq, memoryview(HEADER.pack(kind, seq, time.time(), len(payload))))
        if payload:
            self._hold(seq, memoryview(payload))
        if self._watching:
            return  # the pipe is full: its writer callback takes these in turn
        if kind in URGENT:
            self._flush()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(HOLD, self._flush)
            except RuntimeError:  # not on a loop (lit's own records): written by write_now or close
                pass

    def _hold(self, seq: int, view: memoryview) -> None:
        self._pending.append(view)
        self._pending_seqs.append(seq)
        self._pending_bytes += len(view)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending:
            try:
                n = os.writev(self.fd, self._batch())
            except BlockingIOError:
                self._watch()
                return
            except OSError as e:
                self._break(e)
                return
            self._consumed(n)
        self._unwatch()

    def _batch(self) -> list[memoryview]:
        """The first views held, as many as one writev takes here."""
        return list(itertools.islice(self._pending, 64))

    def _consumed(self, n: int) -> None:
        """Drop the first n bytes held, which the pipe took."""
        self._pending_bytes -= n
        while n:
            head = self._pending[0]
            if n >= len(head):
                n -= len(head)
                self._pending.popleft()
                self._pending_seqs.popleft()
            else:
                self._pending[0] = head[n:]
                n = 0

    def _watch(self) -> None:
        if not self._watching:
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:  # not on a loop: written by write_now or close
                return
            self._loop.add_writer(self.fd, self._flush)
            self._watching = True

    def _unwatch(self) -> None:
        if self._watching and self._loop is not None:
            self._loop.remove_writer(self.fd)
        self._watching = False

    def _break(self, error: OSError) -> None:
        self.broken = f"the recorder stopped reading: {error.strerror or error}"
        self.lost.update(seq for seq in self._pending_seqs if seq)
        self._pending.clear()
        self._pending_seqs.clear()
        self._pending_bytes = 0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._unwatch()

    def write_now(self, kind: bytes, seq: int, payload: bytes = b"") -> None:
        """A record written whole, waiting if need be (lit's own records, off the relay's loop)."""
        if self.broken:
            return
        os.set_blocking(self.fd, True)
        try:
            while self._pending:
                self._consumed(os.writev(self.fd, self._batch()))
            os.write(self.fd, HEADER.pack(kind, seq, time.time(), len(payload)) + payload)
        except OSError as e:
            self._break(e)
        finally:
            os.set_blocking(self.fd, False)

    def close(self, exit_code: int | None = None) -> None:
        """Everything still held, then F (the session's end), then EOF. Call after the relay's
        loop has stopped."""
        self._watching = False  # the loop is gone with its watchers and timers
        self._timer = None
        self.write_now(FINISH, 0, json.dumps({"exit_code": exit_code}).encode())
        try:
            os.close(self.fd)
        except OSError:
            pass


def read_records(fd: int, size: int = 1024 * 1024) -> Iterator[tuple[bytes, int, float, bytes]]:
    """(kind, seq, at, payload) from a spool until EOF (a record cut off by EOF is dropped)."""
    buf = bytearray()
    pos = 0
    while True:
        data = os.read(fd, size)
        if not data:
            return
        buf += data
        while len(buf) - pos >= HEADER.size:
            kind, seq, at, length = HEADER.unpack_from(buf, pos)
            end = pos + HEADER.size + length
            if end > len(buf):
                break
            yield kind, seq, at, bytes(buf[pos + HEADER.size:end])
            pos = end
        if pos:
            del buf[:pos]
            pos = 0


# --- HTTP/1.1, as little as the relay and the assembler need -----------------------------------


def parse_head(head: bytes) -> tuple[str, list[tuple[str, str]]] | None:
    """(first line, [(name, value)]) of a request or response head; None if it is not HTTP."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        return None
    lines = text.split("\r\n")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            return None
        headers.append((name, value.strip()))
    return lines[0], headers


class Dechunker:
    """Transfer-Encoding: chunked, fed in pieces: `feed()` returns the payload bytes in them and
    sets `done` (and `rest`, what came after the end) once the last chunk and trailers are in."""

    def __init__(self, keep: bool = True):
        self.keep = keep
        self.done = False
        self.rest = b""
        self._size = -1  # bytes of chunk data still to come; -1: reading a size line
        self._line = b""
        self._crlf = 0  # CRLF bytes after the data still to skip
        self._trailers = False

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        i, n = 0, len(data)
        while i < n and not self.done:
            if self._crlf:
                take = min(self._crlf, n - i)
                self._crlf -= take
                i += take
            elif self._size > 0:
                take = min(self._size, n - i)
                if self.keep:
                    out.append(data[i:i + take])
                self._size -= take
                i += take
                if not self._size:
                    self._size, self._crlf = -1, 2
            else:
                nl = data.find(b"\n", i)
                if nl < 0:
                    self._line += data[i:]
                    break
                line = (self._line + data[i:nl]).strip()
                self._line = b""
                i = nl + 1
                if self._trailers:
                    if not line:
                        self.done = True
                    continue
                try:
                    size = int(line.split(b";", 1)[0], 16)
                except ValueError:
                    size = 0  # not chunked after all: take it as the end
                if size == 0:
                    self._trailers = True
                else:
                    self._size = size
        if self.done:
            self.rest = data[i:]
        return out


# --- the reader's side: records back into exchanges ---------------------------------------------


@dataclass
class _Open:
    ex: Exchange
    request_head: bool = False
    request_chunked: Dechunker | None = None
    request_parts: list[bytes] = field(default_factory=list)
    response_chunked: Dechunker | None = None
    response_parts: list[bytes] = field(default_factory=list)
    handed: bool = False
    first_byte_at: float | None = None
    lost: str | None = None


def _headers(pairs: list[tuple[str, str]]) -> dict[str, str]:
    return dict(pairs)


def _chunked(pairs: list[tuple[str, str]]) -> bool:
    return any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in pairs)


class ExchangeAssembler:
    """Feeds `on_request(exchange)` and `on_response(exchange)` from spool records, as the relay
    used to hand them over in its own process."""

    def __init__(self, session_id: str, on_request: Callable[[Exchange], object],
                 on_response: Callable[[Exchange], object],
                 on_frames: Callable[[Exchange, str, float, bytes], object] | None = None):
        self.session_id = session_id
        self.on_request, self.on_response, self.on_frames = on_request, on_response, on_frames
        self.open: dict[int, _Open] = {}
        self.lost: list[str] = []

    def feed(self, kind: bytes, seq: int, at: float, payload: bytes) -> None:
        if kind == REQUEST_HEAD:
            self._request_head(seq, at, payload)
            return
        state = self.open.get(seq)
        if state is None:
            return
        if kind == REQUEST_BODY:
            state.request_parts.extend(state.request_chunked.feed(payload) if state.request_chunked else [payload])
        elif kind == RESPONSE_HEAD:
            self._response_head(state, at, payload)
        elif kind == RESPONSE_BODY:
            if state.first_byte_at is None or not state.response_parts:
                state.first_byte_at = at
            state.response_parts.extend(state.response_chunked.feed(payload) if state.response_chunked
                                        else [payload])
        elif kind in (CLIENT_FRAMES, SERVER_FRAMES):
            if self.on_frames is not None:  # handed over as they come (the calls over it are live)
                self.on_frames(state.ex, kind.decode(), at, payload)
            else:
                state.ex.frames.append((kind.decode(), at, payload))
        elif kind == GATE:
            state.ex.snapshot_asked = True
        elif kind == LOST:
            state.lost = json.loads(payload).get("why")
        elif kind == END:
            self._end(seq, state, at, payload)

    def _request_head(self, seq: int, at: float, payload: bytes) -> None:
        line, pairs = parse_head(payload) or ("", [])
        method, _, rest = line.partition(" ")
        target = rest.rpartition(" ")[0] or rest
        path, _, query = target.partition("?")
        ex = Exchange(id=f"{self.session_id}.{seq}", session_id=self.session_id, seq=seq, method=method,
                      path=path, query=query, request_headers=_headers(pairs), request_body=b"", started_at=at)
        state = self.open[seq] = _Open(ex, request_head=True)
        if _chunked(pairs):
            state.request_chunked = Dechunker()

    def _response_head(self, state: _Open, at: float, payload: bytes) -> None:
        self._hand_request(state)
        line, pairs = parse_head(payload) or ("", [])
        try:
            state.ex.status = int(line.split(" ", 2)[1])
        except (IndexError, ValueError):
            state.ex.status = None
        state.ex.response_headers = _headers(pairs)
        ctype = next((v for k, v in pairs if k.lower() == "content-type"), "")
        state.ex.streamed = ctype.split(";")[0].strip().lower() == "text/event-stream"
        if _chunked(pairs):
            state.response_chunked = Dechunker()
        state.first_byte_at = state.first_byte_at or at

    def _end(self, seq: int, state: _Open, at: float, payload: bytes) -> None:
        info = json.loads(payload or b"{}")
        self._hand_request(state)
        ex = state.ex
        ex.complete = bool(info.get("complete")) and not state.lost
        ex.error = info.get("error") or (f"not all recorded: {state.lost}" if state.lost else None)
        ex.response_body = b"".join(state.response_parts)
        if state.first_byte_at is not None and ex.status is not None:
            ex.ttfb_ms = (state.first_byte_at - ex.started_at) * 1000
        ex.duration_ms = (at - ex.started_at) * 1000
        del self.open[seq]
        self.on_response(ex)

    def _hand_request(self, state: _Open) -> None:
        if not state.handed:
            state.handed = True
            state.ex.request_body = b"".join(state.request_parts)
            state.request_parts = []
            self.on_request(state.ex)

    def close(self, error: str) -> None:
        """The spool ended with exchanges still open (lit was killed): each is handed over as it
        stands, incomplete, with `error`."""
        at = time.time()
        for seq in list(self.open):
            self.feed(END, seq, at, json.dumps({"complete": False, "error": error}).encode())
