"""The note in refs/notes/lit, and the `Lit-Thread:` trailer: every read and write of them.

One JSON note per bound commit (format in docs/ARCHITECTURE.md): the thread, its prompts, the line
map per file and the steps the map cites with their reasoning. Bounded: strings are cut first,
then inputs and reasoning dropped, and `truncated` says so.

A note may come from a teammate (`lit sync`), so it is hostile until read: `parse` validates it
once, here, into lit's types (Note, Step, Prompt, Span); what is wrong is dropped, what is right is
kept, and the first reader of a bad note says once, on stderr, which commit's note it was.
Everything past this module trusts these types. Nothing here imports the DB: `lit blame` reads
notes and should not pay for sqlite-utils.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from lit.git.run import EMPTY_TREE, IDENTITY, TRAILER, GitError, cat_file_batch, git

if TYPE_CHECKING:
    from lit.redact import Redactor

NOTES_REF = "refs/notes/lit"
EMPTY_START = "lit: no notes yet"  # the subject of the commit that starts refs/notes/lit (ensure_ref)
NOTE_VERSION = 1
MAX_NOTE_BYTES = 256 * 1024
WHY_CHARS, RESULT_CHARS, INPUT_CHARS = 4000, 500, 2000
MAX_INPUT_DEPTH = 64  # a tool input nested deeper is dropped: no reader recurses without bound
MAX_LINE = 10_000_000  # a line number beyond any file git would diff


def ensure_ref(repo: str) -> None:
    """refs/notes/lit, made holding no note if it does not exist yet. lit sets notes.rewriteRef
    to it (so that amend and rebase carry the notes), and git warns "notes ref refs/notes/lit is
    invalid" on every amend and rebase while that ref does not exist."""
    if git(["rev-parse", "-q", "--verify", NOTES_REF], repo, check=False):
        return
    start = git(["commit-tree", EMPTY_TREE], repo, env=IDENTITY, input=f"{EMPTY_START}\n")
    git(["update-ref", NOTES_REF, start, ""], repo, check=False)  # "": only if no one made it meanwhile


def drop_empty_ref(repo: str) -> None:
    """Remove refs/notes/lit if it is still only what ensure_ref made (no note was ever written)."""
    head = git(["log", "-1", "--format=%H %T %P%x00%s", NOTES_REF, "--"], repo, check=False)
    ids, _, subject = head.partition("\0")
    parts = ids.split()
    if len(parts) == 2 and parts[1] == EMPTY_TREE and subject == EMPTY_START:
        git(["update-ref", "-d", NOTES_REF, parts[0]], repo, check=False)  # only if it did not move meanwhile


class Span(NamedTuple):
    """Lines start..end (inclusive, new side) of one file, written by a step (None: a person).
    Serialised as the note's [start, end, step]."""

    start: int
    end: int
    step: str | None


@dataclass
class Prompt:
    step: str | None
    text: str
    continued: bool = False  # the prompt before the thread (a thread opened after a commit)


@dataclass
class Step:
    """A step the line map cites: a tool call with the reasoning before it, or closing words."""

    seq: int
    kind: str
    why: str = ""
    tool: str | None = None
    input: Any = None
    result: str | None = None
    is_error: bool = False
    prompt: str | None = None  # the id of the prompt it answers
    thread: str | None = None  # set when the step belongs to an earlier thread than the note's
    text: str | None = None  # a prompt step's text
    model: str | None = None  # the model that wrote it, where the record says
    imported: str | None = None  # the format it was imported from (git-ai, agent-trace): no reasoning there
    extra: dict[str, Any] = field(default_factory=dict)  # fields of a newer lit, kept as they were


@dataclass
class Note:
    """A thread as a reader sees it: from a note, from the DB (same shape), or from a trailer."""

    thread: str
    version: int = NOTE_VERSION
    session: str | None = None
    commit: str | None = None
    agent: str | None = None
    models: list[str] = field(default_factory=list)
    started_at: str | None = None
    ended_at: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    prompts: list[Prompt] = field(default_factory=list)
    files: dict[str, list[Span]] = field(default_factory=dict)
    steps: dict[str, Step] = field(default_factory=dict)
    truncated: bool = False
    merged_threads: list[str] = field(default_factory=list)
    relinked_from: str | None = None
    source: str = "note"  # where it was read: note | db | trailer (not written)
    extra: dict[str, Any] = field(default_factory=dict)

    def owner(self, path: str, line: int) -> str | None | object:
        """The step that wrote `line` of `path`, None for a person, MISSING when the map has no range."""
        cached = self.__dict__.get("_index")  # (the files it was built from, the index), rebuilt if replaced
        if cached is None or cached[0] is not self.files:
            cached = self.__dict__["_index"] = (self.files, {p: sorted(r, key=lambda s: s.start)
                                                             for p, r in self.files.items()})
        index = cached[1]
        for span in index.get(path, ()):
            if span.start <= line <= span.end:
                return span.step
            if span.start > line:
                break
        return MISSING

    def to_json(self) -> dict[str, Any]:
        """The note as written to refs/notes/lit (no `source`: that is where a reader found it)."""
        out: dict[str, Any] = {
            "version": self.version, "thread": self.thread, "session": self.session, "commit": self.commit,
            "agent": self.agent, "models": list(self.models), "started_at": self.started_at,
            "ended_at": self.ended_at, "usage": dict(self.usage),
            "prompts": [{"step": p.step, "text": p.text, **({"continued": True} if p.continued else {})}
                        for p in self.prompts],
            "files": {path: [list(s) for s in spans] for path, spans in self.files.items()},
            "steps": {sid: _step_json(s) for sid, s in self.steps.items()},
            "truncated": self.truncated,
        }
        if self.merged_threads:
            out["merged_threads"] = list(self.merged_threads)
        if self.relinked_from:
            out["relinked_from"] = self.relinked_from
        return {**self.extra, **out}


MISSING = object()  # Note.owner: the line map has no range for the line


def _step_json(s: Step) -> dict[str, Any]:
    out: dict[str, Any] = {"seq": s.seq, "kind": s.kind}
    if s.tool is not None or s.kind == "tool_call":
        out.update(tool=s.tool, input=s.input, why=s.why, prompt=s.prompt, result=s.result, is_error=s.is_error)
    else:
        out["why"] = s.why
        if s.prompt is not None:
            out["prompt"] = s.prompt
    if s.text is not None:
        out["text"] = s.text
    for name in ("thread", "model", "imported"):
        if getattr(s, name) is not None:
            out[name] = getattr(s, name)
    return {**s.extra, **out}


# --- reading: hostile JSON into lit's types ---------------------------------------------------------


class _Bad:
    """What NaN, Infinity and -Infinity parse to: never a valid value anywhere in a note."""


_BAD = _Bad()
_STEP_FIELDS = {"seq", "kind", "why", "tool", "input", "result", "is_error", "prompt", "thread", "text", "model",
                "imported"}
_NOTE_FIELDS = {"version", "thread", "session", "commit", "agent", "models", "started_at", "ended_at", "usage",
                "prompts", "files", "steps", "truncated", "merged_threads", "relinked_from", "source"}


def _loads(text: str) -> Any:
    return json.loads(text, parse_constant=lambda _: _BAD)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _plain(value: Any, depth: int = MAX_INPUT_DEPTH) -> bool:
    """JSON made of finite numbers, at most `depth` levels deep (checked without recursion)."""
    stack = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if d > depth or v is _BAD or isinstance(v, float) and not math.isfinite(v):
            return False
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return True


def _opt_str(v: Any) -> bool:
    return v is None or isinstance(v, str)


def _span(r: Any) -> Span | None:
    if not isinstance(r, list) or len(r) != 3:
        return None
    start, end, step = r
    if not (_is_int(start) and _is_int(end) and 1 <= start <= end <= MAX_LINE and _opt_str(step)):
        return None
    return Span(start, end, step or None)


def _step(sid: str, s: Any, problems: list[str]) -> Step | None:
    if not isinstance(s, dict):
        problems.append(f"step {sid} is not an object")
        return None
    seq = s.get("seq")
    if not _is_int(seq):
        tail = sid.rpartition(".")[2]
        seq = int(tail) if tail.isdigit() and len(tail) < 10 else 0
    kind = s.get("kind") if isinstance(s.get("kind"), str) else ("tool_call" if isinstance(s.get("tool"), str)
                                                                 else "step")
    step = Step(seq=seq, kind=kind, extra={k: v for k, v in s.items() if k not in _STEP_FIELDS and _plain(v)})
    for name in ("why", "text"):
        value = s.get(name)
        if isinstance(value, str):
            setattr(step, name, value)
        elif value is not None:
            problems.append(f"step {sid}: {name} is not text")
    for name in ("tool", "result", "prompt", "thread", "model", "imported"):
        value = s.get(name)
        if isinstance(value, str):
            setattr(step, name, value)
        elif value is not None:
            problems.append(f"step {sid}: {name} is not text")
    if "input" in s:
        if _plain(s["input"]):
            step.input = s["input"]
        else:
            problems.append(f"step {sid}: input too deep or not finite")
    step.is_error = s.get("is_error") is True
    return step


def _of_type(data: dict, name: str, kind: type, what: str, problems: list[str]) -> Any:
    """data[name] when it is a `kind`; None (and said) when it is something else."""
    value = data.get(name)
    if value is None or isinstance(value, kind):
        return value
    problems.append(f"{name} is not {what}")
    return None


def _scalars(data: dict, note: Note, problems: list[str]) -> None:
    for name in ("session", "commit", "agent", "started_at", "ended_at", "relinked_from"):
        setattr(note, name, _of_type(data, name, str, "text", problems))
    for name in ("models", "merged_threads"):
        value = _of_type(data, name, list, "a list", problems) or []
        setattr(note, name, [m for m in value if isinstance(m, str)])
        if len(getattr(note, name)) != len(value):
            problems.append(f"{name}: entries that are not text")
    usage = _of_type(data, "usage", dict, "an object", problems) or {}
    note.usage = {k: v for k, v in usage.items() if _is_int(v) and v >= 0}
    if len(note.usage) != len(usage):
        problems.append("usage: counts that are not numbers")
    note.truncated = data.get("truncated") is True


def _prompts(data: dict, note: Note, problems: list[str]) -> None:
    for p in _of_type(data, "prompts", list, "a list", problems) or []:
        if isinstance(p, dict) and isinstance(p.get("text"), str) and _opt_str(p.get("step")):
            note.prompts.append(Prompt(p.get("step"), p["text"], p.get("continued") is True))
        else:
            problems.append("a prompt that is not {step, text}")


def _files(data: dict, note: Note, problems: list[str]) -> None:
    for path, ranges in (_of_type(data, "files", dict, "an object", problems) or {}).items():
        if not isinstance(ranges, list):
            problems.append(f"files[{path!r}] is not a list of ranges")
            continue
        spans = [s for s in map(_span, ranges) if s is not None]
        if len(spans) != len(ranges):
            problems.append(f"files[{path!r}]: ranges that are not [start, end, step]")
        if spans:
            note.files[path] = spans


def parse(data: Any, problems: list[str]) -> Note | None:
    """A note's JSON (already decoded) as a Note; what is wrong is dropped and said in `problems`.
    None when nothing of it can be used (not an object, no thread id)."""
    if not isinstance(data, dict):
        problems.append(f"it is a JSON {type(data).__name__ if data is not _BAD else 'constant'}, not an object")
        return None
    thread = data.get("thread")
    if not isinstance(thread, str) or not thread:
        problems.append("it names no thread")
        return None
    version = data.get("version")
    if not (_is_int(version) and version > 0):
        problems.append("no version")
        version = NOTE_VERSION
    note = Note(thread=thread, version=version,
                extra={k: v for k, v in data.items() if k not in _NOTE_FIELDS and _plain(v)})
    _scalars(data, note, problems)
    _prompts(data, note, problems)
    _files(data, note, problems)
    for sid, s in (_of_type(data, "steps", dict, "an object", problems) or {}).items():
        step = _step(sid, s, problems)
        if step is not None:
            note.steps[sid] = step
    return note


def decode(text: str | bytes, problems: list[str]) -> Note | None:
    """A note's bytes as a Note (see `parse`); None, with the reason in `problems`, when unreadable."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        data = _loads(text)
    except RecursionError:
        problems.append("its JSON is nested too deep")
        return None
    except ValueError as e:
        problems.append(f"it is not JSON ({str(e).split(':')[0]})")
        return None
    return parse(data, problems)


_said: set[str] = set()


def _say(commit: str, problems: list[str], kept: bool) -> None:
    """One line on stderr per bad note, the first time a reader meets it in this process."""
    if not problems or commit in _said:
        return
    _said.add(commit)
    what = "; ".join(dict.fromkeys(problems))
    if len(what) > 300:
        what = what[:299] + "…"
    action = "read what was right in it" if kept else "ignored it"
    print(f"lit: the note of commit {commit[:12]} in {NOTES_REF} is malformed ({what}); {action}",
          file=sys.stderr)


def decode_for(commit: str, text: str | bytes) -> Note | None:
    """A note read from refs/notes/lit for `commit`, validated; a bad one is said once on stderr."""
    problems: list[str] = []
    note = decode(text, problems)
    _say(commit, problems, note is not None)
    return note


def listing(cwd: str | os.PathLike | None = None, ref: str = NOTES_REF) -> dict[str, str]:
    """commit -> note blob, for every commit with a note under `ref` (one `git notes list`)."""
    out = git(["notes", f"--ref={ref}", "list"], cwd, check=False)
    return {parts[1]: parts[0] for parts in map(str.split, out.splitlines()) if len(parts) == 2}


def read_raw(cwd: str | os.PathLike | None, commits: Iterable[str] | None, ref: str = NOTES_REF,
             blobs: dict[str, str] | None = None) -> dict[str, bytes]:
    """commit -> the note's bytes as stored, unvalidated (for `lit sync`, which keeps even an
    unreadable note). `commits` are full SHAs; None: every annotated commit."""
    blobs = listing(cwd, ref) if blobs is None else blobs
    if commits is not None:
        blobs = {c: blobs[c] for c in commits if c in blobs}
    contents = cat_file_batch(sorted(set(blobs.values())), cwd)
    return {c: contents[b] for c, b in blobs.items() if b in contents}


def read_many(commits: Iterable[str] | None, cwd: str | os.PathLike | None = None,
              blobs: dict[str, str] | None = None) -> dict[str, Note]:
    """The notes of `commits` (full SHAs; None: every annotated commit), with two git calls
    whatever their number: `git notes list` maps commits to blobs, one cat-file reads them all."""
    notes = {}
    for commit, data in read_raw(cwd, commits, blobs=blobs).items():
        note = decode_for(commit, data)
        if note is not None:
            notes[commit] = note
    return notes


def read_thread_prefix(prefix: str, cwd: str | os.PathLike | None = None) -> dict[str, Note]:
    """commit -> note, for the notes whose thread id starts with `prefix` (hex). `git grep` picks,
    in one process whatever their number, the notes that name such an id, and only those are read
    and validated (a step's `thread` matches too: the note's own id decides). None outside a
    repository or without notes."""
    # Fixed strings (a regular expression makes git grep several times slower): lit writes
    # `"thread": "…"`, compact JSON `"thread":"…"`.
    patterns = ["-e", f'"thread": "{prefix}', "-e", f'"thread":"{prefix}']
    out = git(["grep", "--no-color", "--full-name", "-l", "-F", *patterns, NOTES_REF, "--", ":/"], cwd, check=False)
    names = {name: name.partition(":")[2].replace("/", "") for name in out.splitlines()}  # ref:fan/out -> commit
    found = {}
    for name, data in cat_file_batch(list(names), cwd).items():
        note = decode_for(names[name], data)
        if note is not None and note.thread.startswith(prefix):
            found[names[name]] = note
    return found


def read(repo: str | os.PathLike | None, commit: str) -> Note | None:
    """The note of one commit (any revision: HEAD, a SHA), or None: `git notes show` of it, not
    the listing of every note read_many starts with."""
    try:
        sha = git(["rev-parse", "--verify", "-q", commit + "^{commit}"], repo, check=False)
    except GitError:
        return None
    if not sha:
        return None
    data = git(["notes", "--ref", NOTES_REF, "show", sha], repo, check=False, text=False)
    return decode_for(sha, data) if data else None


def write(repo: str | os.PathLike, commit: str, note: Note) -> None:
    """Write `note` on `commit`, bounded to MAX_NOTE_BYTES."""
    write_json(repo, commit, bound(note.to_json()))


def write_json(repo: str | os.PathLike, commit: str, data: dict, ref: str = NOTES_REF) -> None:
    git(["notes", "--ref", ref, "add", "-f", "-F", "-", commit], repo,
        input=json.dumps(data, ensure_ascii=False, indent=1) + "\n")


def remove(repo: str | os.PathLike, commit: str) -> None:
    """Remove the note of `commit`, if it has one."""
    git(["notes", "--ref", NOTES_REF, "remove", "--ignore-missing", commit], repo)


def merge_keeping_ours(repo: str | os.PathLike, ref: str) -> None:
    """Join the notes history of `ref` into refs/notes/lit with git's strategy `ours` (which never
    stops half way): a commit with a note on both sides keeps ours, for the caller to merge. A
    merge left half done by an earlier run is ended first; on failure nothing is left in progress."""
    partial = git(["rev-parse", "--git-path", "NOTES_MERGE_PARTIAL"], repo)
    if os.path.exists(partial if os.path.isabs(partial) else os.path.join(repo, partial)):
        git(["notes", "--ref", NOTES_REF, "merge", "--abort"], repo, check=False)
    try:
        git(["notes", "--ref", NOTES_REF, "merge", "-q", "-s", "ours", ref], repo)
    except GitError:
        git(["notes", "--ref", NOTES_REF, "merge", "--abort"], repo, check=False)
        raise


def scrub(repo: str | os.PathLike, redactor: Redactor | None = None, *, dry_run: bool = False) -> int:
    """Rewrite each note in refs/notes/lit that the redaction rules change (`lit redact`); returns
    how many. A note that is not JSON is scrubbed as text."""
    from lit.redact import default  # here, not at the top: blame reads notes and never redacts

    r = redactor or default()

    def change(data: bytes) -> bytes | None:
        raw = data.decode("utf-8", "replace")
        try:
            note = json.loads(raw)
        except (ValueError, RecursionError):
            return r.text(raw).encode()
        scrubbed = r.obj(note)
        return None if scrubbed == note else (json.dumps(scrubbed, ensure_ascii=False, indent=1) + "\n").encode()

    return rewrite_all(repo, change, dry_run=dry_run)


def rewrite_all(repo: str | os.PathLike, change: Callable[[bytes], bytes | None], *, dry_run: bool = False) -> int:
    """Pass every note's bytes through `change`; write back the ones it returns changed (none with
    `dry_run`). Returns how many changed (`lit redact` scrubs notes this way)."""
    changed = 0
    for commit, data in read_raw(repo, None).items():
        new = change(data)
        if new is not None and new != data:
            if not dry_run:
                git(["notes", "--ref", NOTES_REF, "add", "-f", "-F", "-", commit], repo, input=new, text=False)
            changed += 1
    return changed


# --- writing: what a note keeps ---------------------------------------------------------------------


def _cut(value: Any, n: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= n else value[: n - 1] + "…"
    if isinstance(value, dict):
        return {k: _cut(v, n) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut(v, n) for v in value]
    return value


def cited(note: Note, commit: str) -> Note:
    """The note to write on `commit`: only the steps its line map cites, their strings cut."""
    note.commit, note.source = commit, "note"
    keep = {s.step for spans in note.files.values() for s in spans if s.step}
    note.steps = {sid: step for sid, step in note.steps.items() if sid in keep}
    for step in note.steps.values():
        step.why = _cut(step.why, WHY_CHARS)
        if step.result:
            step.result = _cut(step.result, RESULT_CHARS)
        if step.input is not None:
            step.input = _cut(step.input, INPUT_CHARS)
    return note


def bound(note: dict, limit: int = MAX_NOTE_BYTES) -> dict:
    """Keep a note's JSON under `limit` bytes: drop tool inputs, then results, then reasoning."""
    def size() -> int:
        return len(json.dumps(note, ensure_ascii=False).encode())

    for name in ("input", "result", "why"):
        if size() <= limit:
            break
        note["truncated"] = True
        for step in note["steps"].values():
            step.pop(name, None)
    if size() > limit:
        for p in note["prompts"]:
            p["text"] = _cut(p["text"], 500)
    return note


# --- the trailer ------------------------------------------------------------------------------------


def trailer_format(separator: str = "%x00") -> str:
    """The `git log --format` piece giving a commit's Lit-Thread values, for a caller that reads
    other fields in the same call; `split_trailer` reads it back."""
    return f"%(trailers:key={TRAILER},valueonly,separator={separator})"


def split_trailer(value: str, separator: str = "\x00") -> list[str]:
    return list(dict.fromkeys(v.strip() for v in value.split(separator) if v.strip()))


def trailer_threads(revs: Iterable[str], cwd: str | os.PathLike | None = None, *,
                    walk: bool = False) -> dict[str, list[str]]:
    """commit -> the thread ids its `Lit-Thread:` trailers name, for the commits `revs` name (or,
    with `walk`, every commit of the range they give), in git's order. Commits without one are
    left out. One git call."""
    revs = list(revs)
    if not revs:
        return {}
    args = ["log", f"--format=%H%x1f{trailer_format()}%x1e"]
    if not walk:
        args.insert(1, "--no-walk=unsorted")
    out = git([*args, "--stdin", "--"], cwd, input="\n".join(revs) + "\n")
    found: dict[str, list[str]] = {}
    for record in out.split("\x1e"):
        sha, _, value = record.strip("\n").partition("\x1f")
        threads = split_trailer(value)
        if sha and threads:
            found[sha] = threads
    return found
