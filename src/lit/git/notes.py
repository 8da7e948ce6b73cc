"""The note in refs/notes/lit: what a teammate needs to blame and weave a commit without the DB.

One JSON note per bound commit (format in docs/ARCHITECTURE.md): the thread, its prompts, the line
map per file and the steps the map cites with their reasoning. Bounded: strings are cut first,
then inputs and reasoning dropped, and `truncated` says so. Redacted before it is written.
"""

from __future__ import annotations

import json
import os

import sqlite_utils

from lit.git.run import git
from lit.redact import Redactor, default, redact_obj

NOTES_REF = "refs/notes/lit"
MAX_NOTE_BYTES = 256 * 1024
WHY_CHARS, RESULT_CHARS, INPUT_CHARS = 4000, 500, 2000


def _cut(value, n: int):
    if isinstance(value, str):
        return value if len(value) <= n else value[: n - 1] + "…"
    if isinstance(value, dict):
        return {k: _cut(v, n) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut(v, n) for v in value]
    return value


def build(db: sqlite_utils.Database, thread_id: str, commit: str) -> dict:
    """The note of `thread_id` bound to `commit`, from the DB (the line_map rows of the commit)."""
    from lit.blame import note_from_db  # noqa: PLC0415 - one builder for the note's shape

    thread = db["threads"].get(thread_id)
    note = note_from_db(db, {**thread, "commit_sha": commit})
    note.pop("source", None)
    note["commit"] = commit
    cited = {r[2] for ranges in note["files"].values() for r in ranges if r[2]}
    note["steps"] = {sid: step for sid, step in note["steps"].items() if sid in cited}
    for step in note["steps"].values():
        if "why" in step:
            step["why"] = _cut(step["why"], WHY_CHARS)
        if step.get("result"):
            step["result"] = _cut(step["result"], RESULT_CHARS)
        if "input" in step:
            step["input"] = _cut(step["input"], INPUT_CHARS)
    return bound(redact_obj(note))


def bound(note: dict, limit: int = MAX_NOTE_BYTES) -> dict:
    """Keep a note under `limit` bytes: drop tool inputs, then results, then reasoning."""
    def size() -> int:
        return len(json.dumps(note, ensure_ascii=False).encode())

    for field in ("input", "result", "why"):
        if size() <= limit:
            break
        note["truncated"] = True
        for step in note["steps"].values():
            step.pop(field, None)
    if size() > limit:
        for p in note["prompts"]:
            p["text"] = _cut(p["text"], 500)
    return note


def write(repo: str | os.PathLike, commit: str, note: dict) -> None:
    git(["notes", "--ref", NOTES_REF, "add", "-f", "-F", "-", commit], repo,
        input=json.dumps(note, ensure_ascii=False, indent=1) + "\n")


def read(repo: str | os.PathLike, commit: str) -> dict | None:
    out = git(["notes", "--ref", NOTES_REF, "show", commit], repo, check=False)
    if not out:
        return None
    try:
        note = json.loads(out)
    except ValueError:
        return None
    return note if isinstance(note, dict) and note.get("version") else None


def scrub(repo: str | os.PathLike, redactor: Redactor | None = None, *, dry_run: bool = False) -> int:
    """Rewrite each note in refs/notes/lit that the redaction rules change (`lit redact`); returns
    how many."""
    r = redactor or default()
    count = 0
    for line in git(["notes", "--ref", NOTES_REF, "list"], repo, check=False).splitlines():
        parts = line.split()
        if len(parts) != 2:
            continue
        raw = git(["notes", "--ref", NOTES_REF, "show", parts[1]], repo, check=False)
        try:
            note = json.loads(raw)
        except (ValueError, RecursionError):
            note = None
        if note is None:
            if r.text(raw) != raw:
                count += 1
                if not dry_run:
                    git(["notes", "--ref", NOTES_REF, "add", "-f", "-F", "-", parts[1]], repo, input=r.text(raw))
            continue
        scrubbed = r.obj(note)
        if scrubbed != note:
            count += 1
            if not dry_run:
                write(repo, parts[1], scrubbed)
    return count
