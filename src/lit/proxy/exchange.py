"""What the relay hands to the recorder: one HTTP call, as it went through."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Exchange:
    id: str  # "<session id>.<seq>"
    session_id: str
    seq: int
    method: str
    path: str  # without the query string
    query: str
    request_headers: dict[str, str]  # raw; the recorder drops secrets before storing
    request_body: bytes
    started_at: float  # time.time()
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytes = b""  # every chunk, as relayed (still compressed if it was)
    streamed: bool = False  # content-type text/event-stream
    ttfb_ms: float | None = None
    duration_ms: float | None = None
    complete: bool = False
    error: str | None = None
    snapshot_asked: bool = False  # the relay had the turn's snapshot taken as the request arrived
    # After a 101 (WebSocket): (direction "c" agent->upstream or "s" upstream->agent, time.time(),
    # bytes as they went through), in order; see lit.proxy.spool.
    frames: list[tuple[str, float, bytes]] = field(default_factory=list)
