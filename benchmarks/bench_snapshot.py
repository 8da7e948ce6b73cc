"""What a turn's snapshot costs when nothing changed (most turns: the agent read, searched, ran the
tests), and when one file did, on repositories of real files, against the ways it could be done.

    python benchmarks/bench_snapshot.py            # about 20 s; prints a table

Two repositories made of real source files: ~20 (lit's own git and proxy packages) and ~5,000
(Python's standard library, then the installed packages), committed once, the files older than
the index (as in a working session; files as new as the index are "racily clean" to git).
Each round runs every way once, in a rotating order, so that load on a shared machine falls on all:

    before      what lit ran for every tool-result turn until issue 16: git add -A, git write-tree,
                git log -1 of the chain's tip
    lit, watched      lit.git.snapshot.take with the recorder's Chain: the kernel (inotify) says
                whether anything changed since the last git add; nothing changed, no git at all
    lit, not watched  the same where inotify is missing (not Linux, too many directories): git
                add -A; write-tree only when add changed the private index (its checksum); the
                tip read from its ref file
    add only    git add -A alone: the floor of any way that asks git
    untracked   git add -A with core.untrackedCache on the private index
    stat        a fingerprint in Python instead of git: lstat of every file the private index lists
                and of the directories that hold them (what it would cost; lit does not do it)

and, for a turn that edited one file and for one that made a new file (watched: lit writes the blob,
the trees above it, the commit and the ref itself, lit.git.treeedit; a new file is first put to the
`git check-ignore` lit keeps running), the part the answer's end waits for (the tree) and the whole
snapshot (the commit and the ref after it).
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lit.git import snapshot
from lit.git.run import git_dir

ROUNDS = 30
SMALL_FROM = Path(snapshot.__file__).resolve().parent.parent  # lit's own source: git/ and proxy/


def sh(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}).stdout


def real_files(count: int) -> list[tuple[Path, Path]]:
    """(source, path in the repository) for up to `count` real files."""
    if count <= 50:
        return [(p, p.relative_to(SMALL_FROM)) for d in ("git", "proxy") for p in sorted((SMALL_FROM / d).glob("*.py"))]
    roots = [Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"])]
    out: list[tuple[Path, Path]] = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in ("__pycache__", "site-packages")
                                 and not d.endswith((".dist-info", ".egg-info")))
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if path.is_file() and not path.is_symlink() and not name.endswith((".pyc", ".so")):
                    out.append((path, Path(root.name) / path.relative_to(root)))
                    if len(out) == count:
                        return out
    return out


def make_repo(path: Path, count: int) -> int:
    files = real_files(count)
    for src, rel in files:
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, path / rel)
    old = time.time() - 3600
    for _, rel in files:
        os.utime(path / rel, (old, old))
    for args in (["init", "-q"], ["config", "user.email", "b@example.com"], ["config", "user.name", "Bench"],
                 ["add", "-A"], ["commit", "-q", "-m", "base"]):
        sh(["git", *args], path)
    return len(files)


def stat_fingerprint(repo: Path, index: Path) -> Callable[[], int]:
    """lstat of every path the index lists and of every directory holding one: what such a check
    costs. (It would miss a new file in a directory that holds only ignored files, or in an empty
    directory, and a change to an excludes file: one reason lit does not use it.)"""
    paths = sh(["git", "ls-files", "-z"], repo, {"GIT_INDEX_FILE": str(index)}).split("\0")[:-1]
    dirs = {os.path.dirname(p) for p in paths}
    for d in list(dirs):
        while d:
            d = os.path.dirname(d)
            dirs.add(d)
    full = [str(repo / p) for p in paths] + [str(repo / d) for d in sorted(dirs)]

    def fingerprint() -> int:
        h = 0
        for p in full:
            try:
                s = os.lstat(p)
                h = hash((h, s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns))
            except OSError:
                h = hash((h, None))
        return h

    return fingerprint


def measure(ways: dict[str, Callable[[], object]]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in ways}
    names = list(ways)
    for r in range(ROUNDS):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            ways[name]()
            times[name].append((time.perf_counter() - t0) * 1000)
    return times


def bench(repo: Path, label: str) -> list[str]:
    session = "bench" + label.split()[0]
    chain = snapshot.Chain(repo, session)
    snapshot.take(repo, session, reason="start", chain=chain)
    watched_session = session + "w"
    watched = snapshot.Chain(repo, watched_session, watched=True)  # the recorder's, on Linux
    snapshot.take(repo, watched_session, reason="start", chain=watched)
    assert watched.watch is not None, "no inotify here: the watched way cannot be measured"
    index = git_dir(repo) / "lit" / f"index-{session}"
    ref = snapshot.snapshot_ref(session)
    env = {"GIT_INDEX_FILE": str(index)}
    untracked = index.with_name(f"untracked-{session}")
    shutil.copyfile(index, untracked)
    uenv = {"GIT_INDEX_FILE": str(untracked)}
    sh(["git", "-c", "core.untrackedCache=true", "update-index", "--untracked-cache"], repo, uenv)
    excludes = f"core.excludesFile={git_dir(repo) / 'lit' / f'excludes-{session}'}"
    time.sleep(1.1)  # the index written in a later second than any file: no racily clean entries
    snapshot.take(repo, session, reason="turn", chain=chain)
    sh(["git", "-c", excludes, "-c", "core.untrackedCache=true", "add", "-A", "--", ":/"], repo, uenv)

    def before() -> None:
        sh(["git", "-c", excludes, "add", "-A", "--", ":/"], repo, env)
        sh(["git", "write-tree"], repo, env)
        sh(["git", "log", "-1", "--format=%H %T", ref, "--"], repo)

    ways: dict[str, Callable[[], object]] = {
        "before": before,
        "lit, watched": lambda: snapshot.take(repo, watched_session, reason="turn", chain=watched),
        "lit, not watched": lambda: snapshot.take(repo, session, reason="turn", chain=chain),
        "add only": lambda: sh(["git", "-c", excludes, "add", "-A", "--", ":/"], repo, env),
        "untracked": lambda: sh(["git", "-c", excludes, "-c", "core.untrackedCache=true", "add", "-A", "--", ":/"],
                                repo, uenv),
        "stat": stat_fingerprint(repo, index),
    }
    unchanged = measure(ways)
    assert snapshot.take(repo, session, reason="turn", chain=chain)[2] is False  # nothing changed, no commit

    target = next(p for p in sorted(repo.rglob("*.py")) if ".git" not in p.parts)
    counter = [0]
    gate: list[float] = []

    def changed() -> None:
        counter[0] += 1
        with open(target, "a") as f:
            f.write(f"# turn {counter[0]}\n")
        t0 = time.perf_counter()
        tree = watched.write_tree(lambda: gate.append((time.perf_counter() - t0) * 1000))
        snapshot.take(repo, watched_session, reason="turn", tree=tree, chain=watched)

    whole = measure({"changed": changed})["changed"]
    made_gate = len(gate)

    def made() -> None:
        counter[0] += 1
        (target.parent / f"made_{counter[0]}.py").write_text(f"# made in turn {counter[0]}\n")
        t0 = time.perf_counter()
        tree = watched.write_tree(lambda: gate.append((time.perf_counter() - t0) * 1000))
        snapshot.take(repo, watched_session, reason="turn", tree=tree, chain=watched)

    whole_made = measure({"made": made})["made"]

    def through_git() -> None:  # the same edit where inotify is missing: git add, write-tree, commit-tree, update-ref
        counter[0] += 1
        with open(target, "a") as f:
            f.write(f"# turn {counter[0]}\n")
        snapshot.take(repo, session, reason="turn", chain=chain)

    whole_git = measure({"git": through_git})["git"]
    untracked.unlink()
    watched.close()
    return [row(label, name, values) for name, values in unchanged.items()] + [
        row(label, "edited: the answer's end waits", gate[:made_gate]),
        row(label, "edited: the whole snapshot", whole),
        row(label, "new file: the answer's end waits", gate[made_gate:]),
        row(label, "new file: the whole snapshot", whole_made),
        row(label, "edited, not watched: whole snapshot", whole_git)]


def row(label: str, name: str, values: list[float]) -> str:
    values = sorted(values)
    return f"{label:<13}{name:<34}{statistics.median(values):>9.2f}{values[int(len(values) * 0.9)]:>9.2f}"


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="lit-bench-snapshot-") as tmp:
        lines = []
        for count in (20, 5000):
            repo = Path(tmp) / f"r{count}"
            repo.mkdir()
            n = make_repo(repo, count)
            lines += bench(repo, f"{n} files")
        git_version = sh(["git", "--version"], Path(tmp)).strip()
    print(f"lit snapshot benchmark, {time.strftime('%Y-%m-%d')}, {platform.machine()} {platform.system()}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, {git_version}, Python {platform.python_version()}")
    print(f"A tool-result turn's snapshot, ms over {ROUNDS} rounds (median, p90); unchanged unless said\n")
    print(f"{'repository':<13}{'way':<34}{'median':>9}{'p90':>9}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
