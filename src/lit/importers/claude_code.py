"""Claude Code's own transcripts as lit sessions: `lit import claude-code [PATH]`.

Claude Code writes `~/.claude/projects/<cwd, every non-alphanumeric as ->/<session id>.jsonl`: one
line per content block (`uuid`/`parentUuid` chains), tool results with a `toolUseResult` (the
structured patch of an Edit or Write, the stdout of a Bash call, the `gitOperation` of a commit),
and subagents in `<session id>/subagents/agent-<id>.jsonl` (older versions: sidechain lines in the
session file or `agent-<id>.jsonl` beside it). This module reads them into steps in lit's kinds;
lit.importers.session plans and writes the session (threads cut at the commits its Bash calls
made, line maps from its Write and Edit calls).

Idempotent: the lit session id is derived from Claude Code's session id, and a session that lit
recorded live (its exchanges carry the same `x-claude-code-session-id`) is not imported again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from lit.git.run import repo_root
from lit.importers.commits import printed_sha, recorded_edits, tool_input_of
from lit.importers.session import (LINE, AgentLogs, ImportResult, Source, Step, find_logs, link_results, read_jsonl,
                                   run, timestamp)
from lit.steps import from_block, is_context, result_text

AGENT = "claude-code-import"
SUBAGENT_TOOLS = ("Agent", "Task")
# Entries that are bookkeeping, not conversation: queue operations, titles, file-history
# snapshots, attachments (skill and agent listings), progress lines.
CONVERSATION_TYPES = ("user", "assistant")


# --- finding and reading transcripts -----------------------------------------------------------


def claude_dir() -> Path:
    """Where Claude Code keeps its state: $CLAUDE_CONFIG_DIR, else ~/.claude."""
    env = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(env).expanduser() if env else Path.home() / ".claude"


def project_dir_name(path: str | os.PathLike) -> str:
    """The folder name Claude Code uses for a working directory: each non-alphanumeric -> '-'."""
    return re.sub(r"[^A-Za-z0-9]", "-", str(path))


def _project_transcripts(projects: Path, root: str) -> list[Path]:
    names = {project_dir_name(os.path.realpath(root)), project_dir_name(root)}
    found: list[Path] = []
    if projects.is_dir():
        for folder in sorted(projects.iterdir()):
            # Sessions started in a subfolder of the repository have a longer name; their cwd says
            # whether they really are inside it (a sibling "repo-old" has the same prefix).
            if folder.is_dir() and (folder.name in names or any(folder.name.startswith(n + "-") for n in names)):
                found.extend(sorted(folder.glob("*.jsonl")))
    return found


def _is_session_file(f: Path) -> bool:
    # Subagent files are read with their session, not as sessions of their own. Only regular files:
    # opening a FIFO or a device named *.jsonl would wait forever.
    return (f.suffix == ".jsonl" and not f.name.startswith("agent-") and f.parent.name != "subagents"
            and f.is_file())


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


TRANSCRIPTS = AgentLogs(agent="Claude Code", log="transcript", logs="transcripts", command="lit import claude-code",
                        folder=lambda: claude_dir() / "projects", candidates=_project_transcripts,
                        is_log=_is_session_file, cwd_of=_first_cwd)


def find_transcripts(path: str | os.PathLike | None = None, cwd: str | None = None) -> list[Path]:
    """The session files to import: PATH (a .jsonl file, or a folder searched for session files),
    or by default the sessions of the current repository (or folder) under ~/.claude/projects."""
    cwd = cwd or os.getcwd()
    return find_logs(path, str(repo_root(cwd) or cwd), TRANSCRIPTS)


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
    files = sorted(f for f in (path.parent / path.stem / "subagents").glob("agent-*.jsonl") if f.is_file())
    files += [f for f in sorted(path.parent.glob("agent-*.jsonl"))
              if f.is_file() and _first_session(f) == session_id]  # older versions: beside the session file
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


def _user_steps(entry: dict, at: float, conv: int) -> list[Step]:
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
            steps.append(Step({"kind": "tool_result", "text": result_text(block.get("content")),
                                "tool_use_id": block.get("tool_use_id"),
                                "is_error": int(bool(block.get("is_error")))}, at, conv,
                               tool_use_result=entry.get("toolUseResult")))
        elif btype == "text":
            if is_context(block.get("text", "")):  # <system-reminder>: Claude Code's, for the model
                steps.append(Step({"kind": "context", "text": block.get("text", "")}, at, conv))
            else:
                texts.append(block.get("text", ""))
        else:
            steps.append(Step({"kind": "other", "raw": json.dumps(block, ensure_ascii=False)}, at, conv))
    if texts:
        text = "\n\n".join(texts)
        # Slash commands, their output, interruptions and compaction summaries are no prompts.
        other = (entry.get("isCompactSummary") or text.lstrip().startswith(("<command-", "<local-command-"))
                 or text.startswith("[Request interrupted"))
        steps.append(Step({"kind": "other" if other else "prompt", "text": text}, at, conv))
    return steps


def _assistant_steps(entry: dict, at: float, conv: int) -> list[Step]:
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
        fields = from_block(block)
        if synthetic:
            fields = {"kind": "other", "text": result_text([block]), "raw": json.dumps(block, ensure_ascii=False)}
        fields["model"] = model
        out.append(Step(fields, at, conv, request=request if model else None,
                         usage=message.get("usage"), stop_reason=message.get("stop_reason")))
    return out


def _entry_steps(entries: list[dict], conv: int, start: float, warnings: list[str]) -> list[Step]:
    steps: list[Step] = []
    at = start
    for entry in entries:
        at = timestamp(entry.get("timestamp"), at)
        try:
            if entry.get("type") == "user":
                steps.extend(_user_steps(entry, at, conv))
            elif entry.get("type") == "assistant":
                steps.extend(_assistant_steps(entry, at, conv))
        except (AttributeError, TypeError, ValueError) as e:
            # A line of another shape than the versions this was written against: said, skipped.
            warnings.append(f"{entry.get(LINE, '?')}: {entry.get('type')} line of an unknown shape ({e}), skipped")
    return steps


def build_steps(transcript: Transcript) -> list[Step]:
    """All steps of the session in thread order: a subagent's steps come right before the result
    of the call that started it (as the recorder sees them), hanging under that call."""
    main = _entry_steps(transcript.entries, 0, 0.0, transcript.warnings)
    calls = {s.fields.get("tool_use_id"): s for s in main if s.fields["kind"] == "tool_call"}
    by_call: dict[str, list[Step]] = {}
    conv_call: dict[int, str] = {}
    orphans: list[Step] = []
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
    out: list[Step] = []
    for s in main:
        if s.fields["kind"] == "tool_result" and s.fields.get("tool_use_id") in by_call:
            out.extend(by_call.pop(s.fields["tool_use_id"]))
        out.append(s)
    for steps in by_call.values():  # a subagent still running when the transcript ends
        out.extend(steps)
    out.extend(orphans)
    call_index = link_results(out)
    for s in out:
        if s.conversation in conv_call:
            s.parent = call_index.get(conv_call[s.conversation])
    return out


def _subagent_call(main: list[Step], sub: Subagent, calls: dict) -> str | None:
    """The Agent/Task call that started a subagent: its result names the agent id, or its prompt
    is the subagent's first message."""
    for s in main:
        tur = s.tool_use_result
        if s.fields["kind"] == "tool_result" and isinstance(tur, dict) and tur.get("agentId") == sub.agent_id:
            return s.fields.get("tool_use_id")
    first = next((e for e in sub.entries if e.get("type") == "user"), None)
    message = (first or {}).get("message")
    content = message.get("content") if isinstance(message, dict) else None
    text = content if isinstance(content, str) else result_text(content)
    for call_id, call in calls.items():
        if call.fields.get("tool_name") in SUBAGENT_TOOLS:
            prompt = tool_input_of(call).get("prompt")
            if isinstance(prompt, str) and prompt.strip() and prompt.strip() in (text or ""):
                return call_id
    return None


# --- the import --------------------------------------------------------------------------------


def session_id_for(claude_session: str) -> str:
    """The lit session id of an imported Claude Code session: derived, so a second import finds it."""
    return hashlib.sha256(f"claude-code:{claude_session}".encode()).hexdigest()[:12]


def source(transcript: Transcript) -> Source:
    steps = build_steps(transcript)
    first = next((e for e in transcript.entries if isinstance(e.get("cwd"), str)), {})
    version = first.get("version") if isinstance(first.get("version"), str) else None
    branch = first.get("gitBranch") if isinstance(first.get("gitBranch"), str) else None
    return Source(
        agent=f"{AGENT}/{version}" if version else AGENT, session_id=session_id_for(transcript.session_id),
        agent_session=transcript.session_id, path=transcript.path, steps=steps, edits=recorded_edits(steps),
        notes=f"imported from Claude Code session {transcript.session_id} ({transcript.path.name})"
              + (f", on branch {branch}" if branch else ""),
        cwd=first.get("cwd"), argv=["claude"], warnings=transcript.warnings)


def import_path(db: sqlite_utils.Database, path: str | os.PathLike | None = None, *,
                repo: str | None = None, cwd: str | None = None) -> list[ImportResult]:
    """Import the sessions at `path` (default: the current repository's) into `repo`: their
    commits are looked for there and their notes written there, whatever folder a transcript says
    it ran in (None: outside any repository, the sessions are imported unbound)."""
    transcripts = [load_transcript(f) for f in find_transcripts(path, cwd)]
    # A commit some session's Bash made is that session's, never "committed later by a person".
    claimed = {sha for t in transcripts for sha in printed_shas(t)}
    return [run(db, source(t), repo, claimed=claimed) for t in transcripts]


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
