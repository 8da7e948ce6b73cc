"""A snapshot's tree edited in place: when the kernel names the files a turn changed (lit.git.watch),
lit writes their blobs, the trees above them and the chain's commit itself, as git would, and runs
no git process. A turn in which the agent edited a file cost four (`add -A`, `write-tree`,
`commit-tree`, `update-ref`: 8-10 ms of CPU on the machine the agent and its relay share, while
the answer streams); now it costs one file's hash and a few small objects.

Only where lit writes exactly what `git add -A && git write-tree` would (tests/test_git_snapshot.py
compares each tree with git's, over random file work too); anything else is left to git:
- content that git would filter or convert: any `.gitattributes` in the tree, `info/attributes`,
  a global attributes file, core.autocrlf, core.attributesFile, core.fileMode false;
- a repository whose objects are not SHA-1, kept elsewhere (GIT_OBJECT_DIRECTORY) or shared by a
  group (core.sharedRepository), whose paths compare without case (core.ignoreCase), or a sparse
  checkout;
- a change that is not a regular file's (a new directory, a symlink, a submodule, `.git*` files);
- a new file: `git check-ignore`, kept running for the purpose, says whether the snapshot takes it
  (.gitignore, the secret stores), then lit writes it.
"""

from __future__ import annotations

import hashlib
import os
import select
import stat
import time
import zlib
from pathlib import Path

from lit.git.run import IDENTITY, coprocess, run

TREE_MODE, FILE_MODE, EXEC_MODE = b"40000", b"100644", b"100755"
MAX_FILE = 64 * 1024 * 1024  # bigger files are git's to read (it streams them)


class Objects:
    """Loose objects written into a repository's object store, the way git writes them."""

    def __init__(self, objects_dir: Path):
        self.dir = objects_dir

    def write(self, kind: bytes, data: bytes) -> bytes:
        """The object's id (20 bytes); written unless the store has it already."""
        header = b"%s %d\0" % (kind, len(data))
        digest = hashlib.sha1(header)  # noqa: S324 - git's object ids, not a security use
        digest.update(data)
        oid = digest.hexdigest()
        folder = self.dir / oid[:2]
        path = folder / oid[2:]
        if not path.exists():
            folder.mkdir(exist_ok=True)
            tmp = folder / f"tmp_obj_lit_{os.getpid()}_{time.monotonic_ns()}"
            # git's own level for loose objects (core.looseCompression's default): they are packed later.
            tmp.write_bytes(zlib.compress(header + data, 1))
            os.chmod(tmp, 0o444)
            try:
                os.link(tmp, path)  # never over an object another process wrote meanwhile
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return digest.digest()

    def commit(self, tree: str, parent: str, message: str) -> str:
        """A commit by lit's own identity (as `git commit-tree` with lit.git.run.IDENTITY)."""
        offset = time.localtime().tm_gmtoff // 60
        when = f"{int(time.time())} {'-' if offset < 0 else '+'}{abs(offset) // 60:02d}{abs(offset) % 60:02d}"
        author = f"{IDENTITY['GIT_AUTHOR_NAME']} <{IDENTITY['GIT_AUTHOR_EMAIL']}> {when}"
        committer = f"{IDENTITY['GIT_COMMITTER_NAME']} <{IDENTITY['GIT_COMMITTER_EMAIL']}> {when}"
        text = f"tree {tree}\nparent {parent}\nauthor {author}\ncommitter {committer}\n\n{message}"
        return self.write(b"commit", text.encode()).hex()


def swap_ref(common_dir: Path, ref: str, new: str, old: str) -> bool | None:
    """Move a loose ref from `old` to `new` under git's own lock (`<ref>.lock`, created exclusively,
    then renamed over the ref): True when moved, False when another process holds it or moved it
    first, None when this is git's to do (a packed ref, a reflog to keep)."""
    path = common_dir / ref
    if (common_dir / "logs" / ref).exists():
        return None
    lock = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return False
    except OSError:
        return None
    moved = False
    try:
        try:
            current = path.read_text().strip()
        except FileNotFoundError:
            return None
        if current != old:
            return False
        os.write(fd, f"{new}\n".encode())
        os.close(fd)
        fd = -1
        os.rename(lock, path)
        moved = True
        return True
    finally:
        if fd >= 0:
            os.close(fd)
        if not moved:
            lock.unlink(missing_ok=True)


class IgnoreCheck:
    """One `git check-ignore --stdin` kept running for a tree's new files, so that a turn that made
    a file asks git without starting it. Its rules are the ones it read when it started: it lives
    as long as the TreeEdit it serves, which ends when a rule's file changes (the watch says so)."""

    MAX = 256  # more new files than this in a turn: one `git add -A` reads them all
    WAIT = 2.0

    def __init__(self, repo_root: str, env: dict[str, str], excludes: Path):
        self.proc = coprocess(["-c", f"core.excludesFile={excludes}", "check-ignore", "--no-index", "--stdin",
                               "-z", "--verbose", "--non-matching"], repo_root, env={**env, "GIT_FLUSH": "1"})
        self._out = b""

    def ignored(self, paths: list[bytes]) -> set[bytes] | None:
        """Which of these paths the rules leave out; None when git could not say in time."""
        if len(paths) > self.MAX or self.proc.poll() is not None:
            return None
        found: set[bytes] = set()
        try:
            for path in paths:  # one at a time: git answers each before it reads the next
                self.proc.stdin.write(path + b"\0")  # type: ignore[union-attr]
                self.proc.stdin.flush()  # type: ignore[union-attr]
                record = self._record()
                if record is None:
                    return None
                pattern = record[2]
                if pattern and not pattern.startswith(b"!"):  # the last rule to match decides
                    found.add(path)
        except OSError:
            return None
        return found

    def _record(self) -> list[bytes] | None:
        """One answer: source, line, pattern, path (each ended by NUL)."""
        deadline = time.monotonic() + self.WAIT
        fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        while self._out.count(b"\0") < 4:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            data = os.read(fd, 65536)
            if not data:
                return None
            self._out += data
        *record, self._out = self._out.split(b"\0", 4)
        return record

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


def editable(repo_root: str, common_dir: Path, env: dict[str, str]) -> bool:
    """Whether nothing in this repository's configuration makes git's blobs differ from the files'
    bytes, or its trees from what lit would write (see the module's doc)."""
    if os.environ.get("GIT_OBJECT_DIRECTORY"):
        return False  # objects kept elsewhere: git knows where
    proc = run(["config", "-z", "--list"], repo_root, env=env)
    if proc.returncode != 0:
        return False
    config: dict[str, str] = {}
    for item in proc.stdout.split("\0"):
        key, _, value = item.partition("\n")
        config[key.lower()] = value.lower()
    if (config.get("core.autocrlf", "false") not in ("false", "no", "off", "0")
            or "core.attributesfile" in config or "core.sharedrepository" in config
            or config.get("extensions.objectformat", "sha1") != "sha1"
            or config.get("core.ignorecase", "false") in ("true", "yes", "on", "1")
            or config.get("core.filemode", "true") in ("false", "no", "off", "0")
            or config.get("core.sparsecheckout", "false") in ("true", "yes", "on", "1")):
        return False
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    for attributes in (Path(xdg) / "git" / "attributes", common_dir / "info" / "attributes"):
        try:
            if attributes.read_bytes().strip():
                return False
        except OSError:
            pass
    return True


class TreeEdit:
    """A tree object held directory by directory (each one's entries: name -> (mode, id)), so that
    files changed in place write only their blobs and the trees above them."""

    def __init__(self, repo_root: str, tree: str, dirs: dict[bytes, dict[bytes, tuple[bytes, bytes]]],
                 objects: Objects, env: dict[str, str]):
        self.repo_root, self.tree, self.dirs = repo_root, tree, dirs
        self._root = os.fsencode(repo_root)  # joined with each changed path, as bytes
        self.objects, self.env = objects, env
        self._ignores: IgnoreCheck | None = None
        # The last apply's entries as `git update-index -z --index-info` takes them (mode 0: removed).
        self.index_info = b""

    @classmethod
    def read(cls, repo_root: str, tree: str, objects: Objects, env: dict[str, str]) -> TreeEdit | None:
        """The tree `tree` as git lists it; None when a `.gitattributes` in it (or an entry lit does
        not write: a symlink, a submodule) leaves it to git."""
        proc = run(["ls-tree", "-r", "-t", "-z", "--full-tree", tree], repo_root, text=False)
        if proc.returncode != 0:
            return None
        dirs: dict[bytes, dict[bytes, tuple[bytes, bytes]]] = {b"": {}}
        for item in proc.stdout.split(b"\0"):
            if not item:
                continue
            meta, _, path = item.partition(b"\t")
            mode, kind, oid = meta.split(b" ")
            parent, _, name = path.rpartition(b"/")
            if name == b".gitattributes" or mode not in (TREE_MODE, FILE_MODE, EXEC_MODE) and kind != b"tree":
                return None
            if kind == b"tree":
                mode = TREE_MODE  # ls-tree says 040000; a tree object says 40000
                dirs[path] = {}
            dirs[parent][name] = (mode, bytes.fromhex(oid.decode()))
        return cls(repo_root, tree, dirs, objects, env)

    def apply(self, changed: set[str], excludes: Path) -> str | None:
        """The tree with the files at these paths (relative to the root) as they are now: written
        in place, its id returned; None when one of them is git's to read (the tree is then left
        as it was, and this edit should not be used again)."""
        files: dict[bytes, tuple[bytes, bytes] | None] = {}
        new: list[bytes] = []
        for rel in sorted(changed):
            path = os.fsencode(rel)
            parent, _, name = path.rpartition(b"/")
            if parent not in self.dirs or name.startswith(b".git"):
                return None  # a new directory, or git's own files (.gitignore, .gitmodules, .gitattributes)
            old = self.dirs[parent].get(name)
            if old is not None and old[0] == TREE_MODE:
                return None
            full = os.path.join(self._root, path)
            try:
                st = os.lstat(full)
            except FileNotFoundError:
                if old is not None:
                    files[path] = None
                continue
            except OSError:
                return None
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE:
                return None
            if old is None:
                new.append(path)
            files[path] = (EXEC_MODE if st.st_mode & stat.S_IXUSR else FILE_MODE, full)
        if new and not self._keep_new(new, files, excludes):
            return None
        entries: dict[bytes, tuple[bytes, bytes] | None] = {}
        for path, found in files.items():
            if found is None:
                entries[path] = None
                continue
            try:
                with open(found[1], "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                entries[path] = None
                continue
            except OSError:
                return None
            entries[path] = (found[0], self.objects.write(b"blob", data))
        return self._write(entries)

    def _keep_new(self, new: list[bytes], files: dict, excludes: Path) -> bool:
        """Drop from `files` the new ones that the snapshot leaves out (.gitignore, the secret
        stores: what `git add -A` would leave out); False when git could not say. The rules
        alone decide (--no-index): the private index may still list a file lit removed since."""
        if self._ignores is None:
            self._ignores = IgnoreCheck(self.repo_root, self.env, excludes)
        ignored = self._ignores.ignored(new)
        if ignored is None:
            return False
        for path in ignored:
            files.pop(path, None)
        return True

    def close(self) -> None:
        """Stop the ignore check (a process), if one was started."""
        if self._ignores is not None:
            self._ignores.close()
            self._ignores = None

    def _write(self, entries: dict[bytes, tuple[bytes, bytes] | None]) -> str:
        """Set these entries (None: removed), write the trees above them, deepest first."""
        touched: set[bytes] = set()
        info = []
        for path, entry in entries.items():
            parent, _, name = path.rpartition(b"/")
            if entry is None:
                self.dirs[parent].pop(name, None)
                info.append(b"0 %s\t%s\0" % (b"0" * 40, path))
            else:
                self.dirs[parent][name] = entry
                info.append(b"%s %s\t%s\0" % (entry[0], entry[1].hex().encode(), path))
            while True:
                touched.add(parent)
                if not parent:
                    break
                parent = parent.rpartition(b"/")[0]
        self.index_info = b"".join(info)
        for folder in sorted(touched, key=lambda d: -d.count(b"/") - (1 if d else 0)):
            items = self.dirs[folder]
            parent, _, name = folder.rpartition(b"/")
            if not items and folder:
                del self.dirs[folder]  # git keeps no empty tree
                self.dirs[parent].pop(name, None)
                continue
            oid = self.objects.write(b"tree", _tree_bytes(items))
            if folder:
                self.dirs[parent][name] = (TREE_MODE, oid)
            else:
                self.tree = oid.hex()
        return self.tree


def _tree_bytes(items: dict[bytes, tuple[bytes, bytes]]) -> bytes:
    """A tree object's content: its entries in git's order (a tree's name sorts as if it ended in /)."""
    order = sorted(items, key=lambda n: n + b"/" if items[n][0] == TREE_MODE else n)
    return b"".join(b"%s %s\0%s" % (items[n][0], n, items[n][1]) for n in order)
