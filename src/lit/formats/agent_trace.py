"""`lit export --format agent-trace`: lit's line maps as Agent Trace records.

Agent Trace (github.com/cursor/agent-trace, RFC 0.1.0, schema `schemas/trace-record.json`) is one
JSON record per change: `version`, `id`, `timestamp`, `vcs`, `tool`, `files[]` of
`conversations[]` (a contributor and the line ranges it wrote), and a free `metadata` object whose
vendor keys are reverse-DNS. Every other object allows no keys but its own, and there is no field
for prompts or reasoning: lit puts the thread and step ids under `metadata["dev.lit"]`, so a reader
can come back to lit (`lit show THREAD`) for them.

One record per commit lit knows (its note, else its thread in the DB): one conversation per
thread per file with `contributor {type: ai, model_id}` (models.dev form, `anthropic/...`), and a
person's lines in a conversation of their own with `contributor {type: human}`. Each range has a
`content_hash`, in the form the spec documents (`murmur3:9f2e8a1b`): MurmurHash3 x86 32-bit, seed
0, of the range's lines joined with "\\n" (no line ending after the last), UTF-8.

The record is a function of the commit and what lit knows of it: its `id` is a UUID5 of its
content and its `timestamp` the commit's, so exporting twice gives the same record and `--write`
(which appends to `.agent-trace/traces.jsonl`, the reference implementation's file) adds a
record once.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lit import __version__
from lit.errors import LitError
from lit.git.notes import Note, Span, Step
from lit.git.run import GitError, cat_file_batch, git

# The schema's pattern is ^[0-9]+\.[0-9]+$ (the README's own example, "0.1.0", does not match it).
SPEC_VERSION = "0.1"
VENDOR_KEY = "dev.lit"
TRACE_PATH = ".agent-trace/traces.jsonl"
_NAMESPACE = uuid.UUID("6f1c3d52-8a4e-5b0f-9d27-4c1e0a7b9f31")

# models.dev providers by model-name prefix, as the reference implementation's normalizeModelId.
_PROVIDERS = (("claude-", "anthropic"), ("gpt-", "openai"), ("o1", "openai"), ("o3", "openai"),
              ("o4", "openai"), ("codex-", "openai"), ("gemini-", "google"))


def murmur3_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86 32-bit (Austin Appleby's reference algorithm)."""
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
    h = seed & mask
    n = len(data) - len(data) % 4
    for i in range(0, n, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        h ^= (k * c2) & mask
        h = ((h << 13) | (h >> 19)) & mask
        h = (h * 5 + 0xE6546B64) & mask
    tail = data[n:]
    if tail:
        k = int.from_bytes(tail, "little")
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        h ^= (k * c2) & mask
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return h


def content_hash(lines: Iterable[str]) -> str:
    """The `content_hash` of a range: murmur3 of its lines joined with newlines."""
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    return f"murmur3:{murmur3_32(data):08x}"


def model_id(model: str | None) -> str | None:
    """A model name in models.dev form: `claude-sonnet-4-6` -> `anthropic/claude-sonnet-4-6`."""
    if not model:
        return None
    if "/" in model:
        return model[:250]
    for prefix, provider in _PROVIDERS:
        if model.startswith(prefix):
            return f"{provider}/{model}"[:250]
    return model[:250]


def model_name(model_id_value: str | None) -> str | None:
    """The model as lit stores it (what the API was called with): the models.dev id without its
    provider."""
    if not model_id_value:
        return None
    return model_id_value.split("/", 1)[1] if "/" in model_id_value else model_id_value


# --- which commits -----------------------------------------------------------------------------


def commits_of(repo: str | os.PathLike, rev: str) -> list[str]:
    """The commits of REV (one) or of a RANGE (`a..b`, `a...b`: oldest first, merges left out:
    what they bring in was written by the commits merged)."""
    try:
        if ".." in rev:
            out = git(["rev-list", "--reverse", "--no-merges", rev, "--"], repo)
            return [c for c in out.splitlines() if c]
        return [git(["rev-parse", "--verify", "-q", "--end-of-options", rev + "^{commit}"], repo)]
    except GitError as e:
        raise LitError(f"{rev!r} is not a commit or a range of this repository") from e


# --- records -----------------------------------------------------------------------------------


@dataclass
class Export:
    records: list[dict] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (commit, why no record)


def file_lines(repo: str | os.PathLike, commit: str, paths: Iterable[str]) -> dict[str, list[str]]:
    """The lines of each file at the commit (without their line endings); a path it lacks is absent."""
    names = {f"{commit}:{p}": p for p in paths if p and "\n" not in p}  # cat-file reads a name per line
    blobs = cat_file_batch(list(names), cwd=repo)
    out = {}
    for name, data in blobs.items():
        lines = data.decode("utf-8", "replace").split("\n")
        out[names[name]] = lines[:-1] if data.endswith(b"\n") else lines
    return out


def _step_facts(db, step_ids: set[str]) -> dict[str, dict]:
    """step id -> {kind, tool, model} from the DB (the notes do not say which model wrote a step)."""
    out: dict[str, dict] = {}
    ids = sorted(step_ids)
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        marks = ",".join("?" * len(chunk))
        for sid, kind, tool, model in db.execute(
                f"SELECT id, kind, tool_name, model FROM steps WHERE id IN ({marks})", chunk).fetchall():
            out[sid] = {"kind": kind, "tool": tool, "model": model}
    return out


def _main_model(models: list[str]) -> str | None:
    """A thread's model when only the note's list is known: the one model, else the first that is
    not a small side model (Claude Code titles its sessions with haiku)."""
    models = [m for m in models if isinstance(m, str) and m]
    if len(models) <= 1:
        return models[0] if models else None
    return next((m for m in models if "haiku" not in m and "mini" not in m), models[0])


def _thread_of(step_id: str) -> str:
    return step_id.rsplit(".", 1)[0]


def record_for(repo: str | os.PathLike, commit: str, note: Note, facts: dict[str, dict],
               threads: dict[str, dict], committed: int | None = None) -> dict:
    """The Agent Trace record of one commit from its thread (lit.threads.for_commits); `committed`:
    its commit time, if the caller has read it (commit_times)."""
    contents = file_lines(repo, commit, note.files)
    out_files, line_map, thread_meta = [], {}, {}
    for path in sorted(note.files):
        ranges = _vouched_ranges(note.files[path], contents.get(path))
        if ranges:
            line_map[path] = [[s.start, s.end, s.step, _thread_of(s.step) if s.step else note.thread]
                              for s, _ in ranges]
        conversations = _conversations(note.files[path], ranges, note, facts, threads, thread_meta)
        if conversations:
            out_files.append({"path": path, "conversations": conversations})
    steps = {}
    for sid in (sid for spans in line_map.values() for _s, _e, sid, _t in spans):
        if sid and sid not in steps:
            steps[sid] = _step_meta(note.steps.get(sid), facts.get(sid))
    lit_meta = {"commit": commit, "threads": list(thread_meta.values()), "line_map": line_map,
                "steps": steps, "source": note.source}
    if committed is None:
        committed = commit_times(repo, [commit]).get(commit, 0)
    record = {
        "version": SPEC_VERSION,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(committed)),
        "vcs": {"type": "git", "revision": commit},
        "tool": {"name": "lit", "version": __version__},
        "files": out_files,
        "metadata": {VENDOR_KEY: lit_meta},
    }
    record_id = str(uuid.uuid5(_NAMESPACE, json.dumps(record, sort_keys=True)))
    return {"version": record["version"], "id": record_id, **{k: v for k, v in record.items() if k != "version"}}


def commit_times(repo: str | os.PathLike, commits: list[str]) -> dict[str, int]:
    """Each commit's commit time (%ct), with one git call for them all."""
    if not commits:
        return {}
    out = git(["log", "--no-walk=unsorted", "--stdin", "--format=%H %ct"], repo, input="\n".join(commits) + "\n")
    return {sha: int(ct) for sha, _, ct in (line.partition(" ") for line in out.splitlines()) if ct.isdigit()}


def _vouched_ranges(spans: list[Span], lines: list[str] | None) -> list[tuple[Span, dict]]:
    """The spans of one file in line order, each with its Agent Trace range (hashed when the file's
    lines are known); a span past the file's end is left out."""
    out = []
    for span in sorted(spans, key=lambda s: s.start):
        if lines is not None and span.end > len(lines):
            continue  # the map says more than the file holds: not ours to vouch for
        rng = {"start_line": span.start, "end_line": span.end}
        if lines is not None:
            rng["content_hash"] = content_hash(lines[span.start - 1:span.end])
        out.append((span, rng))
    return out


def _conversations(spans: list[Span], ranges: list[tuple[Span, dict]], note: Note, facts: dict[str, dict],
                   threads: dict[str, dict], thread_meta: dict[str, dict]) -> list[dict]:
    """One file's conversations: one per thread that wrote lines of it, then the person's lines.
    Each thread met is added to `thread_meta` (in the order met: the record lists them so)."""
    by_thread: dict[str, list[dict]] = {}
    human: list[dict] = []
    for span, rng in ranges:
        (by_thread.setdefault(_thread_of(span.step), []) if span.step else human).append(rng)
    conversations = []
    for tid, thread_ranges in by_thread.items():
        meta = thread_meta.setdefault(tid, _thread_meta(tid, note, threads))
        conversations.append({"contributor": _ai_contributor(tid, spans, facts, meta), "ranges": thread_ranges})
    if human:
        thread_meta.setdefault(note.thread, _thread_meta(note.thread, note, threads))
        conversations.append({"contributor": {"type": "human"}, "ranges": human})
    return conversations


def _ai_contributor(tid: str, spans: list[Span], facts: dict[str, dict], meta: dict) -> dict:
    """The thread as a contributor to a file: the model that wrote most of the file's steps of the
    thread (the first named on a tie), else the thread's main model."""
    cited = [facts.get(s.step) or {} for s in spans if s.step and _thread_of(s.step) == tid]
    models = [f["model"] for f in cited if f.get("model")]
    model = model_id(max(models, key=models.count) if models else _main_model(meta.get("models") or []))
    return {"type": "ai", "model_id": model} if model else {"type": "ai"}


def _step_meta(known: Step | None, fact: dict | None) -> dict:
    """A cited step's kind, tool and model: the DB's facts over the note's."""
    info = {"kind": known.kind, "tool": known.tool, "model": known.model} if known else {}
    info.update({k: v for k, v in (fact or {}).items() if v})
    return {k: info[k] for k in ("kind", "tool", "model") if info.get(k)}


def _thread_meta(tid: str, note: Note, threads: dict[str, dict]) -> dict:
    row = threads.get(tid) or {}
    same = tid == note.thread
    meta = {"id": tid, "session": row.get("session_id") or (note.session if same else None),
            "agent": row.get("agent") or (note.agent if same else None),
            "title": row.get("title") or None,
            "models": row.get("models") or (list(note.models) if same else [])}
    return {k: v for k, v in meta.items() if v}


def _thread_rows(db, thread_ids: set[str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for tid in sorted(thread_ids):
        row = db.execute("SELECT t.session_id, s.agent, t.title FROM threads t LEFT JOIN sessions s"
                         " ON s.id = t.session_id WHERE t.id = ?", [tid]).fetchone()
        if row is None:
            continue
        models = [m for (m,) in db.execute(
            "SELECT model FROM exchanges WHERE thread_id = ? AND model IS NOT NULL GROUP BY model"
            " ORDER BY MIN(role = 'main') DESC, COUNT(*) DESC", [tid]).fetchall()]
        models = models or [m for (m,) in db.execute(
            "SELECT DISTINCT model FROM steps WHERE thread_id = ? AND model IS NOT NULL", [tid]).fetchall()]
        out[tid] = {"session_id": row[0], "agent": row[1], "title": row[2], "models": models}
    return out


def export(repo: str | os.PathLike, rev: str, db_path: str | None = None) -> Export:
    """The records of REV or RANGE: one per commit lit knows the lines of."""
    from lit.threads import for_commits, open_db

    commits = commits_of(repo, rev)
    db = open_db(db_path)
    notes = for_commits(commits, repo, db=db, db_first=False)
    result = Export()
    times = commit_times(repo, [c for c in commits if c in notes and notes[c].files])
    for commit in commits:
        note = notes.get(commit)
        if note is None:
            result.skipped.append((commit, "no thread"))
            continue
        if not note.files:
            result.skipped.append((commit, f"thread {note.thread}: "
                                   + ("only its trailer, no line map" if note.source == "trailer"
                                      else "no line map")))
            continue
        step_ids = {s.step for spans in note.files.values() for s in spans if s.step}
        facts = _step_facts(db, step_ids) if db is not None else {}
        threads = _thread_rows(db, {_thread_of(s) for s in step_ids} | {note.thread}) if db else {}
        record = record_for(repo, commit, note, facts, threads, times.get(commit, 0))
        if record["files"]:
            result.records.append(record)
        else:
            result.skipped.append((commit, "its line map names no line of the commit"))
    return result


def to_jsonl(records: Iterable[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)


def append(repo: str | os.PathLike, records: list[dict]) -> tuple[Path, int]:
    """Append to `.agent-trace/traces.jsonl` the records it does not hold yet (by id); returns the
    file and how many were added."""
    path = Path(repo) / TRACE_PATH
    have: set[str] = set()
    try:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                have.add(item["id"])
    except FileNotFoundError:
        pass
    except OSError as e:
        raise LitError(f"cannot read {path}: {e.strerror or e}") from e
    new = [r for r in records if r["id"] not in have]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(to_jsonl(new))
    except OSError as e:
        raise LitError(f"cannot write {path}: {e.strerror or e}") from e
    return path, len(new)
