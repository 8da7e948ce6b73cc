"""The line map of a commit: for each added or changed line, the step that wrote it, or a person.

git computes it (DESIGN.md, "Git linkage"): a synthetic commit holding the real commit's tree is
put on top of the session's snapshot chain and blamed with `git blame --porcelain`. A line that
blame gives to a snapshot was introduced by the tool calls that snapshot captured; a line given
to the synthetic commit changed after the last snapshot (a person); a line given to the chain's
start was already there, uncommitted, when the session began (a person too).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import sqlite_utils

from lit import store
from lit.git.run import EMPTY_TREE, IDENTITY, git, unquote

HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


@dataclass
class LineMap:
    commit: str
    files: dict[str, list[list]] = field(default_factory=dict)  # path -> [[start, end, step id | None]]

    def step_ids(self) -> set[str]:
        return {r[2] for ranges in self.files.values() for r in ranges if r[2]}

    def lines(self) -> int:
        return sum(r[1] - r[0] + 1 for ranges in self.files.values() for r in ranges)


def changed_lines(repo: str | os.PathLike, commit: str) -> dict[str, list[int]]:
    """New-side line numbers added or changed by `commit`, per path (renames followed)."""
    return _changes(repo, commit)[0]


def _changes(repo: str | os.PathLike, commit: str) -> tuple[dict[str, list[int]], dict[str, str]]:
    """changed_lines, and the committed blob of each path (one git call)."""
    parent = git(["rev-parse", "--verify", "-q", commit + "^"], repo, check=False) or EMPTY_TREE
    out = git(["diff", "--raw", "-p", "-U0", "--no-abbrev", "--no-color", "--no-ext-diff", "-M", parent, commit],
              repo)
    files: dict[str, list[int]] = {}
    blobs: dict[str, str] = {}
    path = None
    for line in out.splitlines():
        if line.startswith(":"):
            meta, _, names = line.partition("\t")
            fields = meta.split()
            if len(fields) >= 4:
                blobs[unquote(names.split("\t")[-1])] = fields[3]
        elif line.startswith("+++ "):
            target = line[4:]
            path = None if target == "/dev/null" else unquote(target)[2:]
            if path is not None:
                files.setdefault(path, [])
        elif line.startswith("@@") and path is not None:
            m = HUNK.match(line)
            if m:
                start, count = int(m.group(1)), int(m.group(2) if m.group(2) is not None else 1)
                files[path].extend(range(start, start + count))
    return {p: lines for p, lines in files.items() if lines}, blobs


def _chain_blobs(repo: str | os.PathLike, tip: str) -> dict[str, list[tuple[str, str]]]:
    """path -> [(snapshot, blob)] newest first, for every change the chain made after its start."""
    out = git(["log", "--format=%x00%H", "--raw", "--no-abbrev", "--no-renames", tip], repo)
    chain: dict[str, list[tuple[str, str]]] = {}
    commit = ""
    for line in out.splitlines():
        if line.startswith("\x00"):
            commit = line[1:]
        elif line.startswith(":"):
            meta, _, name = line.partition("\t")
            chain.setdefault(unquote(name), []).append((commit, meta.split()[3]))
    return chain


def blame_origins(repo: str | os.PathLike, rev: str, path: str, lines: list[int]) -> dict[int, str]:
    """For the given lines of `path` at `rev`: the commit each came from."""
    if not lines:
        return {}
    args = ["blame", "--porcelain", "-M"]
    for start, end in line_runs(lines):
        args += ["-L", f"{start},{end}"]
    out = git(args + [rev, "--", path], repo)
    origins: dict[int, str] = {}
    for line in out.splitlines():
        parts = line.split(" ")
        if len(parts) >= 3 and len(parts[0]) == 40 and parts[1].isdigit() and parts[2].isdigit():
            origins[int(parts[2])] = parts[0]
    return origins


def line_runs(lines: list[int]) -> list[tuple[int, int]]:
    """Line numbers as runs of consecutive lines, (first, last) each, in order: [3, 1, 2, 7] -> [(1, 3), (7, 7)]."""
    out: list[tuple[int, int]] = []
    for n in sorted(set(lines)):
        if out and n == out[-1][1] + 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def compute(repo: str | os.PathLike, commit: str, chain_tip: str | None,
            choose_step) -> LineMap:
    """The line map of `commit` over the snapshot chain ending at `chain_tip`.

    `choose_step(snapshot_commit, path)` names the step a snapshot's change to `path` is owed to
    (None: a person, or the chain's start)."""
    lm = LineMap(commit=commit)
    changed, blobs = _changes(repo, commit)
    if not changed:
        return lm
    if chain_tip is None:
        lm.files = {p: [[s, e, None] for s, e in line_runs(ls)] for p, ls in changed.items()}
        return lm
    tree = git(["rev-parse", commit + "^{tree}"], repo)
    synthetic = git(["commit-tree", tree, "-p", chain_tip], repo, env=IDENTITY,
                    input="lit: the committed tree over the session's snapshots\n")
    chain = None
    for path, lines in changed.items():
        rev = synthetic
        if blobs.get(path):
            if chain is None:
                chain = _chain_blobs(repo, chain_tip)
            history = chain.get(path, [])
            if history and history[0][1] != blobs[path]:
                # Staged earlier, changed since (`git add`, then more edits): the snapshot that
                # holds exactly the committed file is where its lines are blamed, not the tip.
                rev = next((c for c, b in history if b == blobs[path]), synthetic)
        try:
            origins = blame_origins(repo, rev, path, lines)
        except Exception:  # noqa: BLE001 - a file blame cannot read (binary, odd name) is a person's
            origins = {}
        per_line = []
        for n in lines:
            origin = origins.get(n)
            step = None if origin in (None, synthetic) else choose_step(origin, path)
            per_line.append((n, step))
        lm.files[path] = _merge(per_line)
    return lm


def _merge(per_line: list[tuple[int, str | None]]) -> list[list]:
    out: list[list] = []
    for n, step in per_line:
        if out and out[-1][1] == n - 1 and out[-1][2] == step:
            out[-1][1] = n
        else:
            out.append([n, n, step])
    return out


def step_chooser(db: sqlite_utils.Database):
    """choose_step for compute(): a snapshot's steps are the tool calls it captured; of several,
    the one whose input names the file, else the last (the one nearest the change)."""
    cache: dict[str, list[tuple[str, str]]] = {}

    def choose(snapshot_commit: str, path: str) -> str | None:
        if snapshot_commit not in cache:
            row = db.execute("SELECT step_ids FROM snapshots WHERE commit_sha = ?", [snapshot_commit]).fetchone()
            ids = json.loads(row[0]) if row and row[0] else []
            inputs = []
            for step_id in ids:
                r = db.execute("SELECT tool_input FROM steps WHERE id = ?", [step_id]).fetchone()
                inputs.append((step_id, (r[0] or "") if r else ""))
            cache[snapshot_commit] = inputs
        candidates = cache[snapshot_commit]
        if not candidates:
            return None
        name = PurePosixPath(path).name
        for step_id, tool_input in reversed(candidates):
            if path in tool_input or (name and name in tool_input):
                return step_id
        return candidates[-1][0]

    return choose


def save(db: sqlite_utils.Database, lm: LineMap, thread_id: str | None) -> None:
    with store.write_transaction(db):
        db.execute("DELETE FROM line_map WHERE commit_sha = ?", [lm.commit])
        db["line_map"].insert_all(
            ({"commit_sha": lm.commit, "path": path, "line_start": s, "line_end": e, "step_id": step,
              "thread_id": thread_id} for path, ranges in lm.files.items() for s, e, step in ranges))
