"""Sharing notes with a team (`lit sync`) and restoring links where notes were lost (`lit relink`).

lit never pushes on its own: notes hold reasoning, and the user chooses where they go. Merging
never drops a teammate's note: where both sides have a note for the same commit, the two are
merged (their line maps and steps united, ours first).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field

import sqlite_utils

from lit import store
from lit.errors import LitError
from lit.git import link, notes
from lit.git.notes import Note
from lit.git.run import GitError, git, run

REMOTE_REF = "refs/notes/lit-remote"
UNREADABLE_REF = "refs/lit/unreadable"  # notes that did not validate, kept as they were


@dataclass
class SyncResult:
    remote: str
    fetched: bool = False
    merged: int = 0  # notes that existed on both sides and differed
    pushed: bool = False
    notes: int = 0
    unreadable: list[str] = field(default_factory=list)  # refs keeping notes that did not validate


def merge_notes(ours: Note, theirs: Note) -> Note:
    """One note from two for the same commit: ours first, theirs filling what ours lacks."""
    if ours == theirs:
        return ours
    out = copy.deepcopy(ours)
    out.__dict__.pop("_index", None)  # Note.owner's index of the line map, rebuilt on demand
    for path, spans in theirs.files.items():
        mine = out.files.setdefault(path, [])
        known = {(s.start, s.end) for s in mine if s.step}
        for span in spans:
            if span.step and (span.start, span.end) not in known:
                mine[:] = [r for r in mine if not (r.step is None and r.start >= span.start and r.end <= span.end)]
                mine.append(span)
        mine.sort(key=lambda r: r.start)
    for sid, step in theirs.steps.items():
        out.steps.setdefault(sid, step)
    seen = {p.step for p in out.prompts}
    out.prompts.extend(p for p in theirs.prompts if p.step not in seen)
    if theirs.thread != ours.thread:
        out.merged_threads = sorted({*out.merged_threads, theirs.thread})
    return out


def sync(repo: str | os.PathLike, remote: str = "origin", *, push: bool = True) -> SyncResult:
    """Fetch the remote's notes, validate and merge them into ours, push the result."""
    result = SyncResult(remote=remote)
    if remote not in git(["remote"], repo).split():
        raise LitError(f"no remote named {remote!r}: add one with git remote add, or name it: lit sync REMOTE")
    fetch = run(["fetch", "-q", remote, f"+{notes.NOTES_REF}:{REMOTE_REF}"], repo)
    result.fetched = fetch.returncode == 0
    if not result.fetched and "couldn't find remote ref" not in fetch.stderr:
        said = fetch.stderr.strip().splitlines()
        raise LitError(f"git fetch {remote} failed: {said[-1] if said else fetch.returncode}")
    if result.fetched:
        try:
            _merge(repo, remote, result)
        finally:
            git(["update-ref", "-d", REMOTE_REF], repo, check=False)
    if push and git(["rev-parse", "--verify", "-q", notes.NOTES_REF], repo, check=False):
        git(["push", "-q", remote, f"{notes.NOTES_REF}:{notes.NOTES_REF}"], repo)
        result.pushed = True
    result.notes = len(notes.listing(repo))
    return result


def _merge(repo: str | os.PathLike, remote: str, result: SyncResult) -> None:
    """Merge the fetched notes into ours. git's own merge (strategy `ours`, which never stops half
    way) joins the two histories, so the push that follows is a fast-forward; then each commit
    whose notes differ gets one note, from the two validated sides. A side that does not
    validate (in whole or in part) is kept byte for byte under refs/lit/unreadable/ and said."""
    local = git(["rev-parse", "--verify", "-q", notes.NOTES_REF], repo, check=False)
    ours_raw = notes.read_raw(repo, None) if local else {}
    theirs_raw = notes.read_raw(repo, None, REMOTE_REF)
    if not local:
        git(["update-ref", notes.NOTES_REF, REMOTE_REF], repo)
    else:
        try:
            notes.merge_keeping_ours(repo, REMOTE_REF)
        except GitError as e:
            raise LitError(f"cannot merge {remote}'s notes into yours ({e}); yours are unchanged") from e
    for commit, theirs_bytes in theirs_raw.items():
        ours_bytes = ours_raw.get(commit)
        if ours_bytes == theirs_bytes:
            continue
        theirs_problems: list[str] = []
        theirs = notes.decode(theirs_bytes, theirs_problems)
        if theirs_problems:
            result.unreadable.append(_keep(repo, f"{remote}/{commit}", theirs_bytes))
        if ours_bytes is None:
            if theirs is None:  # nothing of it readable: it stays out of our notes, kept aside
                notes.remove(repo, commit)
            elif theirs_problems:
                notes.write(repo, commit, theirs)
            continue
        ours_problems: list[str] = []
        ours = notes.decode(ours_bytes, ours_problems)
        if ours is None or theirs is None:
            if ours is None and theirs is not None:
                result.unreadable.append(_keep(repo, f"local/{commit}", ours_bytes))
                notes.write(repo, commit, theirs)
            continue  # ours stays as it was (readable, or both unreadable: never a note `null`)
        if ours_problems:
            result.unreadable.append(_keep(repo, f"local/{commit}", ours_bytes))
        notes.write(repo, commit, merge_notes(ours, theirs))
        result.merged += 1


def _keep(repo: str | os.PathLike, name: str, data: bytes) -> str:
    """Keep a note's bytes as a blob under refs/lit/unreadable/NAME; returns the ref."""
    blob = git(["hash-object", "-w", "--stdin"], repo, input=data, text=False).decode().strip()
    ref = f"{UNREADABLE_REF}/{name}"
    git(["update-ref", ref, blob], repo)
    return ref


@dataclass
class RelinkResult:
    relinked: list[tuple[str, str]] = field(default_factory=list)  # (commit, thread)
    missing: list[tuple[str, str]] = field(default_factory=list)  # trailer names a thread lit doesn't have
    by_content: list = field(default_factory=list)  # lit.git.relink_content.ContentMatch: no trailer left


def relink(repo: str | os.PathLike, db: sqlite_utils.Database | None, rev_range: str = "HEAD") -> RelinkResult:
    """Commits whose `Lit-Thread:` trailers name a thread but which have no note (a squash merge on a
    host, a cherry-pick): rebuild the note from the DB, or copy the thread's note from its
    original commit where the DB lacks it."""
    result = RelinkResult()
    try:
        named = notes.trailer_threads([rev_range], repo, walk=True)
    except GitError as e:
        raise LitError(f"cannot read {rev_range}: {e}") from e
    have = notes.listing(repo)
    by_thread = {n.thread: n for n in notes.read_many(None, repo, blobs=have).values()}
    untagged = [c for c in git(["rev-list", rev_range, "--"], repo).split() if c not in named and c not in have]
    for commit, threads in named.items():
        if commit in have:
            continue
        tid = threads[0]
        done = False
        in_db = db is not None and db["threads"].count_where("id = ?", [tid])
        if tid in by_thread:
            # The note written when the thread was bound is its line map (its snapshots were pruned
            # then, see snapshot.prune): copied, and the DB follows.
            note = copy.deepcopy(by_thread[tid])
            note.relinked_from, note.commit = by_thread[tid].commit, commit
            notes.write(repo, commit, note)
            if in_db:
                store.rebind_threads(db, commit, [tid], [
                    {"commit_sha": commit, "path": path, "line_start": span.start, "line_end": span.end,
                     "step_id": span.step, "thread_id": tid} for path, spans in note.files.items() for span in spans])
            done = True
        elif in_db:
            db.execute("UPDATE threads SET status = 'pending' WHERE id = ?", [tid])
            done = link.bind(db, str(repo), commit, tid) is not None
        (result.relinked if done else result.missing).append((commit, tid))
    from lit.git import relink_content

    result.by_content = relink_content.relink(repo, db, untagged)
    return result
