"""Agent Trace records as lit threads: `lit import agent-trace FILE|-`.

A record (see lit.formats.agent_trace) says, for one revision, which line ranges of which files
each conversation wrote and who its contributor was (`ai`, `human`, `mixed`, `unknown`, with a
`model_id`), a range may override its conversation's contributor. Records of a git revision this
repository has become threads bound to that commit: one per conversation (its `url`, else its
contributor and model), with one step per model that wrote lines; `human` lines go in the line
map as a person's, `unknown` lines are left out of it (nobody is known for them), and `mixed`
lines (a person's edits of the agent's lines) are the agent's, as lit's own line map has them
until the person's edit. A range whose `content_hash` is lit's form (`murmur3:`) and does not
match the file at the revision is dropped, as is a range outside the file.

A record lit wrote carries `metadata["dev.lit"]`: its thread and step ids, agent and title are
used again, so the thread has the same id in the DB it is imported into (and importing it into
the DB it came from adds nothing).
"""

from __future__ import annotations

import json
import os
import re
import sys

import sqlite_utils

from lit.errors import LitError
from lit.formats.agent_trace import VENDOR_KEY, content_hash, model_name
from lit.importers import attribution
from lit.importers.attribution import Result, Step, Thread, stable_id

FORMAT = "agent-trace"
MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_LINES = 2_000_000  # line attributions read from one record, overlaps counted
VERSION = re.compile(r"\d+\.\d+(?:\.\d+)?")
LIT_ID = re.compile(r"[0-9a-f]{12}")
LIT_STEP = re.compile(r"([0-9a-f]{12})\.(\d{1,6})")
STEP_KINDS = ("prompt", "thinking", "text", "tool_call", "tool_result", "other")


class RecordError(ValueError):
    """A record that cannot be read as Agent Trace; the message says why, in a few words."""


def read_lines(source: str) -> list[str]:
    """The lines of FILE, or of stdin for `-`."""
    try:
        if source == "-":
            data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        else:
            with open(source, "rb") as f:
                data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise LitError(f"cannot read {source}: {e.strerror or e}") from e
    if len(data) > MAX_FILE_BYTES:
        raise LitError(f"{source} is over {MAX_FILE_BYTES // (1024 * 1024)} MB: not read")
    return data.decode("utf-8", "replace").splitlines()


def _str(value, limit: int = 200) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _contributor(obj) -> tuple[str, str | None] | None:
    if not isinstance(obj, dict) or obj.get("type") not in ("human", "ai", "mixed", "unknown"):
        return None
    return obj["type"], _str(obj.get("model_id"), 250)


class _Builder:
    """The threads of one record, line by line (a later range wins over an earlier one)."""

    def __init__(self, repo, record: dict, commit: str, result: Result):
        self.repo, self.record, self.commit, self.result = repo, record, commit, result
        self.record_id = _str(record.get("id"), 100) or "?"
        tool = record.get("tool") if isinstance(record.get("tool"), dict) else {}
        self.tool = _str(tool.get("name"))
        meta = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
        lit = meta.get(VENDOR_KEY) if isinstance(meta.get(VENDOR_KEY), dict) else {}
        self.lit_threads = {t["id"]: t for t in lit.get("threads") or [] if isinstance(t, dict)
                            and isinstance(t.get("id"), str) and LIT_ID.fullmatch(t["id"])}
        self.lit_steps = lit.get("steps") if isinstance(lit.get("steps"), dict) else {}
        self.lit_map: dict[tuple[str, int, int], tuple[str | None, str]] = {}
        for path, ranges in (lit.get("line_map") if isinstance(lit.get("line_map"), dict) else {}).items():
            for r in ranges if isinstance(ranges, list) else []:
                if isinstance(r, list) and len(r) == 4 and isinstance(r[3], str) and LIT_ID.fullmatch(r[3]):
                    step = r[2] if isinstance(r[2], str) and LIT_STEP.fullmatch(r[2]) and \
                        r[2].startswith(r[3] + ".") else None
                    self.lit_map[(path, _int(r[0]) or 0, _int(r[1]) or 0)] = (step, r[3])
        self.threads: dict[str, Thread] = {}
        self.steps: dict[tuple[str, str], int] = {}  # (thread id, step key) -> index
        self.owner: dict[str, dict[int, tuple[str, int | None]]] = {}
        self.budget = MAX_LINES

    def thread(self, key: str, lit_id: str | None, model: str | None) -> Thread:
        tid = lit_id or stable_id(FORMAT, self.commit, self.record_id, key)
        if tid not in self.threads:
            meta = self.lit_threads.get(tid, {})
            session = meta.get("session") if isinstance(meta.get("session"), str) and \
                LIT_ID.fullmatch(meta["session"]) else stable_id(FORMAT, self.tool or "", key)
            agent = _str(meta.get("agent")) or self.tool
            title = _str(meta.get("title")) or \
                f"{agent or 'an agent'}" + (f" ({model})" if model else "") + " (imported from Agent Trace)"
            self.threads[tid] = Thread(id=tid, session_id=session, commit=self.commit, agent=agent, title=title,
                                       session_note=f"imported from Agent Trace record {self.record_id}",
                                       step_ids=[])
        return self.threads[tid]

    def step(self, thread: Thread, key: str, lit_step: str | None, model: str | None, raw: dict) -> int:
        if (thread.id, key) not in self.steps:
            facts = self.lit_steps.get(lit_step) if lit_step and isinstance(self.lit_steps.get(lit_step), dict) \
                else {}
            kind = facts.get("kind") if facts.get("kind") in STEP_KINDS else "tool_call"
            thread.steps.append(Step(kind, tool_name=_str(facts.get("tool")), model=_str(facts.get("model")) or model,
                                     raw={"imported": FORMAT, "agent": thread.agent, **raw}))
            thread.step_ids.append(lit_step or f"{thread.id}.{len(thread.steps)}")
            self.steps[(thread.id, key)] = len(thread.steps) - 1
        return self.steps[(thread.id, key)]

    def add(self, path: str, lines: list[str] | None, conv_index: int, conv: dict, rng: dict) -> None:
        where = f"record {self.record_id} {path}"
        start, end = _int(rng.get("start_line")), _int(rng.get("end_line"))
        if start is None or end is None:
            self.result.warn(f"{where}: a range without integer start_line and end_line; dropped")
            return
        kept = attribution.checked_ranges([(start, end)], len(lines) if lines is not None else None, where,
                                          self.result)
        if not kept:
            return
        hashed = rng.get("content_hash")
        if isinstance(hashed, str) and hashed.startswith("murmur3:") and lines is not None \
                and content_hash(lines[start - 1:end]) != hashed:
            self.result.warn(f"{where}: lines {start}-{end} do not match their content_hash; dropped")
            return
        self.budget -= end - start + 1
        if self.budget < 0:
            raise RecordError(f"its ranges cover more than {MAX_LINES:,} lines")
        who = _contributor(rng.get("contributor")) or _contributor(conv.get("contributor")) or ("unknown", None)
        kind, model_id = who
        if kind == "unknown":
            for n in range(start, end + 1):
                self.owner.setdefault(path, {}).pop(n, None)
            return
        lit_step, lit_thread = self.lit_map.get((path, start, end), (None, None))
        url = _str(conv.get("url"), 2000)
        if kind == "human":
            value = ("human", lit_thread)
        else:
            conv_key = url or f"{(_contributor(conv.get('contributor')) or ('?', None))[1]}#{conv_index}"
            model = model_name(model_id)
            thread = self.thread(conv_key if not lit_thread else lit_thread, lit_thread, model)
            related = [r for r in conv.get("related") or [] if isinstance(r, dict)][:10] \
                if isinstance(conv.get("related"), list) else []
            raw = {k: v for k, v in {"record": self.record_id, "contributor": kind, "model_id": model_id,
                                      "url": url, "related": related or None}.items() if v}
            value = (thread.id, self.step(thread, lit_step or f"{model_id}", lit_step, model, raw))
        for n in range(start, end + 1):
            self.owner.setdefault(path, {})[n] = value

    def build(self) -> list[Thread]:
        threads = self.threads
        for path, lines in self.owner.items():
            for n in sorted(lines):
                tid, index = lines[n]
                if tid == "human":
                    target = threads.get(index) if index else None
                    target = target or (next(iter(threads.values())) if threads else None)
                    if target is None:
                        continue  # a person's lines and no agent's: nothing for lit to add
                    target.add_line(path, n, None)
                else:
                    threads[tid].add_line(path, n, index)
        return [t for t in threads.values() if t.line_map]


def threads_of(repo, record, result: Result) -> list[Thread]:
    if not isinstance(record, dict):
        raise RecordError("not a JSON object")
    if not (isinstance(record.get("version"), str) and VERSION.fullmatch(record["version"])):
        raise RecordError("no version N.N")
    if not isinstance(record.get("files"), list):
        raise RecordError("no files list")
    vcs = record.get("vcs") if isinstance(record.get("vcs"), dict) else {}
    if vcs.get("type") != "git" or not isinstance(vcs.get("revision"), str):
        raise RecordError("no git revision (vcs)")
    commit = attribution.commit_of(repo, vcs["revision"])
    if commit is None:
        raise RecordError(f"revision {vcs['revision'][:40]} is not a commit of this repository")
    builder = _Builder(repo, record, commit, result)
    files = [f for f in record["files"] if isinstance(f, dict) and isinstance(f.get("path"), str)
             and isinstance(f.get("conversations"), list)]
    from lit.formats.agent_trace import file_lines

    contents = file_lines(repo, commit, {f["path"] for f in files if "\n" not in f["path"]})
    for f in files:
        for ci, conv in enumerate(f["conversations"]):
            if not isinstance(conv, dict) or not isinstance(conv.get("ranges"), list):
                result.warn(f"record {builder.record_id} {f['path'][:80]}: a conversation without ranges; skipped")
                continue
            for rng in conv["ranges"]:
                if isinstance(rng, dict):
                    builder.add(f["path"], contents.get(f["path"]), ci, conv, rng)
    return builder.build()


def import_records(db: sqlite_utils.Database, repo: str | os.PathLike, source: str) -> Result:
    """Import the records of FILE (JSON Lines, or one JSON record) into the DB."""
    lines = read_lines(source)
    text = "\n".join(lines).strip()
    items: list[tuple[int, object]] = []
    if text.startswith("{") and len(lines) > 1:
        try:  # a single pretty-printed record, as the spec's examples are
            items = [(1, json.loads(text))]
        except ValueError:
            items = []
    result = Result()
    if not items:
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                items.append((n, json.loads(line)))
            except ValueError as e:
                result.warn(f"{source}:{n}: not JSON ({e.msg}); skipped")
    if not items and not result.warnings:
        raise LitError(f"{source} holds no Agent Trace record")
    threads: list[Thread] = []
    noted = attribution.lit_notes(repo)
    for n, record in items:
        rid = record.get("id") if isinstance(record, dict) and isinstance(record.get("id"), str) else f"line {n}"
        try:
            found = threads_of(repo, record, result)
        except RecordError as e:
            result.warn(f"{source}:{n}: record {rid[:40]}: {e}; skipped")
            result.skipped.append((rid[:40], str(e)))
            continue
        for t in found:
            if attribution.lit_owned(db, t.commit, noted):
                result.skipped.append((t.commit, "lit's own line map"))
            else:
                threads.append(t)
    return attribution.write(db, repo, threads, result)
