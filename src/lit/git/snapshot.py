"""Snapshots: the working tree captured as a git tree and a commit on refs/lit/snapshots/<session>.

A private index file (in this worktree's git dir) is seeded once from the user's index, so each
`git add -A` re-reads only what changed, and the user's index, HEAD, working tree and stash are
never touched. .gitignore is honoured because it is git's own `add` that reads the tree, or git's
own `check-ignore` that says whether a new file is in it: a watched chain (the recorder's) writes a
turn that only changed files itself (lit.git.treeedit), exactly as git would.

The snapshots of a session form a chain (each commit's parent is the previous one); blaming a
commit's tree on top of that chain says which snapshot, so which step, introduced each line.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import sqlite_utils

from lit import store
from lit.git import treeedit
from lit.git.run import IDENTITY, GitError, common_dir, git, git_dir, run
from lit.git.treeedit import Objects, TreeEdit
from lit.git.watch import TreeWatch
from lit.git.watch import watch as watch_tree

SNAPSHOT_REF = "refs/lit/snapshots/{session}"
# Files that hold secrets rather than code, left out of every snapshot even when not ignored (what
# the GitHub gitignore templates and secret scanners name): their content never reaches an object.
SECRET_STORES = (".env", ".env.*", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.ppk",
                 "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_rsa_*", "id_ed25519_*", ".netrc", "_netrc",
                 ".pgpass", ".pypirc", ".git-credentials", ".htpasswd", "*.tfstate", "*.tfstate.*",
                 "*.tfvars", "credentials.json", "service-account*.json", ".dockercfg")
# Templates meant to be committed, which hold no secret.
SECRET_STORE_TEMPLATES = (".env.example", ".env.sample", ".env.template", ".env.dist")
SECRET_STORE_PATTERNS = "".join(f"{p}\n" for p in SECRET_STORES) + "".join(f"!{t}\n" for t in SECRET_STORE_TEMPLATES)

def snapshot_ref(session_id: str) -> str:
    return SNAPSHOT_REF.format(session=session_id)


@functools.lru_cache(maxsize=64)
def _git_dir(repo_root: str) -> Path:
    return git_dir(repo_root)


class SessionFiles(NamedTuple):
    """The files a session's snapshots keep in .git/lit/."""
    index: Path
    excludes: Path
    lock: Path
    pending: Path  # what lit wrote into trees itself and the index does not hold yet (lit.git.treeedit)


def session_files(folder: Path, session_id: str) -> SessionFiles:
    """The session's files in `folder` (the repository's .git/lit)."""
    return SessionFiles(*(folder / f"{kind}-{session_id}" for kind in SessionFiles._fields))


def _files(repo_root: str | os.PathLike, session_id: str) -> SessionFiles:
    """The session's files in this repository's .git/lit."""
    return session_files(_git_dir(str(repo_root)) / "lit", session_id)


def _private_index(repo_root: str | os.PathLike, session_id: str) -> Path:
    gd = _git_dir(str(repo_root))
    index = _files(repo_root, session_id).index
    if not index.exists():
        index.parent.mkdir(parents=True, exist_ok=True)
        user_index = gd / "index"
        if user_index.exists():
            # The user's index carries stat data: add -A then hashes only what changed. Its time is
            # kept too: git trusts an entry's stat only if the file is older than the index, so a
            # copy dated now would hide an edit made in the second the user's index was written.
            shutil.copy2(user_index, index)
            # A secret store the user tracks leaves the private index: from then on it is an
            # untracked file that the excludes below keep out.
            env = {"GIT_INDEX_FILE": str(index)}
            patterns = [f"--exclude={p}" for p in SECRET_STORE_PATTERNS.splitlines()]
            tracked = git(["ls-files", "-z", "-i", "-c", *patterns], repo_root, env=env)
            if tracked:
                git(["update-index", "-z", "--force-remove", "--stdin"], repo_root, env=env, input=tracked)
    return index


@functools.lru_cache(maxsize=64)
def _excludes(repo_root: str) -> str:
    """What `git add` excludes for snapshots: the secret stores, then the user's own global excludes
    (core.excludesFile, which lit's file stands in for). A file of patterns costs git little;
    29 exclude pathspecs made `git add -A` of 10,000 files 3x slower."""
    own = git(["config", "--path", "core.excludesFile"], repo_root, check=False)
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    try:
        theirs = (Path(own) if own else Path(xdg) / "git" / "ignore").read_text(errors="replace")
    except OSError:
        theirs = ""
    return SECRET_STORE_PATTERNS + theirs


def _excludes_file(repo_root: str, session_id: str) -> Path:
    """The session's excludes file, written again if it went missing (git would silently read
    nothing, and snapshot the secret stores)."""
    path = _files(repo_root, session_id).excludes
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(_excludes(repo_root))
        tmp.replace(path)
    return path


@functools.lru_cache(maxsize=64)
def _common_dir(repo_root: str) -> Path:
    """Where the refs every worktree shares (refs/lit/...) are kept."""
    return common_dir(repo_root)


@contextlib.contextmanager
def _locked(repo_root: str, session_id: str) -> Iterator[None]:
    """The session's private index to one process at a time: the recorder (a turn) and a hook (a
    commit) may snapshot at once, and a turn's tree must be the one its `git add` read, not one
    another process's add left in the index meanwhile. flock: a killed holder releases it."""
    path = _files(repo_root, session_id).lock
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _catch_up(repo_root: str, session_id: str, env: dict[str, str]) -> None:
    """Put into the private index what lit wrote into trees itself since git last read the tree
    (the entries only, no file times: `git add` then reads those files again)."""
    pending = _files(repo_root, session_id).pending
    try:
        entries = pending.read_bytes()
    except FileNotFoundError:
        return
    if entries:
        git(["update-index", "-z", "--index-info"], repo_root, env=env, input=entries, text=False)
    pending.unlink()


def _index_digest(index: Path) -> bytes | None:
    """The private index's own checksum (the last 20 bytes git writes: a SHA-1 of everything before
    them): equal digests, equal index, so the tree write-tree would give is the one it gave. None
    when git wrote no checksum (index.skipHash) or the file cannot be read."""
    try:
        with open(index, "rb") as f:
            f.seek(-20, os.SEEK_END)
            digest = f.read(20)
    except OSError:
        return None
    return digest if len(digest) == 20 and digest.strip(b"\0") else None


class Chain:
    """One process's view of a session's snapshot chain, so that a turn in which nothing changed
    costs one `git add -A` and nothing else (watched: no git at all; files edited: no git either):
    the tree the private index gave last (with the index's checksum then), or lit wrote last, and
    the chain's tip as this process last set it. Both are checked before they are trusted: the
    index by its checksum, the tip against the ref itself (a hook in another process may have
    moved it)."""

    def __init__(self, repo_root: str | os.PathLike, session_id: str, *, watched: bool = False):
        self.repo_root, self.session_id = str(repo_root), session_id
        self.tree: str | None = None
        self.digest: bytes | None = None
        self.tip: tuple[str, str] | None = None  # (commit, tree)
        # watched: the kernel says whether the working tree changed since the last `git add`, and a
        # turn that changed nothing runs no git at all (lit.git.watch); set up at the first write.
        self._watched = watched
        self.watch: TreeWatch | None = None
        # With a watch: the last tree held directory by directory, edited in place when the kernel
        # names the files a turn changed (lit.git.treeedit); None until needed, or when git must read.
        self._edit: TreeEdit | None = None
        self._asked_editable = False
        self.objects: Objects | None = None  # set once lit may write this repository's objects itself

    def write_tree(self, captured: Callable[[], None] | None = None) -> str:
        """The working tree as a tree object (untracked files included, ignored ones and secret
        stores not). `captured` is called as soon as the working tree has been read (`git add -A`):
        what the agent does to the files from then on is not in this tree, so the relay may let
        the answer's end go while the tree object is written."""
        repo_root, session_id = self.repo_root, self.session_id
        with _locked(repo_root, session_id):
            index = _private_index(repo_root, session_id)
            env = {"GIT_INDEX_FILE": str(index)}
            if self._watched:
                self._watched = False
                self.watch = watch_tree(repo_root, env)  # before the add: what changes after it is seen
            elif self.watch is not None and self.tree:
                changes = self.watch.changes()
                tree = self.tree if changes == set() else self._edited(changes, env)
                if tree is not None:
                    if captured is not None:
                        captured()
                    return tree  # nothing changed since the add that gave it, or lit wrote the change
            previous, self.tree = self.tree, None  # until an add succeeds: a failed one leaves nothing trusted
            self._drop_edit()  # the next tree is git's: held again from it when next needed
            for attempt in range(50):
                excludes = _excludes_file(repo_root, session_id)
                try:
                    _catch_up(repo_root, session_id, env)
                    # ":/" is the whole worktree even when repo_root is a subdirectory of it.
                    git(["-c", f"core.excludesFile={excludes}", "add", "-A", "--", ":/"], repo_root, env=env)
                    if captured is not None:
                        captured()
                        captured = None
                    digest = _index_digest(index)
                    if digest is not None and digest == self.digest and previous:
                        self.tree = previous
                        return previous  # `git add` left the index as it was: no write-tree
                    tree = git(["write-tree"], repo_root, env=env)
                    # write-tree may add its cache of trees to the index: the digest is read after it.
                    self.tree, self.digest = tree, _index_digest(index)
                    return tree
                except GitError as e:
                    # A lit starting in the same repository may take a live lock for a stale one and
                    # remove it: git then cannot write the index.
                    if not any(m in str(e) for m in ("remove the file manually", "Unable to write new index file")) \
                            or attempt == 49:
                        raise
                    time.sleep(0.02)
            raise AssertionError("unreachable")

    def _edited(self, changes: set[str] | None, env: dict[str, str]) -> str | None:
        """The last tree with these files as they are now, written by lit; None when git must read
        the tree (what changed is not only files lit may write: see lit.git.treeedit)."""
        if not changes or self.watch is None or self.tree is None:
            return None
        if not self._asked_editable:
            self._asked_editable = True
            common = _common_dir(self.repo_root)
            if treeedit.editable(self.watch.root, common, env):
                self.objects = treeedit.Objects(common / "objects")
        if self.objects is None:
            return None
        if self._edit is None or self._edit.tree != self.tree:
            self._drop_edit()
            self._edit = treeedit.TreeEdit.read(self.watch.root, self.tree, self.objects, env)
            if self._edit is None:
                return None
        tree = self._edit.apply(changes, _excludes_file(self.repo_root, self.session_id))
        if tree is None:
            self._drop_edit()
            return None
        # For the next `git add` (here or in a hook): the index takes these entries first, so that
        # git goes on from this tree (a file in it stays in, even once an ignore rule names it).
        with open(_files(self.repo_root, self.session_id).pending, "ab") as f:
            f.write(self._edit.index_info)
        # The private index no longer holds this tree: the next `git add` must not trust its digest.
        self.tree, self.digest = tree, None
        return tree

    def _drop_edit(self) -> None:
        if self._edit is not None:
            self._edit.close()
            self._edit = None

    def close(self) -> None:
        """Stop watching the working tree (its inotify descriptor) and the edit's ignore check (a
        process); later writes ask git."""
        if self.watch is not None:
            self.watch.close()
        self._drop_edit()

    def head(self) -> tuple[str, str] | None:
        """The chain's tip (commit, tree): the one this process set, when the ref still names it
        (read from its file, no git process), else what git says."""
        ref = snapshot_ref(self.session_id)
        if self.tip is not None:
            try:
                if (_common_dir(self.repo_root) / ref).read_text().strip() == self.tip[0]:
                    return self.tip
            except OSError:  # a packed ref, or another ref store: git reads it
                pass
        head = git(["log", "-1", "--format=%H %T", ref, "--"], self.repo_root, check=False).split()
        self.tip = (head[0], head[1]) if len(head) == 2 else None
        return self.tip


def write_tree(repo_root: str | os.PathLike, session_id: str) -> str:
    """The working tree as a tree object, read in full (a commit's snapshot, from a hook)."""
    return Chain(repo_root, session_id).write_tree()


def take(repo_root: str | os.PathLike, session_id: str, *, reason: str, step_ids: list[str] | tuple = (),
         message: str = "", tree: str | None = None, chain: Chain | None = None) -> tuple[str, str, bool]:
    """Capture the working tree on the session's snapshot chain (`tree`: one write_tree() read
    earlier, at the moment that mattered, put on the chain now; `chain`: what this process knows
    of the chain already).

    Returns (commit, tree, new): `new` is False when nothing changed since the previous snapshot
    (then the previous commit is returned and no commit is made, except for the chain's start)."""
    ref = snapshot_ref(session_id)
    chain = chain or Chain(repo_root, session_id)
    given = tree
    for _ in range(20):  # the recorder and a hook may snapshot at once: compare-and-swap the ref
        head = chain.head()
        parent = head[0] if head else None
        # The tree is read after the ref: a snapshot that loses the race reads the tree again,
        # so the tip never holds an older tree than its parent.
        tree = given or chain.write_tree()
        if head and head[1] == tree and reason != "start":
            return head[0], tree, False
        body = f"lit snapshot ({reason}) of session {session_id}\n\n{message}".rstrip() + "\n"
        if step_ids:
            body += "\nLit-Steps: " + " ".join(step_ids) + "\n"
        if chain.objects is not None and parent:
            # The watched chain's commit and ref, written by lit as git would (lit.git.treeedit).
            commit = chain.objects.commit(tree, parent, body)
            moved = treeedit.swap_ref(_common_dir(str(repo_root)), ref, commit, parent)
            if moved:
                chain.tip = (commit, tree)
                return commit, tree, True
            if moved is False:
                chain.tip = None  # another process holds or moved the ref: read it again
                time.sleep(0.01)
                continue
        args = ["commit-tree", tree] + (["-p", parent] if parent else [])
        commit = git(args, repo_root, env=IDENTITY, input=body)
        try:
            git(["update-ref", "-m", f"lit snapshot {reason}", ref, commit, parent or ""], repo_root)
            chain.tip = (commit, tree)
            return commit, tree, True
        except GitError:
            chain.tip = None  # another process moved the ref: read it again
            time.sleep(0.01)
    raise GitError(f"could not update {ref}: it kept changing")


def record_snapshot(db: sqlite_utils.Database, repo_root: str | os.PathLike | None, session_id: str,
                    thread_id: str | None, reason: str, step_ids: list[str] | tuple = (),
                    taken: tuple[str, float] | None = None, chain: Chain | None = None) -> str | None:
    """Take a snapshot and keep its row; returns the commit (None outside a repository or when
    nothing changed and there is nothing to attribute). `taken`: (tree, ms) of a write_tree()
    made earlier, when the turn ended, which this puts on the chain."""
    if not repo_root:
        return None
    t0 = time.perf_counter()
    tree = None
    if taken is not None:
        tree, ms = taken
        t0 -= ms / 1000
    commit, tree, new = take(repo_root, session_id, reason=reason, step_ids=step_ids, tree=tree, chain=chain)
    if not new:
        return None
    seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM snapshots WHERE session_id = ?", [session_id]).fetchone()[0]
    with store.write_transaction(db):
        db["snapshots"].insert({
            "session_id": session_id, "thread_id": thread_id, "seq": seq, "commit_sha": commit, "tree_sha": tree,
            "reason": reason, "step_ids": json.dumps(list(step_ids)), "taken_at": store.now(),
            "duration_ms": (time.perf_counter() - t0) * 1000,
        })
        if reason == "start" and thread_id:
            db.execute("UPDATE threads SET base_snapshot = ? WHERE id = ? AND base_snapshot IS NULL",
                       [commit, thread_id])
    return commit


def prune(db: sqlite_utils.Database, repo_root: str | os.PathLike, session_id: str) -> None:
    """Drop the snapshots no thread needs any more, once a thread's note is written or its session
    ended: a bound thread's line map and steps are in its note, and the working trees it saw should
    not outlive it. When no thread of the session is left to bind and the session is over, the ref
    goes. A thread still to bind (open, or pending a person's commit) blames over the chain from its
    own start: while it has no snapshot of its own yet, the chain restarts at the tip, as one
    parentless commit of the same tree; once it has, the chain stays until it is bound. A race lost
    to a new snapshot leaves the chain for the next time."""
    tip = latest(repo_root, session_id)
    if not tip:
        return
    live = [r[0] for r in db.execute("SELECT id FROM threads WHERE session_id = ? AND status IN ('open', 'pending')",
                                     [session_id]).fetchall()]
    ref = snapshot_ref(session_id)
    if not live:
        ended = db.execute("SELECT ended_at FROM sessions WHERE id = ?", [session_id]).fetchone()
        if ended and ended[0]:
            run(["update-ref", "-d", ref, tip], repo_root)
        return
    marks = ", ".join("?" * len(live))
    if db.execute(f"SELECT 1 FROM snapshots WHERE thread_id IN ({marks}) AND reason != 'start' LIMIT 1",
                  live).fetchone():
        return
    tree, *parents = git(["log", "-1", "--format=%T %P", tip, "--"], repo_root).split()
    if not parents:
        return  # a single commit already
    root = git(["commit-tree", tree], repo_root, env=IDENTITY, input=f"lit snapshot (start) of session {session_id}\n")
    if run(["update-ref", "-m", "lit snapshot prune", ref, root, tip], repo_root).returncode == 0:
        with store.write_transaction(db):
            db.execute(f"UPDATE threads SET base_snapshot = ? WHERE id IN ({marks}) AND base_snapshot = ?",
                       [root, *live, tip])


def latest(repo_root: str | os.PathLike, session_id: str) -> str | None:
    return git(["rev-parse", "--verify", "-q", snapshot_ref(session_id)], repo_root, check=False) or None


def forget_index(repo_root: str | os.PathLike, session_id: str) -> None:
    """The private index is a cache for this session's snapshots; drop it when the session ends."""
    try:
        for path in _files(repo_root, session_id):
            path.unlink(missing_ok=True)
    except (OSError, GitError):
        pass
