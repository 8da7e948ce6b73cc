"""Snapshots and line maps on big repositories, against plain git in the same run.

    python benchmarks/bench_git.py

1. A snapshot of a repository with 10,000 tracked files of which 10 changed (target < 100 ms),
   beside `git status` on the same tree (what any git user waits for).
2. The line map of a commit with 2,000 changed lines in 50 files over a 10-snapshot chain
   (target < 1 s), beside `git blame` of the same 50 files.
3. `git commit` of a one-line change in a repository with lit's hooks installed (`lit hooks
   install`; no session running, nothing to bind: most commits), beside the same commit with no
   hooks, one after the other.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lit import store
from lit.git import linemap, snapshot


def sh(args: list[str], cwd: Path) -> str:
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True).stdout


def timed(fn, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def repo_with(path: Path, files: int) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    sh(["git", "init", "-q"], path)
    sh(["git", "config", "user.email", "b@example.com"], path)
    sh(["git", "config", "user.name", "Bench"], path)
    for i in range(files):
        d = path / f"pkg{i // 500}"
        d.mkdir(exist_ok=True)
        f = d / f"mod{i}.py"
        f.write_text(f"# module {i}\nVALUE = {i}\n")
        # A real tree is older than its index: files as new as the index are "racily clean" and
        # git re-reads them all, which would measure a fresh checkout, not a working session.
        os.utime(f, (time.time() - 3600, time.time() - 3600))
    sh(["git", "add", "-A"], path)
    sh(["git", "commit", "-q", "-m", "base"], path)
    return path


def bench_snapshot(tmp: Path) -> tuple[float, float]:
    repo = repo_with(tmp / "big", 10_000)
    snapshot.take(repo, "bench", reason="start")
    counter = [0]

    def change_and_snapshot() -> None:
        counter[0] += 1
        for i in range(10):
            (repo / f"pkg{i}" / f"mod{i * 500}.py").write_text(f"# changed {counter[0]}\n")
        snapshot.take(repo, "bench", reason="turn", step_ids=["x.1"])

    def change_and_status() -> None:
        counter[0] += 1
        for i in range(10):
            (repo / f"pkg{i}" / f"mod{i * 500}.py").write_text(f"# changed {counter[0]}\n")
        sh(["git", "status", "--porcelain"], repo)

    return timed(change_and_snapshot), timed(change_and_status)


def bench_linemap(tmp: Path) -> tuple[float, float, int]:
    repo = repo_with(tmp / "lm", 50)
    db = store.connect(tmp / "lit.db")
    snapshot.take(repo, "lm", reason="start")
    files = sorted(repo.glob("pkg0/*.py"))
    for k in range(10):  # 10 turns, each writing 5 of the 50 files with 40 lines
        for f in files[k * 5:(k + 1) * 5]:
            f.write_text("".join(f"line {n} of {f.name} turn {k}\n" for n in range(40)))
        commit, _, _ = snapshot.take(repo, "lm", reason="turn", step_ids=[f"t.{k}"])
        with db.conn:
            db["snapshots"].insert({"session_id": "lm", "seq": k + 1, "commit_sha": commit,
                                    "step_ids": f'["t.{k}"]', "reason": "turn"})
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-q", "-m", "work"], repo)
    head = sh(["git", "rev-parse", "HEAD"], repo).strip()
    tip = snapshot.latest(repo, "lm")
    result = {}

    def compute() -> None:
        result["lm"] = linemap.compute(repo, head, tip, linemap.step_chooser(db))

    def plain_blame() -> None:
        for f in files:
            sh(["git", "blame", "--porcelain", "HEAD", "--", str(f.relative_to(repo))], repo)

    ms = timed(compute, 3)
    return ms, timed(plain_blame, 3), result["lm"].lines()


def bench_commit(tmp: Path) -> tuple[float, float]:
    repo = repo_with(tmp / "hooked", 50)
    env = {**os.environ, "LIT_DB": str(tmp / "hooks.db")}
    store.connect(tmp / "hooks.db").conn.close()
    subprocess.run([sys.executable, "-m", "lit", "hooks", "install"], cwd=repo, env=env, check=True,
                   capture_output=True)
    bare = {**env, "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.hooksPath", "GIT_CONFIG_VALUE_0": os.devnull}
    times: dict[str, list[float]] = {"lit": [], "git": []}
    for n in range(20):
        for name, e in (("lit", env), ("git", bare))[::1 if n % 2 else -1]:
            (repo / "pkg0" / "mod0.py").write_text(f"# commit {n} {name}\n")
            subprocess.run(["git", "add", "-A"], cwd=repo, env=e, check=True)
            t0 = time.perf_counter()
            subprocess.run(["git", "commit", "-q", "-m", f"{name} {n}"], cwd=repo, env=e, check=True)
            times[name].append((time.perf_counter() - t0) * 1000)
    return statistics.median(times["lit"]), statistics.median(times["git"])


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        snap, status = bench_snapshot(tmp)
        lm, blame, lines = bench_linemap(tmp)
        hooked, plain = bench_commit(tmp)
    print("| measure | lit | git baseline | ratio |")
    print("|---|---|---|---|")
    print(f"| snapshot, 10,000 files, 10 changed | {snap:.0f} ms | `git status` {status:.0f} ms "
          f"| {snap / status:.1f}x |")
    print(f"| line map, {lines} lines in 50 files, 10 snapshots | {lm:.0f} ms | `git blame` x50 {blame:.0f} ms "
          f"| {lm / blame:.1f}x |")
    print(f"| `git commit` with lit's hooks, nothing to bind | {hooked:.0f} ms | without hooks {plain:.0f} ms "
          f"| +{hooked - plain:.0f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
