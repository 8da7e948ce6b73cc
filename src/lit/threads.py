"""One reader of threads: which thread a reference names, and the thread itself.

    ref = resolve("HEAD", db=db, cwd=repo)     # a thread id, any unique prefix of one, a commit, a rev
    note = load(ref.thread, db=db, cwd=repo)   # from the DB, else its note, else its trailer

A thread is read into lit.git.notes.Note whatever it comes from: the DB (every step, results
uncut up to a note step's 500 characters), a note in refs/notes/lit (the steps its line map
cites), or only the `Lit-Thread:` trailer of its commit (an id and nothing else). Every command
that takes a thread (show, export, replay, weave, serve's pages, pr, blame) reads it here.

The DB is any object with sqlite3's `execute` (a sqlite3 connection, a sqlite-utils Database,
DBReader): serve reads through Datasette's read-only connections, blame through plain sqlite3.
Nothing here imports sqlite-utils at module level: `lit blame` should not pay for it.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lit import store
from lit.errors import LitError
from lit.git import notes
from lit.git.notes import Note, Prompt, Step
from lit.git.run import GitError, rev

ZERO_SHA = "0" * 40
RESULT_CHARS = 500  # of a tool result, in a step read from the DB (as in a note)


# --- the DB ----------------------------------------------------------------------------------------


def db_file(db_path: str | os.PathLike | None) -> Path | None:
    """The DB file if it exists (paths.resolve_db_path), None if not; a --db that was named and does
    not exist is an error."""
    from lit.paths import resolve_db_path

    path = resolve_db_path(db_path)
    if not path.exists():
        if db_path:
            raise LitError(f"no lit DB at {path}")
        return None
    return path


def open_db(db_path: str | os.PathLike | None):
    """lit's DB (sqlite-utils, migrated) if there is one; None when there is none (notes alone are
    enough). A --db that was named explicitly and does not exist is an error."""
    path = db_file(db_path)
    if path is None:
        return None
    from lit import store

    return store.read(path)


class DBReader:
    """lit's DB read with plain sqlite3 (`execute`): lit blame reads a few rows and should not pay
    sqlite-utils' import for them."""

    def __init__(self, path: Path):
        from lit.dbfile import open_read_only

        self.conn, _ = open_read_only(path)
        self.path = path

    def execute(self, sql: str, params: Iterable = ()) -> sqlite3.Cursor:
        try:
            return self.conn.execute(sql, list(params))
        except sqlite3.Error as e:
            raise LitError(f"cannot read the lit DB at {self.path}: {e} (run any lit command to migrate it)") from e


def open_reader(db_path: str | os.PathLike | None) -> DBReader | None:
    path = db_file(db_path)
    return DBReader(path) if path else None


def rows(db, sql: str, params: Iterable = ()) -> list[dict]:
    """The rows of a query as dicts, on any DB with sqlite3's `execute`."""
    cur = db.execute(sql, list(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def json_value(text: str | None) -> Any:
    """A JSON column's value; the text itself when it is not JSON; {} when empty."""
    if not text:
        return {}
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def iso(ts: float | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts else None


# --- the "why" of a step ------------------------------------------------------------------------------


def _imported(step: dict) -> dict:
    """A step read from another tool's records (lit.importers.attribution keeps
    `{"imported": FORMAT, "agent": TOOL}` in its raw column): its source and agent, so readers can
    say the source recorded no reasoning for it. {} for lit's own steps."""
    raw = step.get("raw")
    if not raw or '"imported"' not in raw:
        return {}
    data = json_value(raw)
    if not isinstance(data, dict) or not isinstance(data.get("imported"), str):
        return {}
    out = {"imported": data["imported"][:40]}
    if isinstance(data.get("agent"), str):
        out["agent"] = data["agent"][:200]
    return out


def _plain_step(row: dict) -> Step:
    """A cited step that is neither a tool call nor closing words (its own text is its why)."""
    imported = _imported(row)
    return Step(seq=row["seq"], kind=row["kind"], why=row.get("text") or "", model=row.get("model") or None,
                imported=imported.get("imported"),
                tool=(row.get("tool_name") or imported.get("agent")) if imported else None)


def note_steps(step_rows: list[dict]) -> tuple[list[Prompt], dict[str, Step]]:
    """The prompts and steps of one thread's step rows (in order): each tool call with its why (the
    reasoning since the previous tool call or prompt) and its whole result, and the agent's
    closing words (reasoning no tool call follows) as a text step. The one place a step's why is
    computed: notes, blame, weave and pr all read it from here."""
    results = {s["tool_use_id"]: s for s in step_rows if s["kind"] == "tool_result" and s.get("tool_use_id")}
    prompts: list[Prompt] = []
    steps: dict[str, Step] = {}
    why: list[str] = []
    last_said: dict | None = None  # the last thinking/text step since the last tool call
    prompt_id = None

    def answer() -> None:
        # Reasoning no tool call follows (the agent's answer before the next prompt, or at the
        # end): kept as a text step, so a page shows how the thread ended.
        if why and last_said is not None:
            steps[last_said["id"]] = Step(seq=last_said["seq"], kind="text", why="\n\n".join(why), prompt=prompt_id)

    for s in step_rows:
        if s["kind"] == "prompt":
            answer()
            prompts.append(Prompt(s["id"], s.get("text") or ""))
            prompt_id, why, last_said = s["id"], [], None
        elif s["kind"] in ("thinking", "text"):
            if s.get("text"):
                why.append(s["text"])
                last_said = s
        elif s["kind"] == "tool_call":
            result = results.get(s.get("tool_use_id"))
            imported = _imported(s)
            steps[s["id"]] = Step(
                seq=s["seq"], kind="tool_call", tool=s.get("tool_name") or imported.get("agent"),
                input=json_value(s.get("tool_input")), why="\n\n".join(why), prompt=prompt_id,
                result=(result.get("text") or "") if result else None, is_error=bool(result and result.get("is_error")),
                model=s.get("model") or None, imported=imported.get("imported"))
            why, last_said = [], None
    answer()
    return prompts, steps


def first_sentence(text: str | None) -> str:
    """The first sentence of the first non-empty line (markdown markers and all): a why in brief."""
    for line in (text or "").splitlines():
        line = line.strip().lstrip("#>*- ").strip()
        if line:
            m = re.search(r"(?<=[.!?])\s", line)
            return line[: m.start()] if m else line
    return ""


def from_db(db, thread: dict) -> Note:
    """The Note of a thread row of the DB, so every reader reads one shape. Unlike a note it holds
    every tool call of the thread, not only the cited ones; and steps of earlier threads that the
    line map cites (a line written before one commit but committed in the next)."""
    step_rows = store.thread_steps(db, thread["id"])
    prompts, steps = note_steps(step_rows)
    for s in steps.values():
        if s.result:
            s.result = s.result[:RESULT_CHARS]
    by_id = {s["id"]: s for s in step_rows}
    files: dict[str, list[notes.Span]] = {}
    elsewhere: set[str] = set()
    commit = thread.get("commit_sha")
    if commit:
        for r in db.execute("SELECT path, line_start, line_end, step_id FROM line_map WHERE commit_sha = ?"
                            " ORDER BY path, line_start", [commit]).fetchall():
            files.setdefault(r[0], []).append(notes.Span(r[1], r[2], r[3]))
            sid = r[3]
            if sid and sid not in steps:
                if sid in by_id:  # a cited step that is neither a tool call nor closing words
                    steps[sid] = _plain_step(by_id[sid])
                else:
                    elsewhere.add(sid)
    for other in {sid.rsplit(".", 1)[0] for sid in elsewhere}:
        other_rows = store.thread_steps(db, other)
        _, other_steps = note_steps(other_rows)
        other_by_id = {s["id"]: s for s in other_rows}
        for sid in elsewhere:
            if sid in other_steps:
                step = other_steps[sid]
            elif sid in other_by_id:
                step = _plain_step(other_by_id[sid])
            else:
                continue
            if step.result:
                step.result = step.result[:RESULT_CHARS]
            step.thread = other
            steps[sid] = step
    if not prompts:
        # A thread opened after a commit continues the prompt before it: say which.
        row = db.execute("SELECT id, text FROM steps WHERE session_id = ? AND kind = 'prompt' AND created_at <= ?"
                         " ORDER BY created_at DESC LIMIT 1",
                         [thread.get("session_id"), thread.get("started_at") or 0]).fetchone()
        if row:
            prompts = [Prompt(row[0], row[1] or "", continued=True)]
    usage = db.execute(
        """SELECT COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),
                  COALESCE(SUM(cache_creation_input_tokens), 0), COALESCE(SUM(cache_read_input_tokens), 0),
                  group_concat(DISTINCT model)
           FROM exchanges WHERE thread_id = ?""", [thread["id"]]).fetchone()
    agent = db.execute("SELECT agent FROM sessions WHERE id = ?", [thread.get("session_id")]).fetchone()
    imported_models = {s["model"] for s in step_rows
                       if s.get("model") is not None and '"imported"' in (s.get("raw") or "").lower()}
    return Note(
        thread=thread["id"], session=thread.get("session_id"), commit=commit, agent=agent[0] if agent else None,
        models=sorted(set(filter(None, (usage[4] or "").split(","))) | imported_models),
        started_at=iso(thread.get("started_at")), ended_at=iso(thread.get("bound_at") or thread.get("ended_at")),
        usage={"input_tokens": usage[0], "output_tokens": usage[1], "cache_creation_input_tokens": usage[2],
               "cache_read_input_tokens": usage[3]},
        prompts=prompts, files=files, steps=steps, source="db")


def note_for_commit(db, thread_id: str, commit: str) -> Note:
    """What lit writes in refs/notes/lit for `thread_id` bound to `commit`: its DB thread with only
    the steps the line map cites, strings cut, secrets redacted (written bounded by notes.write)."""
    from lit.redact import redact_obj

    thread = rows(db, "SELECT * FROM threads WHERE id = ?", [thread_id])[0]
    note = notes.cited(from_db(db, {**thread, "commit_sha": commit}), commit)
    problems: list[str] = []
    clean = notes.parse(redact_obj(note.to_json()), problems)
    assert clean is not None, problems  # our own note, redacted: a bug if it does not read back
    return clean


def db_notes(db, commits: Iterable[str]) -> dict[str, Note]:
    """The Notes of the DB's threads bound to `commits`."""
    commits = list(commits)
    found: dict[str, Note] = {}
    for i in range(0, len(commits), 500):  # SQLite's variable limit
        chunk = commits[i:i + 500]
        marks = ",".join("?" * len(chunk))
        for thread in rows(db, f"SELECT * FROM threads WHERE commit_sha IN ({marks})", chunk):
            found[thread["commit_sha"]] = from_db(db, thread)
    return found


def for_commits(commits: Iterable[str], cwd: str | os.PathLike | None = None, *, db=None,
                db_path: str | None = None, db_first: bool = True,
                blobs: dict[str, str] | None = None) -> dict[str, Note]:
    """A Note for each commit lit knows: from the DB or its note (`db_first`: the DB, which has
    every step uncut, as the pages and the PR text want; else the note, which blame reads without
    opening the DB), else a stub from its trailer (an id and no line map). Commits lit does not
    know are absent."""
    commits = [c for c in dict.fromkeys(commits) if c and c != ZERO_SHA]
    found: dict[str, Note] = {}
    if db_first:
        db = db if db is not None else open_reader(db_path)
        if db is not None:
            found.update(db_notes(db, commits))
    rest = [c for c in commits if c not in found]
    if rest:
        found.update(notes.read_many(rest, cwd, blobs=blobs))
        rest = [c for c in rest if c not in found]
    if rest and not db_first:
        db = db if db is not None else open_reader(db_path)
        if db is not None:
            found.update(db_notes(db, rest))
            rest = [c for c in rest if c not in found]
    for commit, ids in notes.trailer_threads(rest, cwd).items():
        found[commit] = Note(thread=ids[0], commit=commit, source="trailer")
    return found


# --- which thread a reference names ----------------------------------------------------------------------


class NoThread(LitError):
    """No thread matches a reference."""


@dataclass(frozen=True)
class Ref:
    """What a reference named: a thread (None for a commit lit has no thread for) and its commit."""

    thread: str | None
    commit: str | None


_HEX = re.compile(r"[0-9a-f]+")


def _say_ambiguous(ref: str, ids: list[str]) -> LitError:
    shown = ", ".join(sorted(ids)[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
    return LitError(f"{ref!r} is ambiguous: it starts {len(ids)} threads ({shown}); give more of the id")


def _note_threads(prefix: str, cwd) -> dict[str, str]:
    """thread id -> commit, for the notes of the repository at `cwd` whose thread id starts with
    `prefix` (none outside a repository)."""
    try:
        return {n.thread: c for c, n in notes.read_thread_prefix(prefix, cwd).items()}
    except GitError:
        return {}


def resolve(ref: str, *, db=None, cwd: str | os.PathLike | None = None, in_repo: bool = True,
            need_thread: bool = True) -> Ref:
    """The thread `ref` names: a thread id; any prefix of one that only one thread has (in the DB
    or the notes); a commit (a SHA, HEAD, main~2, a tag: the thread bound to it); or the SHA of
    a bound commit the DB knows from another repository. `in_repo=False` skips the repository
    (a server has none). A prefix that several threads start says which. LitError when nothing
    matches, or (`need_thread`) when the commit has no thread."""
    ref = (ref or "").strip()
    if not ref:
        raise LitError("no thread given: a thread id, a prefix of one, or a commit")
    if db is not None:
        exact = rows(db, "SELECT id, commit_sha FROM threads WHERE id = ?", [ref])
        if exact:
            return Ref(exact[0]["id"], exact[0]["commit_sha"])
    hexish = _HEX.fullmatch(ref) is not None
    db_ids: dict[str, str | None] = {}
    if db is not None and hexish:
        db_ids = {r["id"]: r["commit_sha"] for r in rows(db, "SELECT id, commit_sha FROM threads WHERE id LIKE ?",
                                                         [ref + "%"])}
    note_ids: dict[str, str] = {}
    if in_repo and hexish:
        note_ids = _note_threads(ref, cwd)
    prefixed = {**note_ids, **db_ids}
    sha = rev(cwd, ref) if in_repo else None
    if sha:
        found = for_commits([sha], cwd, db=db, db_first=True)
        thread = found[sha].thread if sha in found else None
        others = set(prefixed) - {thread}
        if others and sha.startswith(ref):
            # a short hex ref that is both a commit and the start of another thread's id
            raise LitError(f"{ref!r} is ambiguous: commit {sha[:12]} and thread "
                           f"{', '.join(sorted(others)[:3])}; give more characters")
        if thread is None and need_thread:
            raise LitError(f"commit {sha[:12]} has no thread: no note, no thread bound to it in the lit DB, "
                           "no Lit-Thread trailer")
        return Ref(thread, sha)
    if len(prefixed) > 1:
        raise _say_ambiguous(ref, list(prefixed))
    if len(prefixed) == 1:
        (tid, commit), = prefixed.items()
        return Ref(tid, commit)
    if db is not None and hexish and len(ref) >= 4:
        bound = rows(db, "SELECT id, commit_sha FROM threads WHERE commit_sha LIKE ?", [ref + "%"])
        if len({r["commit_sha"] for r in bound}) > 1:
            raise LitError(f"{ref!r} is ambiguous: it starts {len(bound)} commits; give more of the SHA")
        if bound:
            return Ref(bound[0]["id"], bound[0]["commit_sha"])
    raise NoThread(f"no thread matches {ref!r}: give a thread id or a prefix of one, or a commit "
                   "(a SHA, HEAD, main~2); lit threads lists them")


def load(thread_id: str, *, db=None, cwd: str | os.PathLike | None = None, commit: str | None = None) -> Note:
    """The thread `thread_id`: from the DB (every step), else its note (the steps its line map
    cites), else the trailer of its commit (the id alone). LitError if lit knows none of them."""
    if db is not None:
        found = rows(db, "SELECT * FROM threads WHERE id = ?", [thread_id])
        if found:
            return from_db(db, found[0])
    try:
        if commit:
            note = notes.read(cwd, commit)
            if note is not None and note.thread == thread_id:
                return note
            if thread_id in notes.trailer_threads([commit], cwd).get(rev(cwd, commit) or "", []):
                return Note(thread=thread_id, commit=rev(cwd, commit), source="trailer")
        note = next((n for n in notes.read_thread_prefix(thread_id, cwd).values() if n.thread == thread_id), None)
        if note is not None:
            return note
    except GitError:
        pass
    raise LitError(f"no thread {thread_id} here: not in the lit DB, no note names it")


def db_thread(db, ref: str, cwd: str | os.PathLike | None = None) -> dict:
    """The DB row of the thread `ref` names (see `resolve`), for the commands that read the whole
    record (show, export, replay). LitError when the thread is known only from a note or a trailer."""
    found = resolve(ref, db=db, cwd=cwd)
    row = rows(db, "SELECT * FROM threads WHERE id = ?", [found.thread])
    if not row:
        has_note = found.commit is not None and notes.read(cwd, found.commit) is not None
        where = (f"; commit {found.commit[:12]} " + ("has its note: lit weave and lit blame read it" if has_note
                                                     else "names it in its trailer only")) if found.commit else ""
        raise LitError(f"thread {found.thread} is not in the lit DB{where}")
    return row[0]
