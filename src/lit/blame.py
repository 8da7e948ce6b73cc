"""`lit blame`: git blame, with the step and the reasoning that wrote each line.

One `git blame --porcelain` gives, for each line, the commit that introduced it and the line's
number in that commit (git follows it through later commits, moves and copies). That commit's
note (refs/notes/lit, see docs/ARCHITECTURE.md) maps (path, line) to a step and says why. Where a
commit has no note, the DB's threads/line_map/steps say the same; where neither knows it, the
`Lit-Thread:` trailer of the commit message still names the thread.

This module also holds the reader that `lit weave` shares: `commit_notes()` returns, for a set
of commits, a note-shaped dict per commit, from the notes or else from the DB.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lit import prefetch
from lit.errors import LitError
from lit.render import terminal_safe

NOTES_REF = "refs/notes/lit"
ZERO_SHA = "0" * 40


# --- git ------------------------------------------------------------------------------------------


def git(args: list[str], cwd: str | os.PathLike | None = None, input: bytes | None = None,
        check: bool = True) -> bytes:
    """Run git; a failure becomes a one-line LitError with git's own message."""
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True)
    except FileNotFoundError as e:
        raise LitError("git is not installed (lit needs git on PATH)") from e
    if check and proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise LitError(f"git {args[0]}: {msg[-1] if msg else 'failed'}")
    return proc.stdout


def cat_file_batch(objects: list[str], cwd: str | os.PathLike | None = None) -> dict[str, bytes]:
    """The contents of many objects in one `git cat-file --batch` call."""
    if not objects:
        return {}
    out = git(["cat-file", "--batch"], cwd=cwd, input=("\n".join(objects) + "\n").encode())
    result: dict[str, bytes] = {}
    pos = 0
    for name in objects:
        nl = out.index(b"\n", pos)
        header = out[pos:nl].split()
        pos = nl + 1
        if len(header) < 3 or header[1] == b"missing":
            continue
        size = int(header[2])
        result[name] = out[pos:pos + size]
        pos += size + 1  # the content is followed by a newline
    return result


# --- notes, the DB, trailers: a note-shaped dict per commit ------------------------------------------


def _read_note_json(data: bytes) -> dict | None:
    try:
        note = json.loads(data.decode("utf-8", "replace"))
    except ValueError:
        return None  # a note that is not lit's (or is damaged) is ignored, like no note
    # the same test as lit.git.notes.read: lit's notes are versioned JSON objects
    return note if isinstance(note, dict) and note.get("version") and "thread" in note else None


def notes_listing(cwd: str | os.PathLike | None = None) -> dict[str, str]:
    """commit -> note blob, for every commit with a lit note (one `git notes list`)."""
    listing = git(["notes", f"--ref={NOTES_REF}", "list"], cwd=cwd, check=False).decode()
    return {parts[1]: parts[0] for parts in map(str.split, listing.splitlines()) if len(parts) == 2}


def read_notes(commits: Iterable[str] | None, cwd: str | os.PathLike | None = None,
               listing: dict[str, str] | None = None) -> dict[str, dict]:
    """The lit notes of `commits` (full SHAs; None: every annotated commit), read with two git
    calls whatever their number: `git notes list` maps commits to note blobs, one cat-file reads
    them all. (lit.git.notes.read reads one note with one `git notes show`: right for one
    commit, 300 processes for a blame of 300 commits.)"""
    if listing is None:
        listing = notes_listing(cwd)
    if commits is None:
        blobs = listing
    else:
        blobs = {c: listing[c] for c in commits if c in listing}
    contents = cat_file_batch(sorted(set(blobs.values())), cwd=cwd)
    notes = {}
    for commit, blob in blobs.items():
        note = _read_note_json(contents.get(blob, b""))
        if note is not None:
            note.setdefault("source", "note")  # where it was read; readers say so
            notes[commit] = note
    return notes


def _db_file(db_path: str | None) -> Path | None:
    """store.resolve_db_path's rule, without importing store (and sqlite-utils, ~0.2 s): the DB
    file if it exists, None if not; a --db that was named and does not exist is an error."""
    env = os.environ.get("LIT_DB")
    if db_path or env:
        path = Path(db_path or env or "").expanduser()
    else:
        from lit.paths import default_db_path

        path = default_db_path()
    if not path.exists():
        if db_path:
            raise LitError(f"no lit DB at {path}")
        return None
    return path


def open_db(db_path: str | None):
    """lit's DB (sqlite-utils) if there is one (None when there is none: notes alone are
    enough). A --db that was named explicitly and does not exist is an error."""
    path = _db_file(db_path)
    if path is None:
        return None
    from lit import store

    return store.read(path)


class DBReader:
    """The two calls note_from_db and db_notes make (`query`, `execute`) on plain sqlite3: lit
    blame reads a few rows and should not pay sqlite-utils' import for them."""

    def __init__(self, path: Path):
        from lit.dbfile import open_read_only

        self.conn, _ = open_read_only(path)
        self.path = path

    def execute(self, sql: str, params: Iterable = ()) -> sqlite3.Cursor:
        try:
            return self.conn.execute(sql, list(params))
        except sqlite3.Error as e:
            raise LitError(f"cannot read the lit DB at {self.path}: {e} (run any lit command to migrate it)") from e

    def query(self, sql: str, params: Iterable = ()) -> Iterable[dict]:
        cur = self.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _iso(ts: float | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts else None


def _json_or(value: str | None) -> Any:
    if not value:
        return {}
    try:
        return json.loads(value)
    except ValueError:
        return value


def _imported(step: dict) -> dict:
    """A step read from another tool's records (lit.importers.attribution keeps
    `{"imported": FORMAT, "agent": TOOL}` in its raw column): its source and agent, so readers can
    say the source recorded no reasoning for it. {} for lit's own steps."""
    raw = step.get("raw")
    if not raw or '"imported"' not in raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("imported"), str):
        return {}
    out = {"imported": data["imported"][:40]}
    if isinstance(data.get("agent"), str):
        out["agent"] = data["agent"][:200]
    return out


def _note_steps(steps: list[dict]) -> tuple[list[dict], dict[str, dict]]:
    """The prompts and note steps of one thread's steps (in order): each tool call with the
    reasoning since the previous one, and the agent's closing words as a text step."""
    results = {s["tool_use_id"]: s for s in steps if s["kind"] == "tool_result" and s.get("tool_use_id")}
    prompts, note_steps = [], {}
    why: list[str] = []
    last_said: dict | None = None  # the last thinking/text step since the last tool call
    prompt_id = None

    def answer() -> None:
        # Reasoning no tool call follows (the agent's answer before the next prompt, or at the
        # end): kept as a text step, so a page shows how the thread ended.
        if why and last_said is not None:
            note_steps[last_said["id"]] = {"seq": last_said["seq"], "kind": "text", "why": "\n\n".join(why),
                                           "prompt": prompt_id}

    for s in steps:
        if s["kind"] == "prompt":
            answer()
            prompts.append({"step": s["id"], "text": s.get("text") or ""})
            prompt_id, why, last_said = s["id"], [], None
        elif s["kind"] in ("thinking", "text"):
            if s.get("text"):
                why.append(s["text"])
                last_said = s
        elif s["kind"] == "tool_call":
            result = results.get(s.get("tool_use_id"))
            imported = _imported(s)
            note_steps[s["id"]] = {
                "seq": s["seq"], "kind": "tool_call", "tool": s.get("tool_name") or imported.get("agent"),
                "input": _json_or(s.get("tool_input")), "why": "\n\n".join(why), "prompt": prompt_id,
                "result": (result.get("text") or "")[:500] if result else None,
                "is_error": bool(result and result.get("is_error")),
                **({"model": s["model"]} if s.get("model") else {}), **imported,
            }
            why, last_said = [], None
    answer()
    for s in steps:  # a cited step that is neither a tool call nor closing words
        imported = _imported(s)
        note_steps.setdefault(s["id"], {"seq": s["seq"], "kind": s["kind"], "why": s.get("text") or "",
                                        "_uncited": True, **({"model": s["model"]} if s.get("model") else {}),
                                        **({**imported, "tool": s.get("tool_name") or imported.get("agent")}
                                           if imported else {})})
    return prompts, note_steps


def note_from_db(db, thread: dict) -> dict:
    """A note-shaped dict (the contract's format) for a thread in the DB, so blame and weave read
    one shape. Unlike a note it holds every tool call of the thread, not only the cited ones; and
    steps of earlier threads that the line map cites (a line written before one commit but
    committed in the next)."""
    steps = list(db.query("SELECT * FROM steps WHERE thread_id = ? ORDER BY seq", [thread["id"]]))
    prompts, note_steps = _note_steps(steps)
    cited_elsewhere: set[str] = set()
    files: dict[str, list] = {}
    commit = thread.get("commit_sha")
    if commit:
        for row in db.query("SELECT path, line_start, line_end, step_id FROM line_map WHERE commit_sha = ?"
                            " ORDER BY path, line_start", [commit]):
            files.setdefault(row["path"], []).append([row["line_start"], row["line_end"], row["step_id"]])
            sid = row["step_id"]
            if sid and sid not in note_steps:
                cited_elsewhere.add(sid)
            elif sid:
                note_steps[sid].pop("_uncited", None)
    for other in {sid.rsplit(".", 1)[0] for sid in cited_elsewhere}:
        other_prompts, other_steps = _note_steps(list(db.query(
            "SELECT * FROM steps WHERE thread_id = ? ORDER BY seq", [other])))
        for sid in cited_elsewhere:
            if sid in other_steps:
                note_steps[sid] = {**other_steps[sid], "thread": other}
                note_steps[sid].pop("_uncited", None)
    note_steps = {k: v for k, v in note_steps.items() if not v.pop("_uncited", False)}
    if not prompts:
        # A thread opened after a commit continues the prompt before it: say which.
        row = db.execute("SELECT id, text FROM steps WHERE session_id = ? AND kind = 'prompt' AND created_at <= ?"
                         " ORDER BY created_at DESC LIMIT 1",
                         [thread.get("session_id"), thread.get("started_at") or 0]).fetchone()
        if row:
            prompts = [{"step": row[0], "text": row[1] or "", "continued": True}]
    usage_row = db.execute(
        """SELECT COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),
                  COALESCE(SUM(cache_creation_input_tokens), 0), COALESCE(SUM(cache_read_input_tokens), 0),
                  group_concat(DISTINCT model)
           FROM exchanges WHERE thread_id = ?""", [thread["id"]]).fetchone()
    agent_row = db.execute("SELECT agent FROM sessions WHERE id = ?", [thread.get("session_id")]).fetchone()
    return {
        "version": 1,
        "thread": thread["id"],
        "session": thread.get("session_id"),
        "commit": commit,
        "agent": agent_row[0] if agent_row else None,
        "models": sorted(set(filter(None, (usage_row[4] or "").split(","))) | {
            m for (m,) in db.execute("SELECT DISTINCT model FROM steps WHERE thread_id = ? AND model IS NOT NULL"
                                     " AND raw LIKE '%\"imported\"%'", [thread["id"]]).fetchall()}),
        "started_at": _iso(thread.get("started_at")),
        "ended_at": _iso(thread.get("bound_at") or thread.get("ended_at")),
        "usage": {"input_tokens": usage_row[0], "output_tokens": usage_row[1],
                  "cache_creation_input_tokens": usage_row[2], "cache_read_input_tokens": usage_row[3]},
        "prompts": prompts,
        "files": files,
        "steps": note_steps,
        "truncated": False,
        "source": "db",
    }


def db_notes(db, commits: Iterable[str]) -> dict[str, dict]:
    """Note-shaped dicts from the DB for the commits it has a bound thread for."""
    commits = list(commits)
    found: dict[str, dict] = {}
    for i in range(0, len(commits), 500):  # SQLite's variable limit
        chunk = commits[i:i + 500]
        marks = ",".join("?" * len(chunk))
        for thread in db.query(f"SELECT * FROM threads WHERE commit_sha IN ({marks})", chunk):
            found[thread["commit_sha"]] = note_from_db(db, thread)
    return found


def trailer_threads(commits: Iterable[str], cwd: str | os.PathLike | None = None) -> dict[str, str]:
    """commit -> thread id from the `Lit-Thread:` trailer, for commits that have neither a note nor
    a DB row (a squash merge on a host drops notes, keeps messages). One git call."""
    commits = list(commits)
    if not commits:
        return {}
    out = git(["log", "--no-walk=unsorted", "--stdin",
               "--format=%H%x1f%(trailers:key=Lit-Thread,valueonly,separator=%x2c)%x1e"],
              cwd=cwd, input=("\n".join(commits) + "\n").encode()).decode("utf-8", "replace")
    found = {}
    for record in out.split("\x1e"):
        sha, _, value = record.strip().partition("\x1f")
        value = value.strip().split(",")[0].strip()
        if sha and value:
            found[sha] = value
    return found


def commit_notes(commits: Iterable[str], cwd: str | os.PathLike | None = None,
                 db_path: str | None = None, db=None, listing: dict[str, str] | None = None) -> dict[str, dict]:
    """A note-shaped dict for each commit that lit knows: its note, else its thread in the DB,
    else a stub {"thread": id, "files": {}} from its trailer. Commits lit does not know are absent."""
    commits = [c for c in dict.fromkeys(commits) if c and c != ZERO_SHA]
    notes = read_notes(commits, cwd=cwd, listing=listing)
    missing = [c for c in commits if c not in notes]
    if missing:
        if db is None:
            path = _db_file(db_path)
            db = DBReader(path) if path else None
        if db is not None:
            notes.update(db_notes(db, missing))
        missing = [c for c in missing if c not in notes]
    for commit, thread in trailer_threads(missing, cwd=cwd).items():
        notes[commit] = {"version": 1, "thread": thread, "commit": commit, "files": {}, "steps": {},
                         "prompts": [], "source": "trailer"}
    return notes


# --- the line map ------------------------------------------------------------------------------


class LineMap:
    """(path, line) -> step id, None (a person), or MISSING (not in the map), for one note."""

    MISSING = object()

    def __init__(self, note: dict):
        self._files: dict[str, list] = {}
        for path, ranges in (note.get("files") or {}).items():
            self._files[path] = sorted((r for r in ranges if isinstance(r, list) and len(r) == 3),
                                       key=lambda r: r[0])

    def lookup(self, path: str, line: int):
        for start, end, step in self._files.get(path, ()):
            if start <= line <= end:
                return step
            if start > line:
                break
        return self.MISSING


def first_sentence(text: str | None) -> str:
    """The first sentence of the first non-empty line (markdown markers and all)."""
    for line in (text or "").splitlines():
        line = line.strip().lstrip("#>*- ").strip()
        if line:
            m = re.search(r"(?<=[.!?])\s", line)
            return line[: m.start()] if m else line
    return ""


# --- blame -------------------------------------------------------------------------------------------


@dataclass
class BlameLine:
    line: int  # in the blamed file (at REV)
    commit: str  # full SHA; 40 zeros for uncommitted lines
    orig_path: str
    orig_line: int  # the line's number in `commit`
    text: str
    author: str = ""
    author_time: int = 0
    summary: str = ""
    thread: str | None = None
    step: str | None = None
    kind: str = "commit"  # step | human | thread | commit | uncommitted
    why: str = ""
    tool: str | None = None
    source: str | None = None  # where lit read the thread: note | db | trailer
    model: str | None = None  # the model that wrote the step, where the record says
    imported: str | None = None  # the format the step was imported from (git-ai, agent-trace)


def parse_porcelain(data: bytes) -> list[BlameLine]:
    """`git blame --porcelain` -> one BlameLine per line (commit headers are given once per
    commit, the first time it appears, and apply to all its later lines)."""
    info: dict[str, dict] = {}
    lines: list[BlameLine] = []
    it = iter(data.decode("utf-8", "replace").split("\n"))  # decoded once: 3,000 lines, one call
    for raw in it:
        if not raw:
            continue
        head = raw.split(" ")
        sha, orig, final = head[0], int(head[1]), int(head[2])
        meta = info.setdefault(sha, {})
        filename = meta.get("filename", "")
        text = ""
        for field_line in it:
            if field_line.startswith("\t"):
                text = field_line[1:]
                break
            key, _, value = field_line.partition(" ")
            meta[key] = value
            if key == "filename":  # can differ between lines of one commit (copies): per line
                filename = value
        lines.append(BlameLine(line=final, commit=sha, orig_path=filename, orig_line=orig, text=text,
                               author=meta.get("author", ""), author_time=int(meta.get("author-time", 0) or 0),
                               summary=meta.get("summary", "")))
    return lines


@dataclass
class Blame:
    lines: list[BlameLine]
    notes: dict[str, dict]  # commit -> its note-shaped dict, for the commits lit knows


def blame(path: str, *, line_range: str | None = None, rev: str | None = None,
          cwd: str | os.PathLike | None = None, db_path: str | None = None,
          moves: bool = False, copies: bool = False) -> Blame:
    """Blame `path` (at `rev`, or the working tree) and attribute each line to its step.
    git follows the file through renames either way; `moves` (-M) follows lines moved within
    the file, `copies` (-C) lines moved from other files of the same commit. Both are off by
    default: on the benchmark's 3,000-line file they make git blame 2-4x slower."""
    # git checks -L and REV, and says what is wrong in one line.
    args = prefetch.blame_args(path, line_range=line_range, rev=rev, moves=moves, copies=copies)
    # git blame is most of the time: it may be running already (see prefetch.py); list the notes
    # while it runs.
    proc = prefetch.take(args, cwd)
    if proc is None:
        try:
            proc = subprocess.Popen(["git", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except FileNotFoundError as e:
            raise LitError("git is not installed (lit needs git on PATH)") from e
    listing = notes_listing(cwd)
    out, err = proc.communicate()
    if proc.returncode:
        msg = err.decode("utf-8", "replace").strip().splitlines()
        raise LitError(f"git blame: {msg[-1] if msg else 'failed'}")
    lines = parse_porcelain(out)
    notes = commit_notes({bl.commit for bl in lines}, cwd=cwd, db_path=db_path, listing=listing)
    maps = {commit: LineMap(note) for commit, note in notes.items()}
    whys: dict[str, tuple[str, str | None, str | None, str | None]] = {}
    for bl in lines:
        if bl.commit == ZERO_SHA:
            bl.kind = "uncommitted"
            continue
        note = notes.get(bl.commit)
        if note is None:
            continue
        bl.thread, bl.source = note.get("thread"), note.get("source")
        step = maps[bl.commit].lookup(bl.orig_path, bl.orig_line)
        if step is LineMap.MISSING:
            bl.kind = "thread"  # the commit has a thread but no line map for this line
        elif step is None:
            bl.kind = "human"
        else:
            bl.kind, bl.step = "step", step
            if step not in whys:  # once per step, not per line
                info = (note.get("steps") or {}).get(step) or {}
                models = note.get("models") or []
                why = first_sentence(info.get("why"))
                if not why and info.get("imported"):
                    why = f"no reasoning recorded in the source ({info['imported']})"
                whys[step] = (why, info.get("tool"), info.get("model") or (models[0] if len(models) == 1 else None),
                              info.get("imported"))
            bl.why, bl.tool, bl.model, bl.imported = whys[step]
    return Blame(lines, notes)


def to_json(lines: list[BlameLine], notes: dict[str, dict] | None = None) -> list[dict]:
    """The `lit blame --json` schema (documented in README.md): one object per line. With `notes`
    (--full), each line also carries its step's prompt, whole reasoning, tool input and result."""
    out = [{"line": bl.line, "commit": bl.commit, "path": bl.orig_path, "orig_line": bl.orig_line,
            "thread": bl.thread, "step": bl.step, "kind": bl.kind, "tool": bl.tool, "model": bl.model,
            "why": bl.why or None,
            "source": bl.source, "author": bl.author, "author_time": _iso(bl.author_time), "text": bl.text}
           for bl in lines]
    if notes is not None:
        for obj, bl in zip(out, lines, strict=True):
            note = notes.get(bl.commit) or {}
            step = (note.get("steps") or {}).get(bl.step or "") or {}
            prompts = {p.get("step"): p.get("text") for p in note.get("prompts") or []}
            obj.update(prompt=prompts.get(step.get("prompt")), reasoning=step.get("why"),
                       tool_input=step.get("input"), result=step.get("result"))
    return out


# --- the terminal ------------------------------------------------------------------------------------


@dataclass
class Group:
    lines: list[BlameLine] = field(default_factory=list)

    @property
    def first(self) -> BlameLine:
        return self.lines[0]


def groups(lines: list[BlameLine]) -> list[Group]:
    """Consecutive lines from the same step (or the same commit, for lines without a step)."""
    out: list[Group] = []
    last = None
    for bl in lines:
        key = (bl.commit, bl.step, bl.kind)
        if key == last:
            out[-1].lines.append(bl)
        else:
            out.append(Group([bl]))
            last = key
    return out


_COLOURS = {"sha": "33", "step": "36", "why": "1", "human": "35", "dim": "2", "thread": "36"}


def _paint(text: str, what: str, color: bool) -> str:
    return f"\x1b[{_COLOURS[what]}m{text}\x1b[0m" if color and text else text


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _full_text(note: dict, step_id: str) -> list[str]:
    """--full: the prompt, the whole reasoning and the tool call of one step."""
    step = (note.get("steps") or {}).get(step_id) or {}
    prompts = {p.get("step"): p.get("text", "") for p in note.get("prompts") or []}
    out = []
    if step.get("prompt") in prompts:
        out.append(("prompt", prompts[step["prompt"]]))
    if step.get("why"):
        out.append(("why", step["why"]))
    if step.get("tool"):
        out.append((f"call {step['tool']}", json.dumps(step.get("input"), ensure_ascii=False, indent=2)))
    if step.get("result"):
        out.append(("result", step["result"]))
    lines = []
    for label, text in out:
        body = terminal_safe(text).rstrip().splitlines() or [""]
        lines.append(f"    {label}: {body[0]}")
        lines += [f"      {line}" for line in body[1:]]
    return lines


def render(lines: list[BlameLine], *, color: bool = False, width: int | None = None, full: bool = False,
           notes: dict[str, dict] | None = None) -> str:
    """The terminal view: a header line per group of agent-written lines (commit, step, tool and the
    first sentence of why), then its lines; other lines as git blame shows them."""
    width = width or shutil.get_terminal_size((100, 24)).columns
    numw = len(str(lines[-1].line)) if lines else 1
    out: list[str] = []
    shown: set[str | None] = set()  # --full: each step's text once
    for g in groups(lines):
        bl = g.first
        short = bl.commit[:8]
        if bl.kind == "step":
            thread, _, seq = (bl.step or "").partition(".")
            label = terminal_safe(f"step {seq}" + (f" {bl.tool}" if bl.tool else "")
                                  + (f" ({bl.model or 'model not recorded'}, from {bl.imported})"
                                     if bl.imported else ""))
            head = f"{short} {thread} {label}"
            why = _cut(terminal_safe(bl.why), max(width - len(head) - 3, 10)) if bl.why else ""
            out.append(f"{_paint(short, 'sha', color)} {_paint(thread, 'thread', color)} "
                       f"{_paint(label, 'step', color)}" + (f" · {_paint(why, 'why', color)}" if why else ""))
            if full and notes and bl.commit in notes:
                if bl.step in shown:
                    out.append(_paint("    (the same step as above)", "dim", color))
                else:
                    out += [_paint(x, "dim", color) for x in _full_text(notes[bl.commit], bl.step or "")]
                    shown.add(bl.step)
            gutter = ""
        elif bl.kind == "human":
            gutter = _paint(f"{short} human ({_cut(bl.author, 16)}, thread {bl.thread})", "human", color)
        elif bl.kind == "thread":
            why_not = "only its trailer: no note, not in the DB" if bl.source == "trailer" else "not in its line map"
            gutter = f"{_paint(short, 'sha', color)} thread {bl.thread} ({why_not})"
        elif bl.kind == "uncommitted":
            gutter = _paint("not committed yet", "dim", color)
        else:
            date = time.strftime("%Y-%m-%d", time.localtime(bl.author_time)) if bl.author_time else ""
            gutter = f"{_paint(short, 'sha', color)} ({_cut(bl.author, 16)} {date})"
        if gutter:
            out.append(gutter)
        if color:
            out += [f"  {_paint(str(x.line).rjust(numw), 'dim', color)} │ {x.text}" for x in g.lines]
        else:
            out += [f"  {x.line:>{numw}} │ {x.text}" for x in g.lines]
    return "\n".join(out)
