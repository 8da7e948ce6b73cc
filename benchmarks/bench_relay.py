"""What lit costs an agent, measured on an agent's real loop against a direct connection and peers,
all interleaved call by call in one run (so noise on a shared machine falls on all alike).

    python benchmarks/bench_relay.py                 # about a minute; prints a table
    python benchmarks/bench_relay.py --mitmdump PATH # mitmproxy as a peer (pip install mitmproxy
                                                     # in a venv of its own; found on PATH otherwise)
    python benchmarks/bench_relay.py --rounds 1      # each case once (10-20 s)

One scripted Messages API upstream in its own process. The agent (a child of `lit record`, as an
agent is) sends each call to every target in turn, rotating the order:

    direct     the upstream itself
    socat      a TCP forwarder in C (TCP_NODELAY both sides): the floor of any relay here
    asyncio    the least a Python relay does: a TCP forwarder on asyncio that writes each piece
               the socket gives to the other side in the same callback (no HTTP, no copy kept)
    relay      lit's relay alone (HTTP framing, the gate; no spool, no recorder)
    lit        lit record: the relay, the spool and the recorder process, as users run it
    mitmproxy  reverse mode, with an addon that keeps the streamed bytes of both directions

Four cases, the three issue 16 describes and one more:
- loop: 40 turns whose requests resend the whole conversation (to 1.4 MB), small streamed answers;
- git: the same inside a git repository, each turn's tool writing a file (lit snapshots the turn);
- read: the same in a git repository whose tools change nothing (they read, search, run tests: most
  turns), which lit's snapshot learns from the kernel without running git;
- big: 15 calls back to back with 1 MB streamed answers.

Each case runs --rounds times (3 by default), a new `lit record` each time. Reported: added time to
first byte (median / p99 of relayed - direct, paired per call), the call's time (to the answer's
end) vs direct, how long lit took to exit after its agent did, and the DB's size over the unique
content lit was sent (each message, system prompt, tool list and answer once), with the load
average before and after (on a shared machine, compare figures of the same run only).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

TURNS, RESULT_BYTES = 40, 35_000  # 40 tool results of 35 kB: the last request is about 1.4 MB
BIG_CALLS, BIG_BYTES = 15, 1024 * 1024
TOOLS = [{"name": f"Tool{i}", "description": "A tool an agent has. " * 60,
          "input_schema": {"type": "object", "properties": {"path": {"type": "string"}, "text": {"type": "string"}}}}
         for i in range(16)]
SYSTEM = [{"type": "text", "text": "You are a coding agent working in a repository. " * 80}]
MITM_ADDON = '''
kept = []

def requestheaders(flow):
    def keep(data: bytes) -> bytes:
        kept.append(data)
        return data
    flow.request.stream = keep

def responseheaders(flow):
    def keep(data: bytes) -> bytes:
        kept.append(data)
        return data
    flow.response.stream = keep
'''


# What a tool's output looks like to zlib: numbered lines of code-like words, which compress 3.3x
# as lit's own source does (3.2-3.4x). One letter repeated would compress 300x and flatter storage.
WORDS = ("self value result path name text line file data index count items error config request response "
         "session thread step parse write read open close return None True False if for in not and or def "
         "class import from").split()


def tool_output(turn: int, size: int = RESULT_BYTES) -> str:
    rng = random.Random(turn)
    lines: list[str] = []
    while sum(len(x) + 1 for x in lines) < size:
        words = (rng.choice(WORDS) + (f"_{rng.randrange(100)}" if rng.random() < 0.3 else "")
                 for _ in range(rng.randrange(2, 10)))
        lines.append(f"{len(lines) + 1:5}  {'    ' * rng.randrange(4)}{' '.join(words)}")
    return "\n".join(lines)[:size]


def sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def answer(kind: str, turn: int) -> list[bytes]:
    """A streamed answer: a tool call (loop turns), the last words, or 1 MB of text."""
    start = sse("message_start", {"type": "message_start", "message": {
        "id": f"msg_{kind}_{turn}", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
        "content": [], "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 1}}})
    events = [start]
    if kind == "tool":
        events += [sse("content_block_start", {"type": "content_block_start", "index": 0,
                                               "content_block": {"type": "text", "text": ""}}),
                   sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
                       "type": "text_delta", "text": f"Turn {turn}: writing the next file."}}),
                   sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
                   sse("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
                       "type": "tool_use", "id": f"toolu_{turn:03d}", "name": "Tool0", "input": {}}}),
                   sse("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {
                       "type": "input_json_delta", "partial_json": json.dumps(
                           {"path": f"f{turn:03d}.txt", "text": f"file {turn}\n"})}}),
                   sse("content_block_stop", {"type": "content_block_stop", "index": 1})]
        stop = "tool_use"
    else:
        text = "y" * 950 if kind == "big" else "Done."
        events.append(sse("content_block_start", {"type": "content_block_start", "index": 0,
                                                  "content_block": {"type": "text", "text": ""}}))
        delta = sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                            "delta": {"type": "text_delta", "text": text}})
        events += [delta] * (BIG_BYTES // len(delta) if kind == "big" else 1)
        events.append(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        stop = "end_turn"
    events += [sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop},
                                     "usage": {"output_tokens": 10}}), sse("message_stop", {"type": "message_stop"})]
    # Written as an API streams: an event at a time, big answers 64 kB at a time.
    if kind != "big":
        return events
    writes, current = [], b""
    for e in events:
        current += e
        if len(current) >= 64 * 1024:
            writes.append(current)
            current = b""
    return writes + ([current] if current else [])


# --- the processes ---------------------------------------------------------------------------------


def serve_upstream() -> None:
    from lit.scripted import ScriptedUpstream

    def reply(body: dict) -> dict:
        kind, turn = body["metadata"]["user_id"].split(":")
        return {"chunks": answer(kind, int(turn))}

    with ScriptedUpstream(reply) as up:
        up.requests = __import__("collections").deque(maxlen=1)
        print(up.port, flush=True)
        sys.stdin.read()


def serve_relay(upstream: str) -> None:
    from lit.proxy.relay import Relay

    with Relay(upstream) as relay:
        print(relay.port, flush=True)
        sys.stdin.read()


class _Forward(asyncio.Protocol):
    """One side of a forwarded connection: what it reads goes to the other side's transport (no
    flow control: a floor to measure against, not a relay to use)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Forward | None = None
        self.held: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)
        else:
            self.held.append(data)  # before the upstream connection is made

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


async def _forward(upstream_port: int) -> None:
    loop = asyncio.get_running_loop()
    tasks = set()

    def accept() -> _Forward:
        agent = _Forward()

        async def link() -> None:
            transport, up = await loop.create_connection(_Forward, "127.0.0.1", upstream_port)
            agent.peer, up.peer = up, agent
            for data in agent.held:
                transport.write(data)

        task = loop.create_task(link())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return agent

    server = await loop.create_server(accept, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await loop.run_in_executor(None, sys.stdin.read)


def serve_forward(upstream: str) -> None:
    asyncio.run(_forward(int(urllib.parse.urlsplit(upstream).port)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


# --- the agent (a child of lit record) ---------------------------------------------------------------


class Target:
    def __init__(self, name: str, url: str):
        self.name, self.url = name, urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=120)

    def call(self, body: bytes) -> tuple[float, float, bytes]:
        """(seconds to the answer's first body byte, seconds to its end, the answer)."""
        t0 = time.perf_counter()
        self.conn.request("POST", "/v1/messages", body, {
            "content-type": "application/json", "x-api-key": "sk-ant-api03-bench", "anthropic-version": "2023-06-01",
            "host": f"127.0.0.1:{self.url.port}"})
        resp = self.conn.getresponse()
        first = resp.read1(65536)
        t1 = time.perf_counter()
        rest = resp.read()
        if resp.status != 200:
            raise SystemExit(f"{self.name}: {resp.status} {(first + rest)[:300]!r}")
        return t1 - t0, time.perf_counter() - t0, first + rest


class Recorded:
    """How far lit's recorder process has got, read from its DB: after each call through lit, the
    agent waits until the recorder has written it, so that the recorder's work for one call never
    lands on the next target's call (the calls are interleaved; without this, lit's figures left
    out the recorder's tail, and whichever target came next carried it)."""

    def __init__(self) -> None:
        self.db: sqlite3.Connection | None = None
        self.calls = 0
        self.lag: list[float] = []  # seconds from the end of each answer to its row in the DB

    def wait(self) -> None:
        self.calls += 1
        ended, deadline = time.perf_counter(), time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.db is None:
                    self.db = sqlite3.connect(f"file:{os.environ['LIT_DB']}?mode=ro", uri=True)
                written = self.db.execute("SELECT COUNT(*) FROM exchanges WHERE session_id = ? AND status IS NOT NULL",
                                          [os.environ["LIT_SESSION"]]).fetchone()[0]
            except sqlite3.Error:
                written = 0
            if written >= self.calls:
                break
            time.sleep(0.001)
        self.lag.append(time.perf_counter() - ended)


def run_agent(case: str, names: list[str], urls: list[str], out: str) -> None:
    targets = [Target(n, u) for n, u in zip(names, urls, strict=True)]
    recorded = Recorded()
    targets.append(Target("lit", os.environ["ANTHROPIC_BASE_URL"]))
    results: dict[str, list[tuple[float, float]]] = {t.name: [] for t in targets}
    messages: list[dict] = [{"role": "user", "content": "Write the files, one per turn."}]
    unique = len(json.dumps(TOOLS)) + len(json.dumps(SYSTEM)) + len(json.dumps(messages[0]))
    calls = BIG_CALLS if case == "big" else TURNS
    for turn in range(1, calls + 1):
        kind = "big" if case == "big" else ("tool" if turn < calls else "done")
        body = json.dumps({"model": "claude-sonnet-4-6", "max_tokens": 4096, "stream": True, "system": SYSTEM,
                           "tools": TOOLS, "messages": messages, "metadata": {"user_id": f"{kind}:{turn}"}}).encode()
        order = targets[turn % len(targets):] + targets[:turn % len(targets)]
        for t in order:
            first, total, got = t.call(body)
            results[t.name].append((first, total))
            if t.name == "lit":
                recorded.wait()
        unique += len(got)
        if case == "big":
            continue
        tool = {"type": "tool_use", "id": f"toolu_{turn:03d}", "name": "Tool0",
                "input": {"path": f"f{turn:03d}.txt", "text": f"file {turn}\n"}}
        if case == "git":  # the tool really runs: lit snapshots what it wrote at the next call
            Path(f"f{turn:03d}.txt").write_text(f"file {turn}\n" + "x" * 2000)
        result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool["id"],
                                               "content": f"wrote f{turn:03d}.txt\n" + tool_output(turn)}]}
        messages += [{"role": "assistant", "content": [{"type": "text", "text": f"Turn {turn}"}, tool]}, result]
        unique += len(json.dumps(result))
    Path(out).write_text(json.dumps({"results": results, "unique": unique, "last_request": len(body),
                                     "recorder_lag": recorded.lag, "agent_exit": time.time()}))


# --- the benchmark ---------------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def run_case(case: str, peers: dict[str, str], upstream: str, tmp: Path, round_no: int) -> dict:
    work = tmp / f"{case}{round_no}"
    work.mkdir()
    if case in ("git", "read"):
        for args in (["init", "-q"], ["config", "user.email", "b@example.com"], ["config", "user.name", "bench"]):
            subprocess.run(["git", *args], cwd=work, check=True)
        for i in range(200):
            (work / f"src{i:03d}.py").write_text(f"x = {i}\n" * 50)
        subprocess.run(["git", "add", "-A"], cwd=work, check=True)
        subprocess.run(["git", "commit", "-qm", "base"], cwd=work, check=True)
    # Outside the repository lit snapshots.
    out, db = tmp / f"{case}{round_no}.json", tmp / f"{case}{round_no}.db"
    env = {**os.environ, "LIT_DB": str(db), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "lit", "record", "--upstream", upstream, "--", sys.executable,
                             __file__, "--agent", case, "--names", ",".join(peers), "--urls", ",".join(peers.values()),
                             "--out", str(out)], cwd=work, env=env, stderr=subprocess.PIPE, text=True)
    _, said = proc.communicate(timeout=600)
    lit_exit = time.time()
    if proc.returncode != 0:
        raise SystemExit(f"{case}: lit record failed: {said}")
    data = json.loads(out.read_text())
    data["exit_after_agent"] = lit_exit - data["agent_exit"]
    data["db_bytes"] = sum(p.stat().st_size for p in tmp.glob(f"{case}{round_no}.db*"))
    data["lit_said"] = said.strip().splitlines()[-1]
    return data


def merged(rounds: list[dict]) -> dict:
    """The rounds of one case as one: each target's calls in a list, still paired call by call."""
    first = rounds[0]
    return {"results": {name: [call for r in rounds for call in r["results"][name]] for name in first["results"]},
            "exit_after_agent": [r["exit_after_agent"] for r in rounds],
            "storage": [r["db_bytes"] / r["unique"] for r in rounds],
            "recorder_lag": [lag for r in rounds for lag in r["recorder_lag"]],
            "last_request": first["last_request"], "lit_said": rounds[-1]["lit_said"]}


ORDER = ("socat", "asyncio", "relay", "lit", "mitmproxy")


def report(case: str, data: dict) -> list[str]:
    res = data["results"]
    direct = res["direct"]
    lines = []
    for name in (n for n in ORDER if n in res):
        values = res[name]
        added = [(v[0] - d[0]) * 1000 for v, d in zip(values, direct, strict=True)]
        late = [a for i, a in enumerate(added) if case == "big" or i % TURNS >= TURNS // 2]
        ratio = statistics.median(v[1] for v in values) / statistics.median(d[1] for d in direct)
        lines.append(f"{case:<6}{name:<11}{statistics.median(added):>+9.2f}{pct(added, 99):>+9.2f}"
                     f"{statistics.median(late):>+11.2f}{pct(late, 99):>+9.2f}{ratio:>9.2f}x")
    return lines


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main(args: argparse.Namespace) -> int:
    started = time.monotonic()
    load_before = load()
    procs: list[subprocess.Popen] = []

    def spawn(*extra: str) -> str:
        proc = subprocess.Popen([sys.executable, __file__, *extra], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True)
        procs.append(proc)
        return f"http://127.0.0.1:{proc.stdout.readline().strip()}"

    with tempfile.TemporaryDirectory(prefix="lit-bench-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            upstream = spawn("--upstream")
            up_port = int(urllib.parse.urlsplit(upstream).port)
            peers = {"direct": upstream}
            if shutil.which("socat"):
                port = free_port()
                # nodelay on both sides (without it on the agent's side, Nagle holds the end of each
                # request for the upstream's delayed ACK: +40 ms), and reads as large as the relays'.
                procs.append(subprocess.Popen(["socat", "-b", "262144",
                                               f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr,nodelay",
                                               f"TCP:127.0.0.1:{up_port},nodelay"]))
                wait_port(port)
                peers["socat"] = f"http://127.0.0.1:{port}"
            peers["asyncio"] = spawn("--forward", upstream)
            peers["relay"] = spawn("--relay", upstream)
            mitmdump = args.mitmdump or shutil.which("mitmdump")
            if mitmdump:
                port = free_port()
                (tmp / "keep.py").write_text(MITM_ADDON)
                procs.append(subprocess.Popen([mitmdump, "-q", "--mode", f"reverse:{upstream}", "--listen-host",
                                               "127.0.0.1", "--listen-port", str(port), "-s", str(tmp / "keep.py"),
                                               "--set", "stream_large_bodies=1"], stdout=subprocess.DEVNULL))
                wait_port(port)
                peers["mitmproxy"] = f"http://127.0.0.1:{port}"
            cases = {case: merged([run_case(case, peers, upstream, tmp, r) for r in range(args.rounds)])
                     for case in args.cases.split(",")}
        finally:
            for proc in procs:
                if proc.stdin:
                    proc.stdin.close()
                else:
                    proc.terminate()
            for proc in procs:
                proc.wait(30)

    print(f"lit relay benchmark, {time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()} {platform.system()}, "
          f"{os.cpu_count()} cores, load {load_before} before, {load()} after, Python {platform.python_version()}")
    last = next((c["last_request"] for name, c in cases.items() if name != "big"), 0)
    print(f"loop/git/read: {TURNS} turns, the last request {last / 1e6:.2f} MB; "
          f"big: {BIG_CALLS} answers of {BIG_BYTES // 1024} kB; {args.rounds} rounds each.")
    print("Added time to first byte vs direct, ms (late: requests over 0.7 MB; big: all); call time vs direct\n")
    print(f"{'case':<6}{'relay':<11}{'median':>9}{'p99':>9}{'late med':>11}{'p99':>9}{'call':>10}")
    for case, data in cases.items():
        print("\n".join(report(case, data)))
    print()
    for case, data in cases.items():
        exits = ", ".join(f"{x:.2f}" for x in data["exit_after_agent"])
        storage = (f"; storage {statistics.median(data['storage']):.2f}x unique content" if case != "big" else "")
        lag = [x * 1000 for x in data["recorder_lag"]]
        print(f"{case}: each call in the DB {statistics.median(lag):.0f} ms (p99 {pct(lag, 99):.0f}) after its answer "
              f"ended; lit exited {exits} s after its agent{storage}; {data['lit_said']}")
    print(f"({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mitmdump", help="mitmproxy's mitmdump (default: on PATH; left out if none)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each case (default 3)")
    parser.add_argument("--cases", default="loop,git,read,big", help="which cases, in order (default: all four)")
    parser.add_argument("--upstream", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--relay", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--forward", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--agent", help=argparse.SUPPRESS)
    parser.add_argument("--names", help=argparse.SUPPRESS)
    parser.add_argument("--urls", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.upstream:
        serve_upstream()
    elif args.relay:
        serve_relay(args.relay)
    elif args.forward:
        serve_forward(args.forward)
    elif args.agent:
        run_agent(args.agent, args.names.split(","), args.urls.split(","), args.out)
    else:
        sys.exit(main(args))
