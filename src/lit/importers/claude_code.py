"""Claude Code's own transcripts as lit sessions: `lit import claude-code [PATH]`.

Claude Code writes `~/.claude/projects/<cwd, every non-alphanumeric as ->/<session id>.jsonl`: one
line per content block (`uuid`/`parentUuid` chains), tool results with a `toolUseResult` (the
structured patch of an Edit or Write, the stdout of a Bash call, the `gitOperation` of a commit),
and subagents in `<session id>/subagents/agent-<id>.jsonl` (older versions: sidechain lines in the
session file or `agent-<id>.jsonl` beside it). Each session becomes one lit session: steps in lit's
kinds, one exchange per API request (usage and model, so tokens add up in `lit serve`), threads cut
at the commits its Bash calls made, bound to them, with a line map computed from the recorded
edits (the last Write/Edit whose added lines hold a line of the commit wrote it; else a person:
see lit.importers.commits).

Idempotent: the lit session id is derived from Claude Code's session id, and a session that lit
recorded live (its exchanges carry the same `x-claude-code-session-id`) is not imported again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from lit import store
from lit.errors import LitError
from lit.importers.commits import (
    Commit,
    attribute,
    committed_later,
    find_commits,
    line_ranges,
    printed_sha,
    recorded_edits,
    run_git,
    tool_input_of,
)
from lit.recorder import _block_step, _first_line, _is_reminder, _redactor, _result_text, git_info

AGENT = "claude-code-import"
SUBAGENT_TOOLS = ("Agent", "Task")
# Entries that are bookkeeping, not conversation: queue operations, titles, file-history
# snapshots, attachments (skill and agent listings), progress lines.
CONVERSATION_TYPES = ("user", "assistant")
LINE = "\0line"  # where an entry was read (file:line), for warnings; never stored


# --- finding and reading transcripts -----------------------------------------------------------


def claude_dir() -> Path:
    """Where Claude Code keeps its state: $CLAUDE_CONFIG_DIR, else ~/.claude."""
    env = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(env).expanduser() if env else Path.home() / ".claude"


def project_dir_name(path: str | os.PathLike) -> str:
    """The folder name Claude Code uses for a working directory: each non-alphanumeric -> '-'."""
    return re.sub(r"[^A-Za-z0-9]", "-", str(path))


def find_transcripts(path: str | os.PathLike | None = None, cwd: str | None = None) -> list[Path]:
    """The session files to import: PATH (a .jsonl file, or a folder searched for session files),
    or by default the sessions of the current repository (or folder) under ~/.claude/projects."""
    if path is not None:
        p = Path(path).expanduser()
        if p.is_file():
            return [p]
        if p.is_dir():
            found = sorted(f for f in p.rglob("*.jsonl") if _is_session_file(f))
            if not found:
                raise LitError(f"no Claude Code transcripts (*.jsonl) in {p}")
            return found
        raise LitError(f"{p} does not exist: pass a transcript (.jsonl) or a folder of them")
    cwd = cwd or os.getcwd()
    root = git_info(cwd)[0] or cwd
    projects = claude_dir() / "projects"
    prefix = project_dir_name(os.path.realpath(root))
    names = {prefix, project_dir_name(root)}
    found = []
    if projects.is_dir():
        for folder in sorted(projects.iterdir()):
            # Sessions started in a subfolder of the repository have a longer name; their cwd says
            # whether they really are inside it (a sibling "repo-old" has the same prefix).
            if folder.is_dir() and (folder.name in names or any(folder.name.startswith(n + "-") for n in names)):
                found.extend(f for f in sorted(folder.glob("*.jsonl"))
                             if _is_session_file(f) and _inside(_first_cwd(f), root))
    if not found:
        raise LitError(f"no Claude Code sessions for {root} under {projects} "
                       "(pass a transcript file or folder: lit import claude-code PATH)")
    return found


def _is_session_file(f: Path) -> bool:
    # Subagent files are read with their session, not as sessions of their own.
    return f.suffix == ".jsonl" and not f.name.startswith("agent-") and f.parent.name != "subagents"


def _first_cwd(f: Path) -> str | None:
    try:
        with open(f, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict) and isinstance(entry.get("cwd"), str):
                    return entry["cwd"]
    except OSError:
        return None
    return None


def _inside(path: str | None, root: str) -> bool:
    if not path:
        return False
    a, b = os.path.realpath(path), os.path.realpath(root)
    return a == b or a.startswith(b.rstrip(os.sep) + os.sep)


def read_jsonl(path: Path, warnings: list[str]) -> list[dict]:
    """The entries of a transcript; a line that is not a JSON object is skipped with a warning."""
    entries = []
    try:
        fh = open(path, encoding="utf-8", errors="replace")
    except OSError as e:
        raise LitError(f"cannot read {path}: {e.strerror or e}") from e
    with fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                warnings.append(f"{path}:{n}: not a JSON line, skipped")
                continue
            if not isinstance(entry, dict):
                warnings.append(f"{path}:{n}: not a JSON object, skipped")
                continue
            entry[LINE] = f"{path}:{n}"
            entries.append(entry)
    return entries


@dataclass
class Subagent:
    agent_id: str
    entries: list[dict]
    tool_use_id: str | None = None  # the Agent/Task call that started it, when the meta file says


@dataclass
class Transcript:
    path: Path
    session_id: str  # Claude Code's
    entries: list[dict]  # the main conversation, the branch that was kept, in order
    subagents: list[Subagent] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def load_transcript(path: str | os.PathLike) -> Transcript:
    path = Path(path)
    warnings: list[str] = []
    entries = read_jsonl(path, warnings)
    session_id = next((e["sessionId"] for e in entries if isinstance(e.get("sessionId"), str)), path.stem)
    main = [e for e in entries if not e.get("isSidechain")]
    subagents: dict[str, Subagent] = {}
    # Older versions: sidechains inline. Without an agent id, each chain from a root is one.
    chain_of: dict[str, str] = {}
    for e in entries:
        if e.get("isSidechain"):
            aid = e.get("agentId") or chain_of.get(e.get("parentUuid") or "") or f"chain-{e.get('uuid')}"
            if e.get("uuid"):
                chain_of[e["uuid"]] = aid
            subagents.setdefault(aid, Subagent(aid, [])).entries.append(e)
    files = sorted((path.parent / path.stem / "subagents").glob("agent-*.jsonl"))
    files += [f for f in sorted(path.parent.glob("agent-*.jsonl"))
              if _first_session(f) == session_id]  # older versions: beside the session file
    for f in files:
        sub_entries = read_jsonl(f, warnings)
        aid = next((e["agentId"] for e in sub_entries if e.get("agentId")), f.stem.removeprefix("agent-"))
        sub = subagents.setdefault(aid, Subagent(aid, []))
        sub.entries.extend(sub_entries)
        meta = f.with_name(f.stem + ".meta.json")
        if meta.is_file():
            try:
                sub.tool_use_id = json.loads(meta.read_text()).get("toolUseId")
            except (ValueError, OSError, AttributeError):
                warnings.append(f"{meta}: not a JSON object, ignored")
    return Transcript(path, session_id, _kept_branch(main),
                      [Subagent(s.agent_id, _kept_branch(s.entries), s.tool_use_id) for s in subagents.values()],
                      warnings)


def _first_session(f: Path) -> str | None:
    try:
        with open(f, encoding="utf-8", errors="replace") as fh:
            return json.loads(fh.readline()).get("sessionId")
    except (OSError, ValueError, AttributeError):
        return None


def _kept_branch(entries: list[dict]) -> list[dict]:
    """The entries on the path from the last message back to the root: a rewound or retried
    branch is dropped. Where the chain breaks (an entry's parent is not in the file), everything
    before that point is kept as it is, in file order."""
    index = {e["uuid"]: i for i, e in enumerate(entries) if isinstance(e.get("uuid"), str)}
    leaf = next((i for i in range(len(entries) - 1, -1, -1)
                 if entries[i].get("type") in CONVERSATION_TYPES and entries[i].get("uuid")), None)
    if leaf is None:
        return entries
    keep: set[int] = set()
    i: int | None = leaf
    root = leaf
    while i is not None and i not in keep:
        keep.add(i)
        root = i
        parent = entries[i].get("parentUuid") or entries[i].get("logicalParentUuid")
        i = index.get(parent) if isinstance(parent, str) else None
    # Results of parallel tool calls hang each under its own call, off the path: keep those
    # whose call is kept.
    kept_uuids = {entries[j].get("uuid") for j in keep}
    for j in range(root, leaf):
        e = entries[j]
        if j not in keep and e.get("parentUuid") in kept_uuids and _has_tool_result(e):
            keep.add(j)
            kept_uuids.add(e.get("uuid"))
    return [e for j, e in enumerate(entries) if j in keep or j < root or j > leaf]


def _has_tool_result(entry: dict) -> bool:
    content = (entry.get("message") or {}).get("content") if isinstance(entry.get("message"), dict) else None
    return isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


# --- steps from entries ------------------------------------------------------------------------


@dataclass
class _Step:
    """A step before it has a thread: the columns, plus what the import needs to know."""
    fields: dict
    at: float
    conversation: int  # 0: main; n: the n-th subagent
    request: str | None = None  # requestId (or message id) of an assistant block
    parent: int | None = None  # index of the Agent/Task call that started a subagent
    result_of: int | None = None  # for a tool_result: index of its call
    tool_use_result: Any = None  # Claude Code's structured result (patches, stdout)
    usage: dict | None = None
    stop_reason: str | None = None
    conv: str = "c1"  # the conversation: c1 for the main one, a<agent id> for a subagent
    step_id: str | None = None
    thread_id: str | None = None


def _timestamp(entry: dict, default: float) -> float:
    ts = entry.get("timestamp")
    if isinstance(ts, str):
        try:
            return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return default


def _user_steps(entry: dict, at: float, conv: int) -> list[_Step]:
    message = entry.get("message") or {}
    content = message.get("content")
    if entry.get("isMeta"):
        return []  # caveats and other text Claude Code adds for the model, not typed by anyone
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    if not isinstance(content, list):
        return []
    steps, texts = [], []
    for block in content:
        if not isinstance(block, dict):
            continue
        btype = block.get("type")
        if btype == "tool_result":
            steps.append(_Step({"kind": "tool_result", "text": _result_text(block.get("content")),
                                "tool_use_id": block.get("tool_use_id"),
                                "is_error": int(bool(block.get("is_error")))}, at, conv,
                               tool_use_result=entry.get("toolUseResult")))
        elif btype == "text":
            if not _is_reminder(block.get("text", "")):
                texts.append(block.get("text", ""))
        else:
            steps.append(_Step({"kind": "other", "raw": json.dumps(block, ensure_ascii=False)}, at, conv))
    if texts:
        text = "\n\n".join(texts)
        # Slash commands, their output, interruptions and compaction summaries are no prompts.
        other = (entry.get("isCompactSummary") or text.lstrip().startswith(("<command-", "<local-command-"))
                 or text.startswith("[Request interrupted"))
        steps.append(_Step({"kind": "other" if other else "prompt", "text": text}, at, conv))
    return steps


def _assistant_steps(entry: dict, at: float, conv: int) -> list[_Step]:
    message = entry.get("message") or {}
    content = message.get("content")
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    model = message.get("model")
    # Claude Code's own stand-ins ("No response requested.", API errors) never came from a model:
    # kept as `other`, so they are not read as the reasoning of the next tool call.
    synthetic = model == "<synthetic>"
    model = None if synthetic else model
    request = entry.get("requestId") or message.get("id")
    out = []
    for block in content or []:
        fields = _block_step(block)
        if synthetic:
            fields = {"kind": "other", "text": _result_text([block]), "raw": json.dumps(block, ensure_ascii=False)}
        fields["model"] = model
        out.append(_Step(fields, at, conv, request=request if model else None,
                         usage=message.get("usage"), stop_reason=message.get("stop_reason")))
    return out


def _entry_steps(entries: list[dict], conv: int, start: float, warnings: list[str]) -> list[_Step]:
    steps: list[_Step] = []
    at = start
    for entry in entries:
        at = _timestamp(entry, at)
        try:
            if entry.get("type") == "user":
                steps.extend(_user_steps(entry, at, conv))
            elif entry.get("type") == "assistant":
                steps.extend(_assistant_steps(entry, at, conv))
        except (AttributeError, TypeError, ValueError) as e:
            # A line of another shape than the versions this was written against: said, skipped.
            warnings.append(f"{entry.get(LINE, '?')}: {entry.get('type')} line of an unknown shape ({e}), skipped")
    return steps


def build_steps(transcript: Transcript) -> list[_Step]:
    """All steps of the session in thread order: a subagent's steps come right before the result
    of the call that started it (as the recorder sees them), hanging under that call."""
    main = _entry_steps(transcript.entries, 0, 0.0, transcript.warnings)
    calls = {s.fields.get("tool_use_id"): s for s in main if s.fields["kind"] == "tool_call"}
    by_call: dict[str, list[_Step]] = {}
    conv_call: dict[int, str] = {}
    orphans: list[_Step] = []
    for n, sub in enumerate(transcript.subagents, 1):
        steps = _entry_steps(sub.entries, n, 0.0, transcript.warnings)
        for st in steps:
            st.conv = f"a{sub.agent_id}"  # stable across imports, unlike a position
        call_id = sub.tool_use_id or _subagent_call(main, sub, calls)
        if call_id in calls:
            by_call.setdefault(call_id, []).extend(steps)
            conv_call[n] = call_id
        else:
            orphans.extend(steps)
    out: list[_Step] = []
    for s in main:
        if s.fields["kind"] == "tool_result" and s.fields.get("tool_use_id") in by_call:
            out.extend(by_call.pop(s.fields["tool_use_id"]))
        out.append(s)
    for steps in by_call.values():  # a subagent still running when the transcript ends
        out.extend(steps)
    out.extend(orphans)
    call_index = {s.fields.get("tool_use_id"): i for i, s in enumerate(out)
                  if s.fields["kind"] == "tool_call" and s.fields.get("tool_use_id")}
    for s in out:
        if s.fields["kind"] == "tool_result":
            s.result_of = call_index.get(s.fields.get("tool_use_id"))
        if s.conversation in conv_call:
            s.parent = call_index.get(conv_call[s.conversation])
    return out


def _subagent_call(main: list[_Step], sub: Subagent, calls: dict) -> str | None:
    """The Agent/Task call that started a subagent: its result names the agent id, or its prompt
    is the subagent's first message."""
    for s in main:
        tur = s.tool_use_result
        if s.fields["kind"] == "tool_result" and isinstance(tur, dict) and tur.get("agentId") == sub.agent_id:
            return s.fields.get("tool_use_id")
    first = next((e for e in sub.entries if e.get("type") == "user"), None)
    message = (first or {}).get("message")
    content = message.get("content") if isinstance(message, dict) else None
    text = content if isinstance(content, str) else _result_text(content)
    for call_id, call in calls.items():
        if call.fields.get("tool_name") in SUBAGENT_TOOLS:
            prompt = tool_input_of(call).get("prompt")
            if isinstance(prompt, str) and prompt.strip() and prompt.strip() in (text or ""):
                return call_id
    return None


# --- the import --------------------------------------------------------------------------------


@dataclass
class ImportResult:
    transcript: str
    claude_session: str
    session: str
    imported: bool
    reason: str | None = None  # why not, when it was not
    threads: list[dict] = field(default_factory=list)  # id, status, commit, steps
    steps: int = 0
    exchanges: int = 0
    line_map_rows: int = 0
    notes: int = 0
    warnings: list[str] = field(default_factory=list)


def session_id_for(claude_session: str) -> str:
    """The lit session id of an imported Claude Code session: derived, so a second import finds it."""
    return hashlib.sha256(f"claude-code:{claude_session}".encode()).hexdigest()[:12]


def import_path(db: sqlite_utils.Database, path: str | os.PathLike | None = None, *,
                cwd: str | None = None) -> list[ImportResult]:
    transcripts = [load_transcript(f) for f in find_transcripts(path, cwd)]
    # A commit some session's Bash made is that session's, never "committed later by a person".
    claimed = {sha for t in transcripts for sha in printed_shas(t)}
    return [import_transcript(db, t, claimed=claimed) for t in transcripts]


def printed_shas(transcript: Transcript) -> set[str]:
    """The (short) SHAs of the commits the session's Bash calls reported."""
    out = set()
    for entries in [transcript.entries, *(s.entries for s in transcript.subagents)]:
        for e in entries:
            tur = e.get("toolUseResult")
            if isinstance(tur, dict) and (isinstance(tur.get("gitOperation"), dict) or "stdout" in tur):
                sha, _ = printed_sha(tur)
                if sha:
                    out.add(sha)
    return out


def import_transcript(db: sqlite_utils.Database, transcript: Transcript, *,
                      claimed: set[str] | None = None) -> ImportResult:
    """Import one session; a session imported before gets only the steps added since (Claude Code
    appends to the same file when a session is resumed), and its pending thread is bound when a
    person has committed its edits since."""
    sid = session_id_for(transcript.session_id)
    result = ImportResult(str(transcript.path), transcript.session_id, sid, False, warnings=transcript.warnings)
    known = db.execute("SELECT 1 FROM sessions WHERE id = ?", [sid]).fetchone() is not None
    if not known:
        live = db.execute("SELECT session_id FROM exchanges WHERE client_session_id = ? LIMIT 1",
                          [transcript.session_id]).fetchone()
        if live:
            result.reason = f"recorded by lit record (session {live[0]})"
            return result
    steps = build_steps(transcript)
    if not steps:
        result.reason = "no messages"
        return result
    old = list(db.query("SELECT s.id, s.kind, s.tool_use_id, s.thread_id, t.status, t.commit_sha FROM steps s"
                        " JOIN threads t ON s.thread_id = t.id WHERE s.session_id = ? ORDER BY t.seq, s.seq",
                        [sid])) if known else []
    if any(row["kind"] != s.fields["kind"] or row["tool_use_id"] != s.fields.get("tool_use_id")
           for row, s in zip(old, steps, strict=False)):
        result.reason = "already imported, and its transcript no longer starts with what was imported"
        return result
    start = len(old)
    for row, s in zip(old, steps, strict=False):
        s.step_id, s.thread_id = row["id"], row["thread_id"]
    first = next((e for e in transcript.entries if isinstance(e.get("cwd"), str)), {})
    cwd = first.get("cwd")
    repo = git_info(cwd)[0] if cwd and os.path.isdir(cwd) else None
    edits = recorded_edits(steps)
    bound = {r[0] for r in db.execute("SELECT commit_sha FROM threads WHERE commit_sha IS NOT NULL")}
    made = find_commits(steps, repo, edits)
    commits = [c for c in made if c.boundary >= start and c.sha not in bound]
    # The edits after the last commit the session made: a person may have committed them since.
    tail = [e for e in edits if e.index > max((c.boundary for c in made), default=-1)]
    pending_old = bool(old) and old[-1]["status"] == "pending" and len(steps) == start
    if tail and repo and (len(steps) > start or pending_old):
        later = committed_later(repo, steps, tail, exclude=bound | {c.sha for c in made},
                                claimed=claimed or set())
        if later:
            commits.append(Commit(later, len(steps), len(steps) - 1))
    if known and len(steps) <= start and not (pending_old and commits):
        result.reason = "already imported"
        return result
    redact = _redactor()
    version = first.get("version")
    with store.write_transaction(db):
        if not known:
            db["sessions"].insert({
                "id": sid, "started_at": steps[0].at or store.now(), "argv": json.dumps(["claude"]), "cwd": cwd,
                "repo_root": repo, "head_start": _parent(repo, commits[0].sha) if commits else None,
                "agent": f"{AGENT}/{version}" if version else AGENT, "exchanges_unrecorded": 0,
                "notes": f"imported from Claude Code session {transcript.session_id} ({transcript.path.name})"
                         + (f", on branch {first['gitBranch']}" if isinstance(first.get("gitBranch"), str) else ""),
            })
        db["sessions"].update(sid, {"ended_at": steps[-1].at or store.now(),
                                    **({"head_end": commits[-1].sha} if commits else {})})
        # Steps added since continue the thread left pending, as a live session's would.
        pending = old[-1]["thread_id"] if old and old[-1]["status"] == "pending" else None
        threads: list[tuple[str, Commit | None]] = []
        if start == len(steps) and commits:  # nothing new but the commit of the thread left pending
            db["threads"].update(pending, {"status": "bound", "commit_sha": commits[-1].sha,
                                           "bound_at": store.now()})
            threads.append((pending, commits[-1]))
        for lo, hi, commit in _split(steps, commits, start):
            tid = pending or store.open_thread(db, sid, repo)
            seq0 = store.next_step_seq(db, tid) if pending else 1
            pending = None
            for seq, i in enumerate(range(lo, hi), seq0):
                steps[i].step_id, steps[i].thread_id = f"{tid}.{seq}", tid
            begin = min(i for i in range(hi) if steps[i].thread_id == tid)
            # Titled by its first prompt; a thread that starts mid-task (after a commit) by the
            # prompt it continues.
            title = next((steps[i].fields.get("text") for i in [*range(begin, hi), *range(begin - 1, -1, -1)]
                          if steps[i].fields["kind"] == "prompt" and steps[i].conversation == 0), None)
            db["threads"].update(tid, {
                "started_at": steps[begin].at, "ended_at": steps[hi - 1].at,
                "status": "bound" if commit else "pending", "commit_sha": commit.sha if commit else None,
                "bound_at": steps[commit.boundary].at if commit else None,
                "title": _first_line(redact(title)) if title else None})
            threads.append((tid, commit))
        exchange_of = _write_exchanges(db, sid, transcript.session_id, steps, start)
        result.exchanges = len({exchange_of[i] for i in range(start, len(steps)) if i in exchange_of})
        step_rows = []
        for i in range(start, len(steps)):
            s = steps[i]
            row = {"id": s.step_id, "thread_id": s.thread_id, "session_id": sid,
                   "seq": int(s.step_id.rsplit(".", 1)[1]), "exchange_id": exchange_of.get(i),
                   "conversation_id": f"{sid}.{s.conv}",
                   "parent_step_id": steps[s.parent].step_id if s.parent is not None else None,
                   "created_at": s.at, **s.fields}
            for k in ("text", "raw"):
                if row.get(k):
                    row[k] = redact(row[k])
            if row.get("tool_input") is not None:
                row["tool_input"] = json.dumps(redact(row["tool_input"]), ensure_ascii=False)
            step_rows.append(row)
        columns = {c for row in step_rows for c in row}
        db["steps"].insert_all([{c: row.get(c) for c in columns} for row in step_rows])
        result.steps = len(steps) - start
        map_rows = []
        for tid, commit in threads:
            if commit is None:
                continue
            prior = [e for e in edits if e.index < commit.call]
            map_rows += [{"commit_sha": commit.sha, "path": path, "line_start": lo_line, "line_end": hi_line,
                          "step_id": steps[step].step_id if step is not None else None, "thread_id": tid}
                         for path, lo_line, hi_line, step in line_ranges(attribute(repo, commit.sha, prior))]
        db["line_map"].insert_all(map_rows)
        result.line_map_rows = len(map_rows)
    result.imported = True
    result.threads = [{"id": tid, "status": "bound" if c else "pending", "commit": c.sha if c else None,
                       "steps": sum(1 for s in steps[start:] if s.thread_id == tid)} for tid, c in threads]
    for tid, commit in threads:
        if commit is not None and _write_note(db, repo, tid, commit.sha, result):
            result.notes += 1
    return result


def _split(steps: list[_Step], commits: list[Commit], start: int = 0) -> list[tuple[int, int, Commit | None]]:
    """Threads as [lo, hi) step ranges from `start`, each ending with the result of the commit that
    binds it; the steps after the last commit form a pending thread."""
    out, lo = [], start
    for c in sorted(commits, key=lambda c: c.boundary):
        if c.boundary + 1 > lo:
            out.append((lo, c.boundary + 1, c))
            lo = c.boundary + 1
    if lo < len(steps):
        out.append((lo, len(steps), None))
    return out


def _write_exchanges(db: sqlite_utils.Database, sid: str, claude_session: str, steps: list[_Step],
                     start: int = 0) -> dict[int, str]:
    """One exchange per API request (Claude Code writes one line per block, all with the request's
    id); the prompt and tool results that a request sent belong to it, as when recorded live."""
    ids: dict[str, str] = {rid: ex_id for ex_id, rid in db.execute(
        "SELECT id, request_id FROM exchanges WHERE session_id = ?", [sid])}
    seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM exchanges WHERE session_id = ?", [sid]).fetchone()[0]
    exchange_of: dict[int, str] = {}
    rows: dict[str, dict] = {}
    usage_keys = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    for i, s in enumerate(steps):
        if s.request is None:
            continue
        key = s.request
        if key not in ids:
            seq += 1
            ids[key] = f"{sid}.{seq}"
            rows[ids[key]] = {
                "id": ids[key], "session_id": sid, "seq": seq, "started_at": s.at, "method": "POST",
                "path": "/v1/messages", "protocol": "anthropic", "status": 200, "streamed": 1, "complete": 1,
                "model": s.fields.get("model"), "conversation_id": f"{sid}.{s.conv}",
                "role": "subagent" if s.conversation else "main", "thread_id": s.thread_id,
                "client_session_id": claude_session, "request_id": s.request,
            }
        if ids[key] in rows:
            # Every block line repeats the usage; the request's last line has the final counts.
            usage = s.usage if isinstance(s.usage, dict) else {}
            rows[ids[key]].update({"stop_reason": s.stop_reason,
                                   **{k: usage.get(k) if isinstance(usage.get(k), int) else None
                                      for k in usage_keys}})
        exchange_of[i] = ids[key]
    db["exchanges"].insert_all(rows.values())
    # A user turn (prompt, tool results) went out with the next request of its conversation.
    upcoming: dict[str, str] = {}
    for i in range(len(steps) - 1, -1, -1):
        s = steps[i]
        if i in exchange_of:
            upcoming[s.conv] = exchange_of[i]
        elif s.conv in upcoming:
            exchange_of[i] = upcoming[s.conv]
    return exchange_of


def _parent(repo: str | None, sha: str) -> str | None:
    if not repo:
        return None
    out = run_git(repo, "rev-parse", "--verify", "-q", sha + "^")
    return out.stdout.strip() or None


def _write_note(db: sqlite_utils.Database, repo: str | None, thread_id: str, sha: str,
                result: ImportResult) -> bool:
    """The note in refs/notes/lit, through lit.git.notes when it is there (so blame and weave work
    from the notes too); without it the line map stays in the DB only."""
    if not repo:
        return False
    try:
        from lit.git import notes  # noqa: PLC0415 - optional until lit.git.notes lands
    except ImportError:
        return False
    build = getattr(notes, "build", None)
    write = getattr(notes, "write", None) or getattr(notes, "write_note", None)
    if build is None or write is None:
        return False
    try:
        write(repo, sha, build(db, thread_id, sha))
    except (LitError, TypeError) as e:  # TypeError: a notes module whose interface has moved on
        result.warnings.append(f"note for {sha[:12]} not written: {e}")
        return False
    return True
