"""Sharing notes with a team (`lit sync`) and restoring links where notes were lost (`lit relink`).

lit never pushes on its own: notes hold reasoning, and the user chooses where they go. Merging
never drops a teammate's note: where both sides have a note for the same commit, the two are
merged (their line maps and steps united, ours first).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from lit import store
from lit.errors import LitError
from lit.git import link, notes
from lit.git.run import GitError, git

REMOTE_REF = "refs/notes/lit-remote"


@dataclass
class SyncResult:
    remote: str
    fetched: bool = False
    merged: int = 0  # notes that existed on both sides and differed
    pushed: bool = False
    notes: int = 0


def merge_notes(ours: dict, theirs: dict) -> dict:
    """One note from two for the same commit: ours first, theirs filling what ours lacks."""
    if ours == theirs:
        return ours
    out = json.loads(json.dumps(ours))
    for path, ranges in (theirs.get("files") or {}).items():
        mine = out.setdefault("files", {}).setdefault(path, [])
        known = {(s, e) for s, e, step in mine if step}
        for s, e, step in ranges:
            if step and (s, e) not in known:
                mine[:] = [r for r in mine if not (r[2] is None and r[0] >= s and r[1] <= e)]
                mine.append([s, e, step])
        mine.sort(key=lambda r: r[0])
    for sid, step in (theirs.get("steps") or {}).items():
        out.setdefault("steps", {}).setdefault(sid, step)
    seen = {p.get("step") for p in out.get("prompts", [])}
    out.setdefault("prompts", []).extend(p for p in theirs.get("prompts", []) if p.get("step") not in seen)
    if theirs.get("thread") and theirs.get("thread") != ours.get("thread"):
        out["merged_threads"] = sorted({*out.get("merged_threads", []), theirs["thread"]})
    return out


def sync(repo: str | os.PathLike, remote: str = "origin", *, push: bool = True) -> SyncResult:
    result = SyncResult(remote=remote)
    if remote not in git(["remote"], repo).split():
        raise LitError(f"no remote named {remote!r}: add one with git remote add, or name it: lit sync REMOTE")
    fetch = subprocess.run(["git", "fetch", "-q", remote, f"+{notes.NOTES_REF}:{REMOTE_REF}"], cwd=repo,
                           capture_output=True, text=True)
    result.fetched = fetch.returncode == 0
    if not result.fetched and "couldn't find remote ref" not in fetch.stderr:
        said = fetch.stderr.strip().splitlines()
        raise LitError(f"git fetch {remote} failed: {said[-1] if said else fetch.returncode}")
    if result.fetched:
        local = git(["rev-parse", "--verify", "-q", notes.NOTES_REF], repo, check=False)
        if not local:
            git(["update-ref", notes.NOTES_REF, REMOTE_REF], repo)
        else:
            result.merged = _merge(repo)
        git(["update-ref", "-d", REMOTE_REF], repo, check=False)
    if push and git(["rev-parse", "--verify", "-q", notes.NOTES_REF], repo, check=False):
        git(["push", "-q", remote, f"{notes.NOTES_REF}:{notes.NOTES_REF}"], repo)
        result.pushed = True
    result.notes = len(git(["notes", "--ref", notes.NOTES_REF, "list"], repo, check=False).splitlines())
    return result


def _merge(repo: str | os.PathLike) -> int:
    proc = subprocess.run(["git", "notes", "--ref", notes.NOTES_REF, "merge", "-q", "-s", "manual", REMOTE_REF],
                          cwd=repo, capture_output=True, text=True)
    if proc.returncode == 0:
        return 0
    worktree = Path(git(["rev-parse", "--git-path", "NOTES_MERGE_WORKTREE"], repo))
    if not worktree.is_absolute():
        worktree = Path(repo) / worktree
    merged = 0
    for f in sorted(worktree.iterdir()) if worktree.is_dir() else []:
        commit = f.name
        ours = _show(repo, notes.NOTES_REF, commit)
        theirs = _show(repo, REMOTE_REF, commit)
        note = merge_notes(ours, theirs) if ours and theirs else (ours or theirs)
        f.write_text(json.dumps(note, ensure_ascii=False, indent=1) + "\n")
        merged += 1
    git(["notes", "--ref", notes.NOTES_REF, "merge", "--commit"], repo)
    return merged


def _show(repo: str | os.PathLike, ref: str, commit: str) -> dict | None:
    out = git(["notes", "--ref", ref, "show", commit], repo, check=False)
    try:
        return json.loads(out) if out else None
    except ValueError:
        return None


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
        log = git(["log", "--format=%H%x00%(trailers:key=Lit-Thread,valueonly,separator=%x01)", rev_range], repo)
    except GitError as e:
        raise LitError(f"cannot read {rev_range}: {e}") from e
    have = {line.split()[1] for line in git(["notes", "--ref", notes.NOTES_REF, "list"], repo,
                                          check=False).splitlines() if len(line.split()) == 2}
    by_thread = _notes_by_thread(repo, have)
    untagged = []
    for line in log.splitlines():
        if "\x00" not in line:
            continue
        commit, trailers = line.split("\x00", 1)
        threads = [t.strip() for t in trailers.split("\x01") if t.strip()]
        if not threads and commit not in have:
            untagged.append(commit)
        if not threads or commit in have:
            continue
        tid = threads[0]
        done = False
        in_db = db is not None and db["threads"].count_where("id = ?", [tid])
        if tid in by_thread:
            # The note written when the thread was bound is its line map (its snapshots were pruned
            # then, see snapshot.prune): copied, and the DB follows.
            note = dict(by_thread[tid])
            note["commit"] = commit
            note["relinked_from"] = by_thread[tid].get("commit")
            notes.write(repo, commit, note)
            files = note.get("files") if isinstance(note.get("files"), dict) else {}
            if in_db:
                store.rebind_threads(db, commit, [tid], [
                    {"commit_sha": commit, "path": path, "line_start": r[0], "line_end": r[1], "step_id": r[2],
                     "thread_id": tid} for path, ranges in files.items() if isinstance(ranges, list) for r in ranges
                    if isinstance(r, list) and len(r) == 3 and all(isinstance(n, int) for n in r[:2])])
            done = True
        elif in_db:
            db.execute("UPDATE threads SET status = 'pending' WHERE id = ?", [tid])
            done = link.bind(db, str(repo), commit, tid) is not None
        (result.relinked if done else result.missing).append((commit, tid))
    from lit.git import relink_content

    result.by_content = relink_content.relink(repo, db, untagged)
    return result


def _notes_by_thread(repo: str | os.PathLike, commits: set[str]) -> dict[str, dict]:
    out = {}
    for c in commits:
        note = _show(repo, notes.NOTES_REF, c)
        if note and note.get("thread"):
            out[note["thread"]] = note
    return out
