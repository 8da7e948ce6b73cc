"""`lit weave`: a commit (or a range, or a thread) as one self-contained HTML page, Docco-style.

Each row of the page is one step of the thread: on the left the prompt or the reasoning before a
tool call (markdown), on the right the parts of the diff that this tool call wrote (the line map
says which). Lines a person wrote go to a row of their own; lines no map covers (a commit without
a thread, deletions) to a last row. Diff lines link to their step, steps list their lines back.

The data is a note-shaped dict per commit: from the DB when it has the thread (every step), else
the note (`lit.threads.for_commits`), so a clone with refs/notes/lit and no DB gets the page too.
The HTML is templates/weave.html (autoescaped); markdown and code go through lit.render.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from markupsafe import Markup

from lit import threads
from lit.errors import LitError
from lit.git import notes as git_notes
from lit.git.linemap import line_runs
from lit.git.notes import Note, Step
from lit.git.run import git, rev, unquote
from lit.paths import repo_relative, weave_dir
from lit.redact import redact_lines, redact_text
from lit.render import highlight_lines, pygments_css, template_env

HUMAN = "human"  # owner of lines a person wrote (null in the line map)
OTHER = "other"  # owner of lines the line map does not cover (no thread, deletions)


@dataclass
class DiffLine:
    kind: str  # "+", "-" or " "
    old: int | None
    new: int | None
    text: str
    html: Markup = Markup("")
    owner: str = OTHER  # a step id, HUMAN or OTHER
    # What the template prints, set by _dress (a 5,000-line diff renders faster without logic per line)
    cls: str = ""
    anchor: str = ""
    href: str = ""
    mark: str = " "


@dataclass
class FileDiff:
    index: int
    path: str  # new side ("" when deleted: then old_path)
    old_path: str
    status: str  # added | deleted | modified | renamed | binary
    hunks: list[list[DiffLine]] = field(default_factory=list)
    added: int = 0
    removed: int = 0

    @property
    def name(self) -> str:
        return self.path or self.old_path


@dataclass
class Fragment:
    """Consecutive diff lines of one hunk written by one owner, with their context."""
    file: FileDiff
    owner: str
    lines: list[DiffLine]
    anchor: str = ""  # set on the first fragment of each file (the file index links to it)

    @property
    def first_new(self) -> int | None:
        return next((ln.new for ln in self.lines if ln.new is not None), None)


@dataclass
class Row:
    anchor: str
    kind: str  # prompt | tool_call | step | human | other
    title: str
    prose: str = ""  # markdown
    tool: str | None = None
    target: str = ""  # the file or command the tool call acted on
    input_json: str = ""
    result: str | None = None
    is_error: bool = False
    seq: int = 0
    fragments: list[Fragment] = field(default_factory=list)
    written: list[tuple[str, str]] = field(default_factory=list)  # (label, anchor) of the lines it wrote


@dataclass
class Chapter:
    index: int
    commit: str | None
    subject: str = ""
    body: str = ""
    author: str = ""
    date: str = ""
    note: Note | None = None
    files: list[FileDiff] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)

    @property
    def short(self) -> str:
        return (self.commit or "")[:8]

    @property
    def anchor(self) -> str:
        return f"c{self.index}"

    @property
    def thread(self) -> str | None:
        return self.note.thread if self.note else None

    @property
    def duration(self) -> str:
        if not self.note or not self.note.started_at or not self.note.ended_at:
            return ""
        try:
            start = datetime.fromisoformat(self.note.started_at.replace("Z", "+00:00"))
            end = datetime.fromisoformat(self.note.ended_at.replace("Z", "+00:00"))
            secs = int((end - start).total_seconds())
        except (TypeError, ValueError, OverflowError):
            return ""
        return f"{secs // 60} min {secs % 60:02d} s" if secs >= 60 else f"{secs} s"

    @property
    def tokens(self) -> str:
        u = self.note.usage if self.note else {}
        if not u:
            return ""
        parts = [f"{u.get('input_tokens', 0):,} in", f"{u.get('output_tokens', 0):,} out"]
        if u.get("cache_read_input_tokens"):
            parts.append(f"{u['cache_read_input_tokens']:,} cache read")
        if u.get("cache_creation_input_tokens"):
            parts.append(f"{u['cache_creation_input_tokens']:,} cache write")
        return ", ".join(parts)


# --- the diff -----------------------------------------------------------------------------------------

_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")


def _side(path: str) -> str:
    path = unquote(path.split("\t")[0])
    return "" if path == "/dev/null" else path[2:] if path[:2] in ("a/", "b/") else path


def parse_diff(text: str) -> list[FileDiff]:
    """A unified diff (`git diff -p -M`) -> files with numbered hunk lines."""
    files: list[FileDiff] = []
    cur: FileDiff | None = None
    old = new = 0
    for line in text.split("\n"):
        if line.startswith("diff --git "):
            m = re.match(r'diff --git (?:"?a/)(.*?)"? (?:"?b/)(.*?)"?$', line)
            a, b = (m.group(1), m.group(2)) if m else ("", "")
            cur = FileDiff(index=len(files), path=b, old_path=a, status="modified")
            files.append(cur)
        elif cur is None:
            continue
        elif line.startswith("@@"):
            m = _HUNK.match(line)
            if m:
                old, new = int(m.group(1)), int(m.group(2))
                cur.hunks.append([])
        elif cur.hunks and line[:1] in ("+", "-", " "):  # file headers come before the first hunk
            kind = line[0]
            if kind == "+":
                cur.hunks[-1].append(DiffLine("+", None, new, line[1:]))
                new += 1
                cur.added += 1
            elif kind == "-":
                cur.hunks[-1].append(DiffLine("-", old, None, line[1:]))
                old += 1
                cur.removed += 1
            else:
                cur.hunks[-1].append(DiffLine(" ", old, new, line[1:]))
                old += 1
                new += 1
        elif line.startswith("--- "):
            cur.old_path = _side(line[4:])
        elif line.startswith("+++ "):
            cur.path = _side(line[4:])
        elif line.startswith("new file mode"):
            cur.status = "added"
        elif line.startswith("deleted file mode"):
            cur.status, cur.path = "deleted", ""
        elif line.startswith("rename from "):
            cur.status, cur.old_path = "renamed", unquote(line[12:])
        elif line.startswith("rename to "):
            cur.path = unquote(line[10:])
        elif line.startswith("Binary files"):
            cur.status = "binary"
    for f in files:
        if f.status == "deleted":
            f.path = ""
    return files


def _highlight(files: list[FileDiff]) -> None:
    """Colour each file's lines: the new side (context and added) lexed as one text, the old side
    (removed) as another, so multi-line strings and comments colour as in the file."""
    for f in files:
        lexer_path = f.path or f.old_path
        new_side = [ln for h in f.hunks for ln in h if ln.kind != "-"]
        old_side = [ln for h in f.hunks for ln in h if ln.kind == "-"]
        for side in (new_side, old_side):
            # The page may be shared: secrets in the code itself are hidden there too.
            texts = redact_lines([x.text for x in side])
            for ln, html in zip(side, highlight_lines(lexer_path, texts), strict=True):
                ln.html = html


def commit_diff(commit: str, cwd: str | os.PathLike | None = None) -> list[FileDiff]:
    """The commit's diff against its first parent (or the empty tree for a root commit)."""
    parents = git(["rev-list", "--parents", "-n", "1", commit], cwd).split()[1:]
    base = ["diff", "-M", "-p", "--no-color", "--no-ext-diff", "--no-textconv", "-U3"]
    args = [*base, parents[0], commit] if parents else ["diff-tree", "--root", *base[1:], commit]
    text = git(["-c", "core.quotePath=false", *args], cwd, text=False).decode("utf-8", "replace")
    if not parents:  # diff-tree prints the commit id first
        text = text.split("\n", 1)[1] if text.startswith(commit) else text
    return parse_diff(text)


# --- steps and fragments ---------------------------------------------------------------------------------


def attribute(files: list[FileDiff], note: Note | None) -> None:
    """Set each added line's owner from the line map (step id, HUMAN, or OTHER)."""
    if not note:
        return
    for f in files:
        for hunk in f.hunks:
            for ln in hunk:
                if ln.kind == "+":
                    owner = note.owner(f.path, ln.new)
                    ln.owner = OTHER if owner is git_notes.MISSING else HUMAN if owner is None else owner


def fragments(f: FileDiff) -> list[Fragment]:
    """Cut each hunk where the owner of its changes changes. A run of removed lines goes with the
    added lines that replace them (or to OTHER when nothing replaces them); context lines go with
    the change after them, and the hunk's last context with the last change."""
    out: list[Fragment] = []
    for hunk in f.hunks:
        start = len(out)
        pending: list[DiffLine] = []
        i = 0
        while i < len(hunk):
            if hunk[i].kind == " ":
                pending.append(hunk[i])
                i += 1
                continue
            j = i
            while j < len(hunk) and hunk[j].kind != " ":
                j += 1
            block = hunk[i:j]
            removed = [ln for ln in block if ln.kind == "-"]
            runs: list[tuple[str, list[DiffLine]]] = []
            for ln in block:
                if ln.kind == "+":
                    if runs and runs[-1][0] == ln.owner:
                        runs[-1][1].append(ln)
                    else:
                        runs.append((ln.owner, [ln]))
            if not runs:
                runs = [(OTHER, [])]
            runs[0] = (runs[0][0], removed + runs[0][1])
            for ln in removed:
                ln.owner = runs[0][0]
            for owner, lines in runs:
                if len(out) > start and out[-1].owner == owner:
                    out[-1].lines += pending + lines
                else:
                    out.append(Fragment(f, owner, pending + lines))
                pending = []
            i = j
        if pending and len(out) > start:
            out[-1].lines += pending
    return out


def _target(tool_input, files: list[FileDiff] | None = None, root: str | None = None) -> str:
    """What a step's head names: the file it wrote, as git shows it (relative to the repository,
    also when the agent ran in a checkout elsewhere), else the command or pattern it ran."""
    if isinstance(tool_input, dict):
        for key in ("file_path", "path", "notebook_path", "command", "pattern", "url"):
            value = tool_input.get(key)
            if isinstance(value, str):
                if key in ("file_path", "path", "notebook_path") and os.path.isabs(value):
                    names = [f.name for f in files or [] if value.endswith("/" + f.name)]
                    return max(names, key=len) if names else repo_relative(value, root)
                return value
    return ""


def _seq(step_id: str) -> int:
    tail = step_id.rpartition(".")[2]
    return int(tail) if tail.isdigit() else 0


def build_rows(chapter: Chapter, root: str | None = None) -> list[Row]:
    """The chapter's rows in thread order: prompts and tool calls from the note, each with the
    fragments it owns; then the person's lines; then the lines nobody is known for."""
    note = chapter.note
    rows = _step_rows(note, chapter.files, root) if note else {}
    human = Row(anchor=f"human-{chapter.anchor}", kind="human", title="Written by a person",
                prose="Lines changed by hand in this commit, not by a tool call of the thread.")
    other = Row(anchor=f"other-{chapter.anchor}", kind="other",
                title="Changes" if not note else "Changes outside the line map",
                prose="" if not note else "Removed lines and lines the line map does not cover.")
    _hand_out_fragments(chapter, rows, human, other)
    ordered = sorted(rows.values(), key=lambda r: r.seq)
    for row in [*ordered, human, other]:
        row.written.extend(_written(row, chapter))
    _dress(chapter)
    return [*ordered, *(r for r in (human, other) if r.fragments)]


def _step_rows(note: Note, files: list[FileDiff], root: str | None) -> dict[str, Row]:
    """step id -> its row, for the note's prompts and steps."""
    rows: dict[str, Row] = {}
    for p in note.prompts:
        sid = p.step or ""
        rows[sid] = Row(anchor=f"step-{sid}", kind="prompt", title="Prompt", prose=p.text, seq=_seq(sid))
    for sid, s in note.steps.items():
        if s.kind != "prompt":
            rows[sid] = _step_row(sid, s, files, root)
        elif sid not in rows:
            rows[sid] = Row(anchor=f"step-{sid}", kind="prompt", title="Prompt",
                            prose=s.text or "", seq=s.seq or _seq(sid))
    return rows


def _step_row(sid: str, s: Step, files: list[FileDiff], root: str | None) -> Row:
    """The row of a tool call or of the closing words; an imported step without reasoning says
    where it came from."""
    tool = s.tool
    prose = s.why
    if not prose and s.imported:
        model = f", model {s.model}" if s.model else ""
        prose = f"*No reasoning recorded in the source ({s.imported}{model}).*"
    return Row(
        anchor=f"step-{sid}", kind="tool_call" if tool else "step",
        title=f"Step {s.seq or _seq(sid)}" + (f": {tool}" if tool else f" ({s.kind})"),
        prose=prose or "", tool=tool, target=_target(s.input, files, root),
        input_json=json.dumps(s.input, ensure_ascii=False, indent=2) if s.input else "",
        result=s.result, is_error=s.is_error, seq=s.seq or _seq(sid))


def _hand_out_fragments(chapter: Chapter, rows: dict[str, Row], human: Row, other: Row) -> None:
    """Each fragment of the chapter's diff to the row of its owner (a step cited by the line map
    but cut from the note gets a row of its own); the first fragment of each file carries the
    file's anchor."""
    seen_files: set[int] = set()
    for f in chapter.files:
        for frag in fragments(f):
            if f.index not in seen_files:
                frag.anchor = f"{chapter.anchor}-f{f.index}"
                seen_files.add(f.index)
            if frag.owner == HUMAN:
                row = human
            elif frag.owner == OTHER:
                row = other
            else:
                row = rows.get(frag.owner)
                if row is None:  # cited by the map, cut from the note
                    row = rows[frag.owner] = Row(anchor=f"step-{frag.owner}", kind="step",
                                                 title=f"Step {_seq(frag.owner)}", seq=_seq(frag.owner),
                                                 prose="*(this step is not in the note)*")
            row.fragments.append(frag)


def _written(row: Row, chapter: Chapter) -> list[tuple[str, str]]:
    """(label, anchor) of each run of lines the row's owner added, file by file: `app.py 3–7`."""
    by_file: dict[int, list[int]] = {}
    for frag in row.fragments:
        by_file.setdefault(frag.file.index, []).extend(
            ln.new for ln in frag.lines if ln.kind == "+" and ln.owner == frag.owner)
    out = []
    for fi, numbers in by_file.items():
        name = chapter.files[fi].name
        for a, b in line_runs(numbers):
            label = f"{name} {a}" if a == b else f"{name} {a}–{b}"
            out.append((label, f"{chapter.anchor}-f{fi}-L{a}"))
    return out


def _dress(chapter: Chapter) -> None:
    """Each diff line's class, anchor, link (to its step) and marker, for the template."""
    for f in chapter.files:
        for hunk in f.hunks:
            for ln in hunk:
                if ln.kind == "-":
                    ln.cls, ln.mark = "w-del", "−"
                    continue
                ln.anchor = f"{chapter.anchor}-f{f.index}-L{ln.new}"
                if ln.kind == "+":
                    human = ln.owner == HUMAN
                    ln.cls, ln.mark = ("w-hum", "✎") if human else ("w-add", "+")
                    ln.href = (f"#human-{chapter.anchor}" if human else f"#other-{chapter.anchor}"
                               if ln.owner == OTHER else f"#step-{ln.owner}")


# --- what to weave --------------------------------------------------------------------------------------


def resolve(target: str, cwd: str | os.PathLike | None = None, db_path: str | None = None) -> list[Chapter]:
    """REV, RANGE (A..B) or THREAD (see lit.threads.resolve) -> chapters, oldest first, with
    notes and diffs."""
    db = threads.open_db(db_path)
    if ".." in target:
        commits = git(["rev-list", "--reverse", target], cwd, text=False).decode().split()
        if not commits:
            raise LitError(f"{target}: no commits in this range")
        chapters = [Chapter(i, c) for i, c in enumerate(commits)]
    else:
        try:
            ref = threads.resolve(target, db=db, cwd=cwd, need_thread=False)
        except threads.NoThread as e:
            raise LitError(f"{target!r} is not a commit, a range (A..B) or a thread lit knows") from e
        if ref.commit and rev(cwd, ref.commit):
            chapters = [Chapter(0, ref.commit)]
        else:  # a thread not committed yet (or whose commit is not in this repository)
            note = threads.load(ref.thread or "", db=db, cwd=cwd)
            where = f"commit {note.commit[:12]}, not in this repository" if note.commit else "not committed"
            chapters = [Chapter(0, None, note=note, subject=f"thread {note.thread} ({where})")]
    commits = [c.commit for c in chapters if c.commit]
    # The DB first: it has every step of the thread, uncut; a note holds only the steps its line
    # map cites, bounded. The note where the DB lacks the commit (a clone, a rebased commit).
    notes = threads.for_commits(commits, cwd, db=db, db_first=True) if commits else {}
    root = git(["rev-parse", "--show-toplevel"], cwd, check=False) or None
    info: dict[str, list[str]] = {}
    if commits:
        log = git(["log", "--no-walk=unsorted", "--stdin", "--format=%H%x1f%an%x1f%aI%x1f%B%x1e"],
                  cwd, input=("\n".join(commits) + "\n").encode(), text=False).decode("utf-8", "replace")
        for rec in log.split("\x1e"):
            parts = rec.strip("\n").split("\x1f")
            if len(parts) == 4:
                info[parts[0]] = parts[1:]
    for ch in chapters:
        if ch.commit:
            author, date, message = info.get(ch.commit, ("", "", ""))
            ch.author, ch.date = author, date.replace("T", " ")
            ch.subject, _, body = redact_text(message.strip()).partition("\n")
            ch.body = body.strip()
            ch.note = ch.note or notes.get(ch.commit)
            ch.files = commit_diff(ch.commit, cwd=cwd)
            _highlight(ch.files)
            attribute(ch.files, ch.note)
        ch.rows = build_rows(ch, root)
    return chapters


# --- the page ------------------------------------------------------------------------------------------------


def render_page(chapters: list[Chapter], title: str) -> str:
    """The self-contained page: inline CSS, no scripts, nothing fetched."""
    return template_env().get_template("weave.html").render(
        title=title, chapters=chapters, book=len(chapters) > 1, css=Markup(pygments_css(".src")),
        generated=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), HUMAN=HUMAN, OTHER=OTHER)


def default_output(target: str, chapters: list[Chapter]) -> str:
    shorts = [c.short for c in chapters if c.commit]
    if not shorts:
        name = chapters[0].thread or "thread"
    elif len(chapters) > 1:
        name = f"{shorts[0]}-{shorts[-1]}"
    else:
        name = shorts[0]
    return f"lit-weave-{name}.html"


def weave(target: str, output: str | os.PathLike | None = None, *, cwd: str | os.PathLike | None = None,
          db_path: str | None = None) -> Path:
    """Write the page for `target` (REV, RANGE or THREAD) and return its path."""
    chapters = resolve(target, cwd=cwd, db_path=db_path)
    page = render_page(chapters, title=f"lit weave {target}")
    path = Path(output) if output else weave_dir() / default_output(target, chapters)
    try:
        if not output:  # lit's own folder; a folder named with -o must exist already
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")
    except OSError as e:
        raise LitError(f"cannot write {path}: {e.strerror}") from e
    return path
