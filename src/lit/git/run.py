"""Running git: one small helper, so every call has the same error handling and environment."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from lit.errors import LitError

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


class GitError(LitError):
    pass


def git(args: Sequence[str], cwd: str | os.PathLike, *, env: Mapping[str, str] | None = None,
        input: str | bytes | None = None, check: bool = True, text: bool = True) -> str:
    """Run git; its stdout (stripped of the final newline). GitError with git's own words."""
    full_env = None
    if env is not None:
        full_env = {**os.environ, **env}
    proc = subprocess.run(["git", *args], cwd=cwd, env=full_env, input=input, capture_output=True, text=text)
    if check and proc.returncode != 0:
        err = proc.stderr if text else proc.stderr.decode("utf-8", "replace")
        raise GitError(f"git {args[0]} failed: {err.strip().splitlines()[-1] if err.strip() else proc.returncode}")
    out = proc.stdout
    if text and out.endswith("\n"):
        out = out[:-1]
    return out


def repo_root(cwd: str | os.PathLike) -> Path | None:
    try:
        return Path(git(["rev-parse", "--show-toplevel"], cwd))
    except (GitError, OSError):
        return None


def git_dir(cwd: str | os.PathLike) -> Path:
    """This worktree's own git dir (a linked worktree has its own, under the common one)."""
    return Path(git(["rev-parse", "--absolute-git-dir"], cwd))


def rev(cwd: str | os.PathLike, name: str) -> str | None:
    out = git(["rev-parse", "--verify", "-q", name + "^{commit}"], cwd, check=False)
    return out or None
