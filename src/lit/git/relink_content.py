"""Relinking by content: a commit that lost every trailer (a host that rewrites squash messages)
is matched, line by line, with the threads whose commits are gone from every branch.

The added lines of a commit with no `Lit-Thread:` trailer and no note are hashed (the murmur3
`content_hash` of lit.formats.agent_trace, one line at a time) and looked up among the lines the
line maps give to steps of threads not bound to a reachable commit: their commit is on no branch
or tag any more (as after a squash merge and a deleted branch), or they were never bound (a
person committed their work without lit's hooks; the lines each of their snapshots added stand
for their line map). Lines too short to say anything
(blank, a brace, `end`: under 4 characters) are matched only in a file of the same path. A thread
is bound to the commit when most of its lines (more than half, and at least 3 or all it wrote)
are among the commit's added lines; the commit gets a line map (each added line to the step whose
line it is, else a person's) and a note, and the result says how sure it is: how many of the
thread's lines were found, and how many of the commit's added lines they explain.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field

import sqlite_utils

from lit import store, threads
from lit.errors import LitError
from lit.formats.agent_trace import content_hash, file_lines
from lit.git import notes
from lit.git.notes import Note, Span
from lit.git.run import git
from lit.importers.commits import added_lines

MIN_CHARS = 4  # a line shorter than this (stripped) proves nothing on its own
MIN_LINES = 3


@dataclass
class ThreadMatch:
    thread: str
    was: str  # the commit it was bound to, or "pending" (never bound)
    found: int  # its lines found among the commit's added lines
    lines: int  # the lines its steps wrote there


@dataclass
class ContentMatch:
    commit: str
    threads: list[ThreadMatch] = field(default_factory=list)
    added: int = 0  # the commit's added lines
    explained: int = 0  # of them, lines given to a step of a matched thread

    @property
    def sure(self) -> str:
        t = self.threads[0]
        return (f"{t.found} of its {t.lines} lines found ({100 * t.found // max(t.lines, 1)}%), "
                f"{self.explained} of the commit's {self.added} added lines "
                f"({100 * self.explained // max(self.added, 1)}%)")


@dataclass
class _Candidate:
    thread: str
    commit: str  # the commit its line map is of (for a pending thread: a snapshot of its session)
    files: dict[str, list[list]]  # path -> [[start, end, step id | None]]
    note: Note | None = None
    bound: bool = True  # False: a pending thread, `commit` one of its snapshots


def _key(text: str) -> str:
    return content_hash([text.rstrip("\r")])


def _times(repo: str | os.PathLike, commits: list[str]) -> dict[str, int]:
    """Committer time of each commit, in one git call."""
    out = git(["log", "--no-walk=unsorted", "--stdin", "--format=%H %ct"], repo, check=False,
              input="\n".join(dict.fromkeys(commits)) + "\n")
    times = {}
    for line in out.splitlines():
        sha, _, t = line.partition(" ")
        if t.isdigit():
            times[sha] = int(t)
    return times


def _reachable(repo: str | os.PathLike) -> set[str]:
    out = git(["rev-list", "--branches", "--tags", "--remotes", "HEAD"], repo, check=False)
    return set(out.split())


def candidates(repo: str | os.PathLike, db: sqlite_utils.Database | None, reachable: set[str]) -> list[_Candidate]:
    """Threads bound to commits no branch or tag reaches, from the DB and from the notes."""
    found: dict[str, _Candidate] = {}
    pending: list[_Candidate] = []
    if db is not None:
        for tid, commit in db.execute("SELECT id, commit_sha FROM threads WHERE status = 'bound'"
                                      " AND commit_sha IS NOT NULL").fetchall():
            if commit in reachable:
                continue
            files: dict[str, list[list]] = {}
            for path, start, end, step in db.execute(
                    "SELECT path, line_start, line_end, step_id FROM line_map WHERE commit_sha = ?"
                    " AND step_id LIKE ? ORDER BY path, line_start", [commit, tid + ".%"]).fetchall():
                files.setdefault(path, []).append([start, end, step])
            if files:
                found[tid] = _Candidate(tid, commit, files)
    if db is not None:
        pending = _pending(repo, db)
    for commit, note in notes.read_many(None, repo).items():
        if commit in reachable or note.thread in found:
            continue
        files = {p: [list(s) for s in spans if s.step] for p, spans in note.files.items()}
        files = {p: rs for p, rs in files.items() if rs}
        if files:
            found[note.thread] = _Candidate(note.thread, commit, files, note)
    # A commit whose objects are gone (pruned, or of another repository sharing the DB) has no lines to offer.
    shas = sorted({c.commit for c in found.values()})
    checked = git(["cat-file", "--batch-check=%(objectname) %(objecttype)"], repo, check=False,
                  input="\n".join(shas) + "\n") if shas else ""
    present = {line.split()[0] for line in checked.splitlines() if line.endswith(" commit")}
    return [c for c in found.values() if c.commit in present] + [c for c in pending if c.thread not in found]


@dataclass
class _Index:
    lines: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)  # hash -> [(thread, step, path)]
    written: dict[str, set[tuple[str, str]]] = field(default_factory=dict)  # thread -> {(path, hash)}, long lines


def index(repo: str | os.PathLike, pool: list[_Candidate]) -> _Index:
    """The lines the candidates' steps wrote, by content hash (each file read once, from its commit)."""
    out = _Index()
    for c in pool:
        contents = file_lines(repo, c.commit, c.files)
        for path, ranges in c.files.items():
            lines = contents.get(path)
            if lines is None:
                continue
            for start, end, step in ranges:
                for n in range(max(start, 1), min(end, len(lines)) + 1):
                    h = _key(lines[n - 1])
                    out.lines.setdefault(h, []).append((c.thread, step, path))
                    if len(lines[n - 1].strip()) >= MIN_CHARS:
                        out.written.setdefault(c.thread, set()).add((path, h))
    return out


def _pending(repo: str | os.PathLike, db: sqlite_utils.Database) -> list[_Candidate]:
    """Threads never bound (their work committed without lit's hooks): the lines each snapshot of
    theirs added, given to the tool call it captured, stand for their line map; one candidate per
    snapshot, all under the thread's id."""
    from lit.git.linemap import step_chooser

    choose = step_chooser(db)
    out = []
    for tid, snap in db.execute(
            "SELECT t.id, s.commit_sha FROM threads t JOIN snapshots s ON s.thread_id = t.id WHERE t.status = 'pending'"
            " AND t.repo_root = ? AND s.step_ids IS NOT NULL AND s.step_ids != '[]' ORDER BY t.id, s.seq",
            [str(repo)]).fetchall():
        files: dict[str, list[list]] = {}
        try:
            added = added_lines(str(repo), snap)
        except LitError:
            continue  # the snapshot is gone (another repository, or pruned)
        for path, n, _text in added:
            step = choose(snap, path)
            if step and step.startswith(tid + "."):
                files.setdefault(path, []).append([n, n, step])
        if files:
            out.append(_Candidate(tid, snap, files, bound=False))
    return out


def match(repo: str | os.PathLike, commit: str, pool: list[_Candidate], idx: _Index) -> tuple[ContentMatch, list]:
    """How the added lines of `commit` match the candidates' lines; (result, line map rows)."""
    open_threads = {c.thread: c.commit if c.bound else "pending" for c in pool}
    added = added_lines(str(repo), commit)
    result = ContentMatch(commit, added=len(added))
    found: dict[str, set[tuple[str, str]]] = {}
    per_line: list[tuple[str, int, list[tuple[str, str, str]], bool]] = []
    for path, n, text in added:
        h = _key(text)
        hits = [hit for hit in idx.lines.get(h, []) if hit[0] in open_threads]
        long = len(text.strip()) >= MIN_CHARS
        if long:
            for tid, _step, p in hits:
                found.setdefault(tid, set()).add((p, h))
        per_line.append((path, n, hits, long))
    for tid, lines in idx.written.items():
        if tid not in open_threads:
            continue
        hit = len(found.get(tid, set()) & lines)
        if hit * 2 > len(lines) and hit >= min(MIN_LINES, len(lines)):
            result.threads.append(ThreadMatch(tid, open_threads[tid], hit, len(lines)))
    result.threads.sort(key=lambda t: (-t.found, t.thread))
    bound = [t.thread for t in result.threads]
    rows = []
    for path, n, hits, long in per_line:
        mine = [(tid, step) for tid, step, p in hits if tid in bound and (long or p == path)]
        if mine:
            tid, step = min(mine, key=lambda m: bound.index(m[0]))
            result.explained += 1
        else:
            tid, step = (bound[0] if bound else None), None
        if rows and rows[-1]["path"] == path and rows[-1]["line_end"] == n - 1 and rows[-1]["step_id"] == step:
            rows[-1]["line_end"] = n
        else:
            rows.append({"commit_sha": commit, "path": path, "line_start": n, "line_end": n, "step_id": step,
                         "thread_id": tid})
    return result, rows


def relink(repo: str | os.PathLike, db: sqlite_utils.Database | None, commits: list[str]) -> list[ContentMatch]:
    """Bind the threads found by content to each of `commits` (no trailer, no note), oldest first."""
    if not commits:
        return []
    reachable = _reachable(repo)
    pool = candidates(repo, db, reachable)
    if not pool:
        return []
    # A commit made before every candidate cannot hold their work: its diff is not read.
    times = _times(repo, [c.commit for c in pool] + commits)
    since = min(times.get(c.commit, 0) for c in pool)
    idx = index(repo, pool)
    done: list[ContentMatch] = []
    for commit in reversed(commits):  # git log gives newest first
        if not pool:
            break
        if times.get(commit, 0) < since:
            continue
        if db is not None and db.execute("SELECT 1 FROM threads WHERE commit_sha = ?", [commit]).fetchone():
            continue
        result, rows = match(repo, commit, pool, idx)
        if not result.threads:
            continue
        tids = [t.thread for t in result.threads]
        in_db = db is not None and all(db.execute("SELECT 1 FROM threads WHERE id = ?", [t]).fetchone()
                                       for t in tids)
        if in_db:
            store.rebind_threads(db, commit, tids, rows)
            notes.write(repo, commit, threads.note_for_commit(db, tids[0], commit))
        else:
            notes.write(repo, commit, _note_from_notes(commit, tids, pool, rows))
        pool = [c for c in pool if c.thread not in tids]  # one thread, one commit
        done.append(result)
    return done


def _note_from_notes(commit: str, tids: list[str], pool: list[_Candidate], rows: list[dict]) -> Note:
    """Without the DB: the first thread's note, with the commit's new line map and the steps the
    other threads' notes give for it."""
    by_thread = {c.thread: c for c in pool if c.note is not None}
    first = by_thread[tids[0]]
    note = copy.deepcopy(first.note) if first.note else Note(thread=tids[0])
    steps = {}
    for tid in tids:
        steps.update(by_thread[tid].note.steps if tid in by_thread and by_thread[tid].note else {})
    files: dict[str, list[Span]] = {}
    for r in rows:
        files.setdefault(r["path"], []).append(Span(r["line_start"], r["line_end"], r["step_id"]))
    cited = {r["step_id"] for r in rows if r["step_id"]}
    note.commit, note.files, note.relinked_from = commit, files, first.commit
    note.steps = {k: v for k, v in steps.items() if k in cited}
    if len(tids) > 1:
        note.merged_threads = sorted(tids[1:])
    return note
