"""`lit serve` on a large DB: 1,000 threads and 100,000 steps. Times the pages people open first
through Datasette's own client (no network): the thread list, a thread page, the steps table, a
search and a canned query. Target: the thread list and a thread page under 500 ms each.

Baselines measured in the same run: Datasette's smallest page (/-/versions.json: the framework's
own cost per request) and the thread page's SQL run directly on sqlite3.

    python benchmarks/bench_serve.py            # builds the DB in a temporary folder
    python benchmarks/bench_serve.py --keep DIR # keeps it (and reuses it on the next run)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lit import store
from lit.serve import make_datasette

THREADS = 1_000
STEPS_PER_THREAD = 100
TARGET_MS = 500
T0 = 1_790_000_000.0

WORDS = ("the parser drops unknown blocks keep them raw instead so replay sees every byte check "
         "tests pass then commit with a message that says why not what config flag verbose path").split()


def prose(rng: random.Random, n: int) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    if rng.random() < 0.01:  # a word people search for is in few steps, not half of them
        words[0] = "segfault"
    return " ".join(words)


def build(path: Path) -> float:
    """Fill a new DB through the store's schema, with executemany (the recorder's triggers and
    indexes all apply). Returns seconds taken."""
    start = time.perf_counter()
    rng = random.Random(7)
    db = store.connect(path)
    conn = db.conn
    sessions, threads, steps, exchanges = [], [], [], []
    for t in range(THREADS):
        session = f"{t // 10:012x}"
        if t % 10 == 0:
            sessions.append((session, T0 + t * 600, "/work/repo" + str(t % 7), "claude-cli/2.1.197"))
        tid = f"{0xa00000000000 + t:012x}"
        started = T0 + t * 600
        threads.append((tid, session, t % 10 + 1, started, "bound" if t % 3 else "pending",
                        f"{t:040x}" if t % 3 else None, "/work/repo" + str(t % 7), prose(rng, 8)))
        model = ("claude-sonnet-4-6", "claude-opus-4-5", "claude-haiku-4-5")[t % 3]
        for e in range(10):
            exchanges.append((f"{session}.{t}.{e}", session, e + 1, started + e * 30, model, tid, "main",
                              rng.randint(500, 20000), rng.randint(50, 2000), rng.uniform(800, 9000)))
        for seq in range(1, STEPS_PER_THREAD + 1):
            kind = "prompt" if seq == 1 else ("thinking", "text", "tool_call", "tool_result", "thinking")[seq % 5]
            row = {"kind": kind,
                   "text": None, "tool_name": None, "tool_input": None, "tool_use_id": None, "is_error": 0}
            if row["kind"] in ("prompt", "thinking", "text"):
                row["text"] = prose(rng, rng.randint(20, 200))
            elif row["kind"] == "tool_call":
                row["tool_name"] = rng.choice(("Read", "Edit", "Write", "Bash", "Grep"))
                row["tool_input"] = json.dumps({"file_path": f"src/mod{rng.randint(0, 50)}.py",
                                                "old_string": prose(rng, 10), "new_string": prose(rng, 20)})
                row["tool_use_id"] = f"toolu_{tid}_{seq}"
            else:
                row["text"] = prose(rng, rng.randint(10, 100))
                row["tool_use_id"] = f"toolu_{tid}_{seq - 1}"
                row["is_error"] = int(rng.random() < 0.05)
            steps.append((f"{tid}.{seq}", tid, session, seq, started + seq, row["kind"], row["text"],
                          row["tool_name"], row["tool_input"], row["tool_use_id"], row["is_error"], model))
    with conn:
        conn.executemany("INSERT INTO sessions (id, started_at, repo_root, agent) VALUES (?, ?, ?, ?)", sessions)
        conn.executemany("INSERT INTO threads (id, session_id, seq, started_at, status, commit_sha, repo_root, title)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", threads)
        conn.executemany("INSERT INTO exchanges (id, session_id, seq, started_at, model, thread_id, role,"
                         " input_tokens, output_tokens, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         exchanges)
        conn.executemany("INSERT INTO steps (id, thread_id, session_id, seq, created_at, kind, text, tool_name,"
                         " tool_input, tool_use_id, is_error, model) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         steps)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - start


async def timed(ds, path: str, runs: int) -> tuple[float, float]:
    """(first request, median of the next `runs`) in ms; fails loudly on a non-200."""
    t = time.perf_counter()
    r = await ds.client.get(path)
    first = (time.perf_counter() - t) * 1000
    assert r.status_code == 200, (path, r.status_code, r.text[:500])
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        r = await ds.client.get(path)
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200
    return first, statistics.median(times)


def direct_thread_sql(path: Path, tid: str, runs: int) -> float:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        conn.execute("SELECT * FROM threads WHERE id = ?", [tid]).fetchall()
        conn.execute("SELECT * FROM steps WHERE thread_id = ? ORDER BY seq", [tid]).fetchall()
        conn.execute("SELECT COUNT(*), SUM(input_tokens) FROM exchanges WHERE thread_id = ?", [tid]).fetchall()
        times.append((time.perf_counter() - t) * 1000)
    conn.close()
    return statistics.median(times)


async def measure(path: Path, runs: int) -> list[tuple[str, float, float]]:
    ds = make_datasette(path)
    await ds.invoke_startup()
    tid = f"{0xa00000000000 + THREADS // 2:012x}"
    pages = [
        ("baseline: /-/versions.json", "/-/versions.json"),
        ("thread list /lit/threads", "/lit/threads"),
        ("thread page /-/lit/thread/ID", f"/-/lit/thread/{tid}"),
        ("steps table /lit/steps", "/lit/steps"),
        ("steps of a thread", f"/lit/steps?thread_id={tid}"),
        ("search /lit/steps?_search=segfault", "/lit/steps?_search=segfault"),
        ("failed tool calls (canned)", "/lit/failed_tool_calls"),
        ("usage per model per day (canned)", "/lit/usage_per_model_per_day"),
    ]
    out = []
    for label, url in pages:
        first, median = await timed(ds, url, runs)
        out.append((label, first, median))
    out.append(("baseline: thread page SQL on sqlite3", float("nan"), direct_thread_sql(path, tid, runs)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="Build (or reuse) the DB in this folder.")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="lit-bench-serve-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "lit.db"
    if not path.exists():
        secs = build(path)
        print(f"built {path}: {THREADS:,} threads, {THREADS * STEPS_PER_THREAD:,} steps in {secs:.1f} s "
              f"({path.stat().st_size / 1e6:.0f} MB)")
    store.connect(path).conn.close()  # migrations, as lit serve applies them
    results = asyncio.run(measure(path, args.runs))
    base = results[0][2]
    print(f"{'page':42} {'first ms':>9} {'median ms':>10} {'x baseline':>11}")
    for label, first, median in results:
        print(f"{label:42} {first:9.1f} {median:10.1f} {median / base:11.1f}")
    failed = [label for label, _, median in results[1:3] if median > TARGET_MS]
    verdict = "FAILED " + ", ".join(failed) if failed else "met"
    print(f"target: thread list and thread page under {TARGET_MS} ms: {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
