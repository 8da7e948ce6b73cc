"""Running git: the one module that starts a git process, so every call has the same argv rules,
error handling and environment. Imports nothing of lit's but its errors: `lit blame` imports it
before anything else and its start-up time counts against git blame's."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from lit.errors import LitError

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
# Who lit's own commits (snapshots, the notes ref's start) are by: never the user, who may have no
# identity configured.
IDENTITY = {"GIT_AUTHOR_NAME": "lit", "GIT_AUTHOR_EMAIL": "lit@localhost",
            "GIT_COMMITTER_NAME": "lit", "GIT_COMMITTER_EMAIL": "lit@localhost"}
TRAILER = "Lit-Thread"  # the commit trailer that names a commit's thread (lit.git.notes reads and writes it)
NOT_INSTALLED = "git is not installed (lit needs git on PATH)"


class GitError(LitError):
    pass


def _env(env: Mapping[str, str] | None) -> dict[str, str] | None:
    return None if env is None else {**os.environ, **env}


def run(args: Sequence[str], cwd: str | os.PathLike | None = None, *, env: Mapping[str, str] | None = None,
        input: str | bytes | None = None, text: bool = True, timeout: float | None = None
        ) -> subprocess.CompletedProcess:
    """Run git and return what it did, whatever its exit code (the caller reads returncode).
    GitError only when git cannot run at all (not installed, no such directory, timed out)."""
    try:
        return subprocess.run(["git", *args], cwd=cwd, env=_env(env), input=input, capture_output=True,
                              text=text, errors="replace" if text else None, timeout=timeout)
    except FileNotFoundError as e:
        if cwd is not None and not Path(cwd).is_dir():
            raise GitError(f"no such directory: {cwd}") from e
        raise GitError(NOT_INSTALLED) from e
    except NotADirectoryError as e:
        raise GitError(f"not a directory: {cwd}") from e
    except subprocess.TimeoutExpired as e:
        raise GitError(f"git {args[0]} took more than {timeout:g} s") from e


def _failure(args: Sequence[str], stderr: str | bytes, code: int) -> GitError:
    err = stderr if isinstance(stderr, str) else stderr.decode("utf-8", "replace")
    lines = err.strip().splitlines()
    return GitError(f"git {args[0]} failed: {lines[-1] if lines else code}")


def git(args: Sequence[str], cwd: str | os.PathLike | None = None, *, env: Mapping[str, str] | None = None,
        input: str | bytes | None = None, check: bool = True, text: bool = True,
        timeout: float | None = None) -> str | bytes:
    """Run git; its stdout (text: stripped of the final newline; bytes as git wrote them).
    GitError with git's own last line when it fails and `check`."""
    proc = run(args, cwd, env=env, input=input, text=text, timeout=timeout)
    if check and proc.returncode != 0:
        raise _failure(args, proc.stderr, proc.returncode)
    out = proc.stdout
    if text and out.endswith("\n"):
        out = out[:-1]
    return out


def blame_args(path: str, *, line_range: str | None = None, rev: str | None = None,
               moves: bool = False, copies: bool = False) -> list[str]:
    """The one git blame call `lit blame` makes (prefetch.py may start it before the CLI loads)."""
    args = ["blame", "--porcelain", *(["-M"] if moves else []), *(["-C"] if copies else [])]
    if line_range:
        args += ["-L", line_range]
    if rev:
        args.append(rev)
    return [*args, "--", path]


def start(args: Sequence[str], cwd: str | os.PathLike | None = None) -> subprocess.Popen:
    """Start git without waiting for it (stdout and stderr as bytes); `finish` collects it. Lets a
    caller do other work while git runs (lit blame lists the notes meanwhile)."""
    try:
        return subprocess.Popen(["git", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError as e:
        raise GitError(NOT_INSTALLED) from e


def coprocess(args: Sequence[str], cwd: str | os.PathLike | None = None, *,
              env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start git to be talked to (its stdin and stdout are pipes, its stderr is dropped): a
    `--stdin` command kept running answers each question without a process start."""
    try:
        return subprocess.Popen(["git", *args], cwd=cwd, env=_env(env), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except FileNotFoundError as e:
        raise GitError(NOT_INSTALLED) from e


def finish(proc: subprocess.Popen, args: Sequence[str]) -> bytes:
    """The stdout of a process from `start`; GitError with git's own words if it failed."""
    out, err = proc.communicate()
    if proc.returncode:
        raise _failure(args, err, proc.returncode)
    return out


def stop(proc: subprocess.Popen) -> None:
    """Stop a process from `start` that is no longer wanted, and reap it."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


def cat_file_batch(objects: list[str], cwd: str | os.PathLike | None = None) -> dict[str, bytes]:
    """The contents of many objects (`<commit>:<path>`, blob ids) in one `git cat-file --batch`
    call; an object git does not have is absent."""
    if not objects:
        return {}
    out = git(["cat-file", "--batch"], cwd, input=("\n".join(objects) + "\n").encode(), text=False)
    result: dict[str, bytes] = {}
    pos = 0
    for name in objects:
        nl = out.index(b"\n", pos)
        header = out[pos:nl]
        pos = nl + 1
        # "<name> missing" names the object as asked, spaces and all; a found one is "<oid> <type> <size>"
        if header.endswith((b" missing", b" ambiguous")) or len(header.split()) != 3:
            continue
        size = int(header.split()[2])
        result[name] = out[pos:pos + size]
        pos += size + 1  # the content is followed by a newline
    return result


_C_ESCAPES = {ord("a"): 7, ord("b"): 8, ord("t"): 9, ord("n"): 10, ord("v"): 11, ord("f"): 12, ord("r"): 13,
              ord('"'): 34, ord("\\"): 92}


def unquote(path: str) -> str:
    """A path as git prints it: C-quoted ("a\\tb", "caf\\303\\251") when it holds unusual bytes."""
    if len(path) < 2 or not (path.startswith('"') and path.endswith('"')):
        return path
    raw = path[1:-1].encode("utf-8", "surrogateescape")
    out = bytearray()
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == 92 and i + 1 < len(raw):  # a backslash
            nxt = raw[i + 1]
            octal = raw[i + 1:i + 4]
            if len(octal) == 3 and all(48 <= b <= 55 for b in octal):
                out.append(int(octal, 8) & 0xFF)
                i += 4
                continue
            out.append(_C_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return out.decode("utf-8", "replace")


def repo_root(cwd: str | os.PathLike | None) -> Path | None:
    try:
        return Path(git(["rev-parse", "--show-toplevel"], cwd))
    except GitError:
        return None


def git_dir(cwd: str | os.PathLike) -> Path:
    """This worktree's own git dir (a linked worktree has its own, under the common one)."""
    return Path(git(["rev-parse", "--absolute-git-dir"], cwd))


def common_dir(cwd: str | os.PathLike) -> Path:
    """The git dir every worktree shares (refs, hooks): the one git_dir for a main worktree."""
    common = Path(git(["rev-parse", "--git-common-dir"], cwd))
    return common if common.is_absolute() else Path(cwd) / common


def rev(cwd: str | os.PathLike | None, name: str) -> str | None:
    """The commit `name` names (a SHA, HEAD, main~2, a tag), or None."""
    if not name or name.startswith("-"):
        return None
    try:
        out = git(["rev-parse", "--verify", "-q", name + "^{commit}"], cwd, check=False)
    except GitError:
        return None
    return out or None


def repo_and_head(cwd: str | os.PathLike) -> tuple[str | None, str | None]:
    """(repository root, HEAD sha) for cwd; (None, None) outside a repository."""
    root = repo_root(cwd)
    if root is None:
        return None, None
    return str(root), rev(cwd, "HEAD")
