"""The redactor on real text: speed, and what it touches in code that holds no secret.

    python benchmarks/bench_redact.py

1. MB/s over the Python standard library's modules (code), a Messages API request body made of
   them (JSON, as the recorder sees it) and the README fifty times (prose), best of 3; beside
   `str.lower()` of the same text, the floor of any case-insensitive scan.
2. Its start-up: importing lit.redact, and compiling its rules on first use.
3. False positives: the lines changed in the standard library's modules and in the installed
   packages' sources (site-packages of this Python), each listed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from lit.redact import Redactor

ROOT = Path(__file__).resolve().parent.parent


def sources(root: Path, *, tests: bool) -> list[tuple[str, str]]:
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if not tests and (rel.startswith(("test/", "idlelib/idle_test/")) or "/tests/" in rel):
            continue
        if "site-packages/" in rel:
            continue
        out.append((rel, path.read_text(encoding="utf-8", errors="replace")))
    return out


def rate(r: Redactor, texts: list[str]) -> float:
    size = sum(map(len, texts)) / 1e6
    best = min(_time(lambda: [r.text(t) for t in texts]) for _ in range(3))
    return size / best


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def changed_lines(r: Redactor, files: list[tuple[str, str]]) -> list[str]:
    hits = []
    for rel, text in files:
        out = r.text(text)
        if out != text:
            hits += [f"{rel}: {a.strip()[:100]}" for a, b in zip(text.splitlines(), out.splitlines(), strict=False)
                     if a != b]
    return hits


def main() -> None:
    start = subprocess.run([sys.executable, "-c", "import time; t = time.perf_counter(); import lit.redact as r; "
                            "a = time.perf_counter(); r.redact_text('x'); b = time.perf_counter(); "
                            "print(f'{(a - t) * 1000:.0f} {(b - a) * 1000:.0f}')"],
                           capture_output=True, text=True, check=True).stdout.split()
    print(f"import lit.redact: {start[0]} ms; rules compiled on first use: {start[1]} ms")
    r = Redactor()
    stdlib = sources(Path(sysconfig.get_paths()["stdlib"]), tests=False)
    code = [t for _, t in stdlib]
    request = [json.dumps({"model": "m", "messages": [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"t{i}", "content": t}]}
        for i, t in enumerate(code[:200])]})]
    prose = [(ROOT / "README.md").read_text() * 50]
    print(f"{'text':28} {'MB':>6} {'redact MB/s':>12} {'str.lower MB/s':>15}")
    for label, texts in (("stdlib modules (code)", code), ("a request body (JSON)", request),
                         ("README x50 (prose)", prose)):
        size = sum(map(len, texts)) / 1e6
        lower = size / min(_time(lambda texts=texts: [t.lower() for t in texts]) for _ in range(3))
        print(f"{label:28} {size:6.1f} {rate(r, texts):12.1f} {lower:15.0f}")
    lines = sum(t.count("\n") for t in code)
    hits = changed_lines(r, stdlib)
    print(f"\nstdlib modules: {len(hits)} changed lines of {lines:,}")
    for h in hits:
        print("  " + h)
    site = Path(sysconfig.get_paths()["purelib"])
    packages = sources(site, tests=True) if site.exists() else []
    lines = sum(t.count("\n") for _, t in packages)
    hits = changed_lines(r, packages)
    print(f"installed packages ({site.name}): {len(hits)} changed lines of {lines:,}")
    for h in hits:
        print("  " + h)


if __name__ == "__main__":
    main()
