"""What lit's relay costs an agent, measured against a direct connection in the same run.

    python benchmarks/bench_relay.py            # about 30 s; prints a table

One local upstream (lit's scripted Messages API server) in its own process; the relay in another,
once alone ("relay") and once with the real recorder writing a temporary DB ("lit record", the
configuration users run); the client here, on aiohttp. Requests to the three targets are
interleaved so that noise on a shared machine falls on all of them alike.

- time to first byte: a streamed answer whose first event is 1 kB; added = relayed - direct;
- a 10 MB SSE stream (text deltas of 1 kB, written 64 kB at a time): the rate relative to direct
  (under lit record, each run starts once the recorder has written the previous one);
- 32 concurrent streams (200 events, 5 ms apart): errors, and whether every byte arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

TTFB_REQUESTS = 200
BIG_BYTES = 10 * 1024 * 1024
BIG_RUNS = 5
CONCURRENT = 32
CONCURRENT_EVENTS, CONCURRENT_DELAY = 200, 0.005


def sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def stream_bytes(total: int, first_event: int = 1024, write_size: int = 64 * 1024) -> list[bytes]:
    """A valid Messages API stream of about `total` bytes, as writes of about `write_size`."""
    start = sse("message_start", {"type": "message_start", "message": {
        "id": "msg_bench", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6", "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 1},
        "padding": "x" * max(0, first_event - 300)}})
    events = [start, sse("content_block_start", {"type": "content_block_start", "index": 0,
                                                 "content_block": {"type": "text", "text": ""}})]
    delta = sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                        "delta": {"type": "text_delta", "text": "y" * 950}})
    size = sum(map(len, events))
    while size < total:
        events.append(delta)
        size += len(delta)
    events += [sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
               sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                     "usage": {"output_tokens": 10}}),
               sse("message_stop", {"type": "message_stop"})]
    writes, current = [events[0]], b""
    for e in events[1:]:
        current += e
        if len(current) >= write_size:
            writes.append(current)
            current = b""
    return writes + ([current] if current else [])


SMALL = stream_bytes(4096)
BIG = stream_bytes(BIG_BYTES)
PACED = [SMALL[0]] + [sse("ping", {"type": "ping"})] * (CONCURRENT_EVENTS - 2) + SMALL[1:]


def reply(body: dict) -> dict:
    kind = body.get("metadata", {}).get("user_id", "small")
    if kind == "big":
        return {"chunks": BIG}
    if kind == "paced":
        return {"chunks": PACED, "delay": CONCURRENT_DELAY}
    return {"chunks": SMALL}


# --- the processes ---------------------------------------------------------------------------------


def serve_upstream() -> None:
    from lit.scripted import ScriptedUpstream

    with ScriptedUpstream(reply) as up:
        print(up.port, flush=True)
        sys.stdin.read()


def serve_relay(upstream: str, db: str | None) -> None:
    from lit.proxy.relay import Relay

    sink = None
    if db:
        from lit.recorder import Recorder

        from lit.record import SWITCH_INTERVAL

        sink = Recorder(db, argv=["bench"], cwd=tempfile.gettempdir(), upstream=upstream, snapshots=False)
        sys.setswitchinterval(SWITCH_INTERVAL)  # as lit record does
    relay = Relay(upstream, sink)
    print(relay.start(), flush=True)
    sys.stdin.read()
    relay.stop()
    if sink:
        summary = sink.finish(0)
        print(json.dumps({"exchanges": summary.exchanges, "unrecorded": summary.unrecorded}), flush=True)


def spawn(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    port = proc.stdout.readline().strip()
    if not port:
        raise SystemExit(f"{args[0]} did not start")
    return proc, f"http://127.0.0.1:{port}"


# --- the client ------------------------------------------------------------------------------------------


def body(kind: str) -> bytes:
    return json.dumps({"model": "claude-sonnet-4-6", "max_tokens": 1024, "stream": True,
                       "messages": [{"role": "user", "content": f"bench {kind}"}],
                       "metadata": {"user_id": kind}}).encode()


HEADERS = {"content-type": "application/json", "x-api-key": "sk-ant-api03-bench", "anthropic-version": "2023-06-01"}


async def one(session: aiohttp.ClientSession, url: str, kind: str) -> tuple[float, float, int]:
    """(seconds to first byte, seconds to the end, bytes) of one streamed call."""
    t0 = time.perf_counter()
    async with session.post(url + "/v1/messages", data=body(kind), headers=HEADERS) as resp:
        first = await resp.content.readany()
        t1 = time.perf_counter()
        n = len(first)
        while chunk := await resp.content.readany():
            n += len(chunk)
    return t1 - t0, time.perf_counter() - t0, n


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def parser_is_linear() -> tuple[bool, float, float]:
    """Whether the recorder's stream parser takes about 4x as long for 4x the bytes (16x if it is
    quadratic). It runs off the hot path, but in the relay's process: a slow parse of a 10 MB
    stream shows up as relay time, and a quadratic one would not finish within this benchmark."""
    from lit.proxy.anthropic import assemble_sse

    timings = []
    for size in (512 * 1024, 2048 * 1024):
        raw = b"".join(stream_bytes(size))
        t0 = time.perf_counter()
        assemble_sse(raw)
        timings.append(time.perf_counter() - t0)
    return timings[1] < 8 * timings[0] + 0.02, timings[0], timings[1]


async def recorder_caught_up(db: Path, calls: int, timeout: float = 60.0) -> None:
    """Wait until the recorder has written the answers of `calls` calls. Before each 10 MB run
    under lit record: the recorder parses and indexes the previous 10 MB answer (1-2 s) after it
    has been relayed, and an agent never asks for ten megabytes back to back; this measures the
    stream, not that backlog."""
    import sqlite3

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
            try:
                done = conn.execute("SELECT COUNT(*) FROM exchanges WHERE status IS NOT NULL").fetchone()[0]
            finally:
                conn.close()
            if done >= calls:
                return
        except sqlite3.Error:
            pass
        await asyncio.sleep(0.02)


async def measure(targets: dict[str, str], big_targets: list[str], recorded_db: Path | None = None) -> dict:
    results: dict = {name: {} for name in targets}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        for url in targets.values():  # warm up connections and code paths
            for _ in range(10):
                await one(session, url, "small")
        calls = dict.fromkeys(targets, 10)
        ttfb: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(TTFB_REQUESTS):
            for name, url in targets.items():
                ttfb[name].append((await one(session, url, "small"))[0] * 1000)
                calls[name] += 1
        big: dict[str, list[float]] = {name: [] for name in targets}
        expected_big = sum(map(len, BIG))
        for _ in range(BIG_RUNS):
            for name in big_targets:
                if name == "lit record" and recorded_db:
                    await recorder_caught_up(recorded_db, calls[name])
                _, seconds, n = await one(session, targets[name], "big")
                calls[name] += 1
                assert n == expected_big, f"{name}: {n} bytes of {expected_big}"
                big[name].append(seconds)
        expected_paced = sum(map(len, PACED))
        if recorded_db:
            await recorder_caught_up(recorded_db, calls["lit record"])
        for name, url in targets.items():
            t0 = time.perf_counter()
            outcomes = await asyncio.gather(*(one(session, url, "paced") for _ in range(CONCURRENT)),
                                            return_exceptions=True)
            wall = time.perf_counter() - t0
            errors = sum(1 for o in outcomes if isinstance(o, BaseException) or o[2] != expected_paced)
            results[name].update(concurrent_wall=wall, concurrent_errors=errors)
        for name in targets:
            results[name].update(ttfb_median=statistics.median(ttfb[name]), ttfb_p99=pct(ttfb[name], 99),
                                 big_seconds=statistics.median(big[name]) if big[name] else None)
    return results


def main() -> int:
    started = time.monotonic()
    linear, half_mb, two_mb = parser_is_linear()
    big_targets = ["direct", "relay"] + (["lit record"] if linear else [])
    with tempfile.TemporaryDirectory(prefix="lit-bench-") as tmp:
        upstream, up_url = spawn("--upstream")
        relay, relay_url = spawn("--relay", up_url)
        recorded, rec_url = spawn("--relay", up_url, "--db", str(Path(tmp) / "lit.db"))
        try:
            results = asyncio.run(measure({"direct": up_url, "relay": relay_url, "lit record": rec_url}, big_targets,
                                          Path(tmp) / "lit.db"))
        finally:
            for proc in (relay, recorded, upstream):
                proc.stdin.close()
            recorder_said = recorded.stdout.readline().strip()
            for proc in (relay, recorded, upstream):
                proc.wait(30)

    d = results["direct"]
    mb = BIG_BYTES / 1024 / 1024
    print(f"lit relay benchmark, {time.strftime('%Y-%m-%d')}, {platform.machine()} {platform.system()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, aiohttp {aiohttp.__version__}")
    print(f"{TTFB_REQUESTS} calls for time to first byte; {mb:.0f} MB stream x{BIG_RUNS}; "
          f"{CONCURRENT} concurrent streams of {CONCURRENT_EVENTS} events\n")
    print(f"{'':<12}{'TTFB median':>12}{'added':>9}{'TTFB p99':>10}{'added':>9}"
          f"{'10 MB stream':>14}{'vs direct':>11}{'32 streams':>12}{'errors':>8}")
    for name, r in results.items():
        big = (f"{mb / r['big_seconds']:>9.0f} MB/s{d['big_seconds'] / r['big_seconds']:>10.2f}x"
               if r["big_seconds"] else f"{'-':>14}{'-':>11}")
        print(f"{name:<12}{r['ttfb_median']:>10.2f}ms{r['ttfb_median'] - d['ttfb_median']:>+7.2f}ms"
              f"{r['ttfb_p99']:>8.2f}ms{r['ttfb_p99'] - d['ttfb_p99']:>+7.2f}ms"
              f"{big}{r['concurrent_wall']:>11.2f}s{r['concurrent_errors']:>8}")
    print(f"\nrecorder: {recorder_said}; its stream parser took {half_mb * 1000:.0f} ms for 0.5 MB, "
          f"{two_mb * 1000:.0f} ms for 2 MB")
    if not linear:
        print("(not linear in the stream's size, so lit record's 10 MB stream was left out)")
    print(f"({time.monotonic() - started:.0f} s)")
    failed = any(r["concurrent_errors"] for r in results.values())
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--relay", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.upstream:
        serve_upstream()
    elif args.relay:
        serve_relay(args.relay, args.db)
    else:
        sys.exit(main())
