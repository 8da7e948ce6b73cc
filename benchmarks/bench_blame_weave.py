"""lit blame against git blame, and lit weave of a big commit, measured in one run.

    python benchmarks/bench_blame_weave.py

1. A 3,000-line file changed by 300 commits, each with a lit note (a line map and its steps):
   `lit blame FILE` against plain `git blame FILE`, both as a person runs them (new processes,
   output to a pipe), median of several runs. Target: within 1.5x.
2. A commit adding a 5,000-line file whose note cites 50 steps: `lit weave` time and page size.
   Targets: under 2 s, under 5 MB.

The repositories are made with `git fast-import` (commits, then notes on refs/notes/lit) in a
temporary directory; no DB (notes alone, the slower path: every note is read and parsed).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LINES, COMMITS, CHANGES_PER_COMMIT = 3000, 300, 12
WEAVE_LINES, WEAVE_STEPS = 5000, 50
RUNS = 9


def fast_import(repo: Path, stream: str) -> None:
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=stream.encode(), check=True)
    # fast-import writes objects and refs only: check the files out (this is the benchmark's own repo)
    subprocess.run(["git", "checkout", "-q", "-f", "main"], cwd=repo, check=True)


def data(text: str) -> str:
    return f"data {len(text.encode())}\n{text}\n"


def note(commit: str, thread: str, files: dict, steps: dict) -> str:
    return json.dumps({
        "version": 1, "thread": thread, "session": "b0b1c2d3e4f5", "commit": commit,
        "agent": "claude-cli/2.1.197", "models": ["claude-sonnet-4-6"],
        "started_at": "2026-11-28T19:40:00Z", "ended_at": "2026-11-28T19:52:10Z",
        "usage": {"input_tokens": 12000, "output_tokens": 900, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 40000},
        "prompts": [{"step": f"{thread}.1", "text": "Make the change the issue asks for."}],
        "files": files, "steps": steps, "truncated": False})


def add_notes(repo: Path, notes: dict[str, str]) -> None:
    stream = "commit refs/notes/lit\ncommitter Bench <bench@example.com> 1795894800 +0000\n" + data("notes")
    for commit, text in notes.items():
        stream += f"N inline {commit}\n" + data(text)
    fast_import(repo, stream)


def init(repo: Path) -> None:
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)


def blame_repo(repo: Path) -> None:
    """300 commits; each rewrites 12 random lines and has a note mapping them to one Edit step."""
    rng = random.Random(4)
    content = [f"value_{i} = compute({i})  # first version of line {i}" for i in range(LINES)]
    stream, changed = "", []
    for n in range(1, COMMITS + 1):
        lines = list(range(LINES)) if n == 1 else sorted(rng.sample(range(LINES), CHANGES_PER_COMMIT))
        for i in lines if n > 1 else []:
            content[i] = f"value_{i} = compute({i}) + {n}  # changed by commit {n}"
        changed.append(lines)
        stream += (f"commit refs/heads/main\nmark :{n}\n"
                   f"committer Lit Agent <agent@example.com> {1795894800 + n * 60} +0000\n"
                   + data(f"Change {n}\n\nLit-Thread: {n:012x}")
                   + (f"from :{n - 1}\n" if n > 1 else "")
                   + "M 100644 inline big.py\n" + data("\n".join(content) + "\n"))
    fast_import(repo, stream)
    shas = subprocess.run(["git", "rev-list", "--reverse", "main"], cwd=repo, capture_output=True, text=True,
                          check=True).stdout.split()
    notes = {}
    for n, (sha, lines) in enumerate(zip(shas, changed, strict=True), 1):
        thread = f"{n:012x}"
        step = f"{thread}.3"
        files = {"big.py": [[i + 1, i + 1, step] for i in lines]} if n > 1 else {"big.py": [[1, LINES, step]]}
        steps = {step: {"seq": 3, "kind": "tool_call", "tool": "Edit", "input": {"file_path": "big.py"},
                        "why": f"Commit {n} adjusts these values. The rest of the reasoning goes on for a while "
                               + "and says why at length. " * 20, "prompt": f"{thread}.1",
                        "result": "The file big.py has been updated.", "is_error": False}}
        notes[sha] = note(sha, thread, files, steps)
    add_notes(repo, notes)


def weave_repo(repo: Path) -> None:
    """One commit adding a 5,000-line file, its lines cited by 50 steps in its note."""
    body = "".join(f"def function_{i}(x):\n    return x * {i} + len('line {i}')\n\n" for i in range(WEAVE_LINES // 3))
    body += "\n" * (WEAVE_LINES - body.count("\n"))
    fast_import(repo, "commit refs/heads/main\ncommitter Lit Agent <agent@example.com> 1795894800 +0000\n"
                + data("Add many functions") + "M 100644 inline many.py\n" + data(body))
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    thread, per = "aaaabbbbcccc", WEAVE_LINES // WEAVE_STEPS
    files = {"many.py": [[k * per + 1, (k + 1) * per, f"{thread}.{2 * k + 2}"] for k in range(WEAVE_STEPS)]}
    steps = {f"{thread}.{2 * k + 2}": {"seq": 2 * k + 2, "kind": "tool_call", "tool": "Write",
                                       "input": {"file_path": "many.py"}, "prompt": f"{thread}.1",
                                       "why": f"Part {k}: **these** functions, with `code` and a list:\n\n- one\n- two"}
             for k in range(WEAVE_STEPS)}
    add_notes(repo, {sha: note(sha, thread, files, steps)})


def timed(cmd: list[str], cwd: Path, env: dict) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def paired(first: list[str], second: list[str], cwd: Path, env: dict) -> tuple[list[float], list[float]]:
    timed(first, cwd, env), timed(second, cwd, env)  # warm the caches
    a, b = [], []
    for _ in range(RUNS):
        a.append(timed(first, cwd, env))
        b.append(timed(second, cwd, env))
    return a, b


def median(cmd: list[str], cwd: Path, env: dict) -> float:
    timed(cmd, cwd, env)  # warm the caches
    return statistics.median(timed(cmd, cwd, env) for _ in range(RUNS))


def main() -> None:
    lit = [sys.executable, "-m", "lit"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        env = {**os.environ, "HOME": tmp, "LIT_DB": str(tmp_path / "none.db"), "NO_COLOR": "1"}
        # As a user runs lit: pip installs it with its bytecode compiled (and the warm-up run writes
        # it for an editable install); some sandboxes turn that off, which costs ~30 ms a start.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        t = time.perf_counter()
        blame_dir = tmp_path / "blame"
        init(blame_dir)
        blame_repo(blame_dir)
        print(f"made {COMMITS} commits of a {LINES}-line file with notes in {time.perf_counter() - t:.1f} s")
        # Paired runs (git, then lit, each round): the machine is shared, so both see the same load.
        for label, git_cmd, lit_cmd in (
                ("", ["git", "blame", "big.py"], [*lit, "blame", "big.py"]),
                (" -M -C", ["git", "blame", "-M", "-C", "big.py"], [*lit, "blame", "-M", "-C", "big.py"])):
            g, ours = map(statistics.median, paired(git_cmd, lit_cmd, blame_dir, env))
            print(f"git blame{label:6} {g * 1000:6.0f} ms   lit blame{label:6} {ours * 1000:6.0f} ms   "
                  f"ratio {ours / g:.2f}x")
        lit_start = median([*lit, "--version"], blame_dir, env)
        print(f"(lit --version, Python's start-up and the CLI's imports alone: {lit_start * 1000:.0f} ms)")
        # lit's own work, without the start-up: blame() in this process against the same git call
        os.environ["LIT_DB"] = env["LIT_DB"]
        from lit import blame as blame_module

        g, ours = [], []
        for _ in range(RUNS):
            g.append(timed(["git", "blame", "--porcelain", "big.py"], blame_dir, env))
            ours.append(_time(lambda: blame_module.blame("big.py", cwd=blame_dir)))
        print(f"in one process: blame() {statistics.median(ours) * 1000:.0f} ms against git blame --porcelain "
              f"{statistics.median(g) * 1000:.0f} ms: {statistics.median(ours) / statistics.median(g):.2f}x")

        weave_dir = tmp_path / "weave"
        init(weave_dir)
        weave_repo(weave_dir)
        page = weave_dir / "page.html"
        seconds = median([*lit, "weave", "HEAD", "-o", str(page)], weave_dir, env)
        print(f"lit weave of a {WEAVE_LINES}-line diff, {WEAVE_STEPS} steps: {seconds:.2f} s, "
              f"page {page.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
