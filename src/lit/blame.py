"""`lit blame`: git blame, with the step and the reasoning that wrote each line.

One `git blame --porcelain` gives, for each line, the commit that introduced it and the line's
number in that commit (git follows it through later commits, moves and copies). That commit's
note (refs/notes/lit, see docs/ARCHITECTURE.md) maps (path, line) to a step and says why. Where a
commit has no note, the DB's threads/line_map/steps say the same; where neither knows it, the
`Lit-Thread:` trailer of the commit message still names the thread.

Notes and the DB are read by lit.threads (`for_commits`); this module is the command only.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field

from lit import prefetch
from lit.git import notes as git_notes
from lit.git.notes import Note
from lit.git.run import blame_args, finish, start
from lit.terminal import safe
from lit.threads import ZERO_SHA, first_sentence, for_commits, iso


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
    notes: dict[str, Note]  # commit -> its thread, for the commits lit knows


def blame(path: str, *, line_range: str | None = None, rev: str | None = None,
          cwd: str | os.PathLike | None = None, db_path: str | None = None,
          moves: bool = False, copies: bool = False) -> Blame:
    """Blame `path` (at `rev`, or the working tree) and attribute each line to its step.
    git follows the file through renames either way; `moves` (-M) follows lines moved within
    the file, `copies` (-C) lines moved from other files of the same commit. Both are off by
    default: on the benchmark's 3,000-line file they make git blame 2-4x slower."""
    # git checks -L and REV, and says what is wrong in one line.
    args = blame_args(path, line_range=line_range, rev=rev, moves=moves, copies=copies)
    # git blame is most of the time: it may be running already (see prefetch.py); list the notes
    # while it runs.
    proc = prefetch.take(args, cwd) or start(args, cwd)
    blobs = git_notes.listing(cwd)
    lines = parse_porcelain(finish(proc, args))
    notes = for_commits({bl.commit for bl in lines}, cwd, db_path=db_path, db_first=False, blobs=blobs)
    whys: dict[str, tuple[str, str | None, str | None, str | None]] = {}
    for bl in lines:
        if bl.commit == ZERO_SHA:
            bl.kind = "uncommitted"
            continue
        note = notes.get(bl.commit)
        if note is None:
            continue
        bl.thread, bl.source = note.thread, note.source
        step = note.owner(bl.orig_path, bl.orig_line)
        if step is git_notes.MISSING:
            bl.kind = "thread"  # the commit has a thread but no line map for this line
        elif step is None:
            bl.kind = "human"
        else:
            bl.kind, bl.step = "step", step
            if step not in whys:  # once per step, not per line
                whys[step] = _why(note, step)
            bl.why, bl.tool, bl.model, bl.imported = whys[step]
    return Blame(lines, notes)


def _why(note: Note, step_id: str) -> tuple[str, str | None, str | None, str | None]:
    """(first sentence of the why, tool, model, imported format) of one step of a note."""
    info = note.steps.get(step_id)
    if info is None:
        return "", None, None, None
    why = first_sentence(info.why)
    if not why and info.imported:
        why = f"no reasoning recorded in the source ({info.imported})"
    model = info.model or (note.models[0] if len(note.models) == 1 else None)
    return why, info.tool, model, info.imported


def to_json(lines: list[BlameLine], notes: dict[str, Note] | None = None) -> list[dict]:
    """The `lit blame --json` schema (documented in README.md): one object per line. With `notes`
    (--full), each line also carries its step's prompt, whole reasoning, tool input and result."""
    out = [{"line": bl.line, "commit": bl.commit, "path": bl.orig_path, "orig_line": bl.orig_line,
            "thread": bl.thread, "step": bl.step, "kind": bl.kind, "tool": bl.tool, "model": bl.model,
            "why": bl.why or None,
            "source": bl.source, "author": bl.author, "author_time": iso(bl.author_time), "text": bl.text}
           for bl in lines]
    if notes is not None:
        for obj, bl in zip(out, lines, strict=True):
            note = notes.get(bl.commit)
            step = note.steps.get(bl.step or "") if note else None
            prompts = {p.step: p.text for p in note.prompts} if note else {}
            obj.update(prompt=prompts.get(step.prompt) if step else None, reasoning=step.why if step else None,
                       tool_input=step.input if step else None, result=step.result if step else None)
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


def _full_text(note: Note, step_id: str) -> list[str]:
    """--full: the prompt, the whole reasoning and the tool call of one step."""
    step = note.steps.get(step_id)
    if step is None:
        return []
    prompts = {p.step: p.text for p in note.prompts}
    out = []
    if step.prompt in prompts:
        out.append(("prompt", prompts[step.prompt]))
    if step.why:
        out.append(("why", step.why))
    if step.tool:
        out.append((f"call {step.tool}", json.dumps(step.input, ensure_ascii=False, indent=2)))
    if step.result:
        out.append(("result", step.result))
    lines = []
    for label, text in out:
        body = safe(text).rstrip().splitlines() or [""]
        lines.append(f"    {safe(label)}: {body[0]}")
        lines += [f"      {line}" for line in body[1:]]
    return lines


def render(lines: list[BlameLine], *, color: bool = False, width: int | None = None, full: bool = False,
           notes: dict[str, Note] | None = None) -> str:
    """The terminal view: a header line per group of agent-written lines (commit, step, tool and the
    first sentence of why), then its lines; other lines as git blame shows them."""
    width = width or shutil.get_terminal_size((100, 24)).columns
    numw = len(str(lines[-1].line)) if lines else 1
    out: list[str] = []
    shown: set[str | None] = set()  # --full: each step's text once
    for g in groups(lines):
        bl = g.first
        short = bl.commit[:8]
        # Everything in a header comes from a note, the DB or git: made safe for the terminal.
        thread_name, author = safe(bl.thread), _cut(safe(bl.author), 16)
        if bl.kind == "step":
            thread, _, seq = safe(bl.step).partition(".")
            label = safe(f"step {seq}" + (f" {bl.tool}" if bl.tool else "")
                         + (f" ({bl.model or 'model not recorded'}, from {bl.imported})" if bl.imported else ""))
            head = f"{short} {thread} {label}"
            why = _cut(safe(bl.why), max(width - len(head) - 3, 10)) if bl.why else ""
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
            gutter = _paint(f"{short} human ({author}, thread {thread_name})", "human", color)
        elif bl.kind == "thread":
            why_not = "only its trailer: no note, not in the DB" if bl.source == "trailer" else "not in its line map"
            gutter = f"{_paint(short, 'sha', color)} thread {thread_name} ({why_not})"
        elif bl.kind == "uncommitted":
            gutter = _paint("not committed yet", "dim", color)
        else:
            date = time.strftime("%Y-%m-%d", time.localtime(bl.author_time)) if bl.author_time else ""
            gutter = f"{_paint(short, 'sha', color)} ({author} {date})"
        if gutter:
            out.append(gutter)
        if color:
            out += [f"  {_paint(str(x.line).rjust(numw), 'dim', color)} │ {x.text}" for x in g.lines]
        else:
            out += [f"  {x.line:>{numw}} │ {x.text}" for x in g.lines]
    return "\n".join(out)
