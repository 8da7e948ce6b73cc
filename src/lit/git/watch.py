"""Whether anything in a working tree changed since the last look, as the kernel saw it (Linux's
inotify), so that a turn in which the agent changed nothing (it read, searched, ran the tests)
costs no `git add -A`: on 5,000 files that is 12 ms of git on every tool-result turn, on 100,000
files a quarter of a second.

Exact where it answers: the kernel queues an event in the very call that changes a file, so a
change made before `changes()` is in the queue `changes()` reads. A look that cannot be sure says
"changed" (and git reads the tree): an event queue that overflowed, a new directory (watched from
then on), a `.gitignore` that changed (the watch is rebuilt: what is ignored may be no longer).
Not watched: the repository's git directory (lit's private index lives there; git's own state is
not the working tree) but its `info/` (exclude, attributes: a change there rebuilds the watch),
and directories an ignore rule names (`__pycache__`, `node_modules`: a test run writes there).
Blind: a change to a global excludes file alone, writes through a shared memory map or through
another hard link to a file, and other machines writing to a network file system. A repository
with submodules is not watched (a commit inside one changes the tree, and no file of the working
tree says so).

Where inotify is missing (not Linux) or the tree has more directories than `MAX_DIRS` or the
user's inotify watches allow, `watch()` gives None and every turn asks git, as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
import sys
import threading

from lit.git.run import GitError, common_dir, run

MAX_DIRS = 20_000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name
IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF = 0x400, 0x800
IN_Q_OVERFLOW, IN_IGNORED, IN_ONLYDIR, IN_DONT_FOLLOW, IN_ISDIR = 0x4000, 0x8000, 0x01000000, 0x02000000, 0x40000000
CHANGES = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
           | IN_DELETE_SELF | IN_MOVE_SELF)


class Unwatchable(Exception):
    """The tree cannot be watched whole (too many directories, no inotify watches left)."""


class TreeWatch:
    """inotify watches on every directory of a working tree but the git directory and ignored ones."""

    def __init__(self, root: str | os.PathLike, libc: ctypes.CDLL, env: dict[str, str] | None = None):
        self.root = os.path.realpath(root)
        self._libc, self._env = libc, dict(env or {})
        self._lock = threading.Lock()
        self._fd = -1
        self._info_wd = -1
        self._dirs: dict[int, str] = {}
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _build(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._dirs = {}
        self._fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            raise Unwatchable(os.strerror(ctypes.get_errno()))
        # The repository's own ignore and attribute files (info/exclude, info/attributes) change
        # what git reads into the tree: any event there rebuilds the watch.
        self._info_wd = self._libc.inotify_add_watch(self._fd, os.fsencode(common_dir(self.root) / "info"),
                                                     CHANGES | IN_ONLYDIR)
        self._add_trees([self.root])

    def _ignored(self, paths: list[str]) -> set[str]:
        """Which of these directories an ignore rule matches and that hold no file the session's
        index tracks: nothing written under them can change the snapshot. (Not `ls-files
        --directory`: it calls a directory ignored when all it holds now is ignored, and a file
        written there next may not be.)"""
        if not paths:
            return set()
        rel = [os.path.relpath(p, self.root) for p in paths]
        proc = run(["check-ignore", "-z", "--stdin"], self.root, env=self._env,
                   input="".join(r + "/\0" for r in rel))
        if proc.returncode not in (0, 1):  # git could not say: everything is watched, to be safe
            return set()
        matched = {r.rstrip("/") for r in proc.stdout.split("\0") if r}
        if not matched:
            return set()
        tracked = run(["ls-files", "-z", "--", *sorted(matched)], self.root,
                      env={**self._env, "GIT_LITERAL_PATHSPECS": "1"})
        if tracked.returncode != 0:
            return set()
        holding = {os.path.dirname(t) for t in tracked.stdout.split("\0") if t}
        return {os.path.join(self.root, m) for m in matched
                if not any(h == m or h.startswith(m + "/") for h in holding)}

    def _add_trees(self, tops: list[str]) -> None:
        """Watch each directory under `tops` but the ignored ones, a level at a time."""
        ignored = self._ignored([t for t in tops if t != self.root])
        level = [t for t in tops if t not in ignored]
        while level:
            below: list[str] = []
            for path in level:
                wd = self._libc.inotify_add_watch(self._fd, os.fsencode(path), CHANGES | IN_ONLYDIR | IN_DONT_FOLLOW)
                if wd < 0:
                    if ctypes.get_errno() in (28, 24):  # ENOSPC, EMFILE: the user's watches are used up
                        raise Unwatchable("no inotify watches left")
                    continue  # gone already, or not a directory: its parent's event said so
                self._dirs[wd] = path
                if len(self._dirs) > MAX_DIRS:
                    raise Unwatchable(f"more than {MAX_DIRS} directories")
                try:
                    with os.scandir(path) as entries:
                        below += [e.path for e in entries if e.is_dir(follow_symlinks=False)
                                  and not (path == self.root and e.name == ".git")]
                except OSError:
                    continue
            ignored = self._ignored(below)
            level = [p for p in below if p not in ignored]

    def changes(self) -> set[str] | None:
        """The files (paths from the root) created, written, removed or renamed since the last look
        (or since the watch began): empty when nothing changed, None when what changed is more
        than files whose names the kernel gave (a directory made or gone, a rule's file, an
        overflowed queue) or the watch is lost."""
        with self._lock:
            if self._fd < 0:
                return None
            try:
                return self._drain()
            except (OSError, Unwatchable, GitError):
                self._close()
                return None

    def _drain(self) -> set[str] | None:
        files: set[str] | None = set()
        rebuild, new_dirs = False, []
        while True:
            try:
                data = os.read(self._fd, 256 * 1024)
            except BlockingIOError:
                break
            at = 0
            while at < len(data):
                wd, mask, _, length = _EVENT.unpack_from(data, at)
                name = data[at + _EVENT.size:at + _EVENT.size + length].rstrip(b"\0")
                at += _EVENT.size + length
                if mask & IN_IGNORED:
                    self._dirs.pop(wd, None)
                    continue
                parent = self._dirs.get(wd)
                if name == b".gitmodules" and parent == self.root:
                    raise Unwatchable("submodules: a commit inside one changes the tree and no file here")
                if mask & IN_Q_OVERFLOW or name == b".gitignore" or wd == self._info_wd:
                    rebuild = True
                elif parent == self.root and name == b".git":
                    continue  # the repository's own state, not the working tree
                elif mask & IN_ISDIR and mask & (IN_CREATE | IN_MOVED_TO) and parent is not None:
                    new_dirs.append(os.path.join(parent, os.fsdecode(name)))
                if files is not None and name and parent is not None and not mask & (IN_ISDIR | IN_Q_OVERFLOW):
                    files.add(os.path.relpath(os.path.join(parent, os.fsdecode(name)), self.root))
                else:
                    files = None
        if rebuild:
            self._build()
            return None
        if new_dirs:
            self._add_trees(new_dirs)
        return files

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def watch(root: str | os.PathLike, env: dict[str, str] | None = None) -> TreeWatch | None:
    """A watch on the working tree at `root` (`env`: for git, the session's GIT_INDEX_FILE), or None
    where it cannot be had (see the module's doc)."""
    if not sys.platform.startswith("linux") or os.environ.get("LIT_NO_WATCH"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.inotify_init1, libc.inotify_add_watch  # noqa: B018 - present, or AttributeError
        top = run(["rev-parse", "--show-toplevel"], root).stdout.strip()
        if not top or os.path.lexists(os.path.join(top, ".gitmodules")):
            return None  # submodules: a commit inside one changes the tree, and no file here says so
        return TreeWatch(top, libc, env)
    except (OSError, AttributeError, Unwatchable, GitError):
        return None
