"""`lit blame` spends most of its time waiting for `git blame`, and the CLI spends ~100 ms
importing itself before it could ask. So for the common forms (`lit blame FILE`, with any of -M,
-C, --json, --full) git blame is started first thing, before the imports; blame() takes the
running process only if it is the very call it would have made (same arguments, same directory),
and otherwise it is stopped unused. Measured on the benchmark's 3,000-line file: 1.8x git blame's
time without this, 1.4x with it (benchmarks/bench_blame_weave.py)."""

from __future__ import annotations

import atexit
import os
import subprocess

from lit.git.run import GitError, blame_args, stop
from lit.git.run import start as start_git

# Flags of `lit blame` that take no value; any other option and nothing is started early.
SIMPLE_FLAGS = {"-M": "moves", "-C": "copies", "--json": None, "--full": None}

_pending: tuple[list[str], str, subprocess.Popen] | None = None


def start(argv: list[str]) -> None:
    """Called with the command line before the CLI is imported."""
    global _pending
    if len(argv) < 2 or argv[0] != "blame":
        return
    paths = [a for a in argv[1:] if not a.startswith("-")]
    flags = [a for a in argv[1:] if a.startswith("-")]
    if len(paths) != 1 or any(f not in SIMPLE_FLAGS for f in flags):
        return
    args = blame_args(paths[0], moves="-M" in flags, copies="-C" in flags)
    try:
        proc = start_git(args)
    except (GitError, OSError):
        return  # blame() says what is wrong, in its own words
    _pending = (args, os.getcwd(), proc)
    atexit.register(_discard)


def take(args: list[str], cwd: str | os.PathLike | None) -> subprocess.Popen | None:
    """The process started early, if it runs exactly `git args` in `cwd`."""
    global _pending
    if _pending is None:
        return None
    started_args, started_cwd, proc = _pending
    _pending = None
    if started_args == args and os.path.abspath(cwd or os.getcwd()) == started_cwd:
        return proc
    stop(proc)
    return None


def _discard() -> None:
    global _pending
    if _pending is not None:
        stop(_pending[2])
        _pending = None
