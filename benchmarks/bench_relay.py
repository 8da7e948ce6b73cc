"""What lit costs an agent, measured on an agent's real loop against a direct connection and peers,
all interleaved call by call in one run (so noise on a shared machine falls on all alike).

    python benchmarks/bench_relay.py                 # about a minute; prints a table
    python benchmarks/bench_relay.py --mitmdump PATH # mitmproxy as a peer (pip install mitmproxy
                                                     # in a venv of its own; found on PATH otherwise)

One scripted Messages API upstream in its own process. The agent (a child of `lit record`, as an
agent is) sends each call to every target in turn, rotating the order:

    direct     the upstream itself
    socat      a TCP forwarder in C: the floor of any relay on this machine
    pump       lit's relay alone (the asyncio byte pump, no spool, no recorder)
    lit        lit record: the relay, the spool and the recorder process, as users run it
    mitmproxy  reverse mode, with an addon that keeps the streamed bytes of both directions

Three cases, as issue 16 describes them:
- loop: 40 turns whose requests resend the whole conversation (to 1.4 MB), small streamed answers;
- git: the same inside a git repository, each turn's tool writing a file (lit snapshots the turn);
- big: 15 calls back to back with 1 MB streamed answers.

Reported: added time to first byte (median / p99 of relayed - direct, paired per call), the
stream time vs direct for 1 MB answers, how long lit took to exit after its agent did, and the DB's
size over the unique content lit was sent (each message, system prompt, tool list and answer once).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import shutil
import socket
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


def serve_pump(upstream: str) -> None:
    from lit.proxy.relay import Relay

    with Relay(upstream) as relay:
        print(relay.port, flush=True)
        sys.stdin.read()


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


def run_agent(case: str, names: list[str], urls: list[str], out: str) -> None:
    targets = [Target(n, u) for n, u in zip(names, urls, strict=True)]
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
                                     "agent_exit": time.time()}))


# --- the benchmark ---------------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def run_case(case: str, peers: dict[str, str], upstream: str, tmp: Path) -> dict:
    work = tmp / case
    work.mkdir()
    if case == "git":
        for args in (["init", "-q"], ["config", "user.email", "b@example.com"], ["config", "user.name", "bench"]):
            subprocess.run(["git", *args], cwd=work, check=True)
        for i in range(200):
            (work / f"src{i:03d}.py").write_text(f"x = {i}\n" * 50)
        subprocess.run(["git", "add", "-A"], cwd=work, check=True)
        subprocess.run(["git", "commit", "-qm", "base"], cwd=work, check=True)
    out, db = tmp / f"{case}.json", tmp / f"{case}.db"  # outside the repository lit snapshots
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
    data["db_bytes"] = sum(p.stat().st_size for p in tmp.glob(f"{case}.db*"))
    data["lit_said"] = said.strip().splitlines()[-1]
    return data


def report(case: str, data: dict) -> list[str]:
    res = data["results"]
    direct = res["direct"]
    lines = []
    for name, values in res.items():
        if name == "direct":
            continue
        added = [(v[0] - d[0]) * 1000 for v, d in zip(values, direct, strict=True)]
        late = [(v[0] - d[0]) * 1000 for v, d in zip(values[len(values) // 2:], direct[len(direct) // 2:], strict=True)]
        stream = statistics.median(v[1] for v in values) / statistics.median(d[1] for d in direct)
        lines.append(f"{case:<6}{name:<11}{statistics.median(added):>+9.2f}{pct(added, 99):>+9.2f}"
                     f"{statistics.median(late):>+11.2f}{pct(late, 99):>+9.2f}{stream:>9.2f}x")
    return lines


def main(args: argparse.Namespace) -> int:
    started = time.monotonic()
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
            peers = {"direct": upstream, "pump": spawn("--pump", upstream)}
            if shutil.which("socat"):
                port = free_port()
                procs.append(subprocess.Popen(["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr",
                                               f"TCP:127.0.0.1:{up_port},nodelay"]))
                wait_port(port)
                peers["socat"] = f"http://127.0.0.1:{port}"
            mitmdump = args.mitmdump or shutil.which("mitmdump")
            if mitmdump:
                port = free_port()
                (tmp / "keep.py").write_text(MITM_ADDON)
                procs.append(subprocess.Popen([mitmdump, "-q", "--mode", f"reverse:{upstream}", "--listen-host",
                                               "127.0.0.1", "--listen-port", str(port), "-s", str(tmp / "keep.py"),
                                               "--set", "stream_large_bodies=1"], stdout=subprocess.DEVNULL))
                wait_port(port)
                peers["mitmproxy"] = f"http://127.0.0.1:{port}"
            cases = {case: run_case(case, peers, upstream, tmp) for case in ("loop", "git", "big")}
        finally:
            for proc in procs:
                if proc.stdin:
                    proc.stdin.close()
                else:
                    proc.terminate()
            for proc in procs:
                proc.wait(30)

    import aiohttp

    print(f"lit relay benchmark, {time.strftime('%Y-%m-%d')}, {platform.machine()} {platform.system()}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, Python {platform.python_version()}, "
          f"aiohttp {aiohttp.__version__}")
    print(f"loop/git: {TURNS} turns, the last request {cases['loop']['last_request'] / 1e6:.2f} MB; "
          f"big: {BIG_CALLS} answers of {BIG_BYTES // 1024} kB. Added TTFB vs direct in ms (late: the second half)\n")
    print(f"{'case':<6}{'relay':<11}{'median':>9}{'p99':>9}{'late med':>11}{'p99':>9}{'stream':>10}")
    for case, data in cases.items():
        print("\n".join(report(case, data)))
    print()
    for case, data in cases.items():
        storage = f", storage {data['db_bytes'] / data['unique']:.2f}x unique content" if case != "big" else ""
        print(f"{case}: lit exited {data['exit_after_agent']:.2f} s after its agent{storage}; {data['lit_said']}")
    print(f"({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mitmdump", help="mitmproxy's mitmdump (default: on PATH; left out if none)")
    parser.add_argument("--upstream", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pump", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--agent", help=argparse.SUPPRESS)
    parser.add_argument("--names", help=argparse.SUPPRESS)
    parser.add_argument("--urls", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.upstream:
        serve_upstream()
    elif args.pump:
        serve_pump(args.pump)
    elif args.agent:
        run_agent(args.agent, args.names.split(","), args.urls.split(","), args.out)
    else:
        sys.exit(main(args))
