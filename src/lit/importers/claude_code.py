"""Claude Code's own transcripts as lit sessions: `lit import claude-code [PATH]`.

Claude Code writes `~/.claude/projects/<cwd, every non-alphanumeric as ->/<session id>.jsonl`: one
line per content block (`uuid`/`parentUuid` chains), tool results with a `toolUseResult` (the
structured patch of an Edit or Write, the stdout of a Bash call, the `gitOperation` of a commit),
and subagents in `<session id>/subagents/agent-<id>.jsonl` (older versions: sidechain lines in the
session file or `agent-<id>.jsonl` beside it). Each session becomes one lit session: steps in lit's
kinds, one exchange per API request (usage and model, so tokens add up in `lit serve`), threads cut
at the commits its Bash calls made, bound to them, with a line map computed from the recorded
edits (the last Write/Edit whose added lines hold a line of the commit wrote it; else a person).

Idempotent: the lit session id is derived from Claude Code's session id, and a session that lit
recorded live (its exchanges carry the same `x-claude-code-session-id`) is not imported again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from lit import store
from lit.errors import LitError
from lit.recorder import _block_step, _first_line, _is_reminder, _redactor, _result_text, git_info

AGENT = "claude-code-import"
EDIT_TOOLS = ("Write", "Edit", "MultiEdit")
SUBAGENT_TOOLS = ("Agent", "Task")
# Entries that are bookkeeping, not conversation: queue operations, titles, file-history
# snapshots, attachments (skill and agent listings), progress lines.
CONVERSATION_TYPES = ("user", "assistant")
LINE = "\0line"  # where an entry was read (file:line), for warnings; never stored
GIT_COMMIT = re.compile(r"\bgit\b(?:\s+-[Cc]\s+\S+|\s+--?[\w-]+(?:=\S+)?)*\s+commit\b")
COMMIT_LINE = re.compile(r"^\[(?P<branch>[^\]\s]+)(?: \([^)]*\))? (?P<sha>[0-9a-f]{7,40})\] (?P<subject>.*)$",
                         re.MULTILINE)
HEREDOC = re.compile(r"<<-?\s*['\"]?(\w+)['\"]?\n(.*?)\n\s*\1\b", re.DOTALL)


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


def _input(step: _Step) -> dict:
    value = step.fields.get("tool_input")
    return value if isinstance(value, dict) else {}


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
            prompt = _input(call).get("prompt")
            if isinstance(prompt, str) and prompt.strip() and prompt.strip() in (text or ""):
                return call_id
    return None


# --- commits -----------------------------------------------------------------------------------


@dataclass
class Commit:
    sha: str
    call: int  # index of the Bash step that made it
    boundary: int  # the thread ends with this step (the call's result)


def _git(repo: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-c", "core.quotePath=false", *args], cwd=repo, capture_output=True,
                          text=True, errors="replace", timeout=60)


def commit_message(command: str) -> str | None:
    """The message a `git commit` command line gives (-m, or a heredoc), if it says."""
    m = HEREDOC.search(command)
    if m:
        return m.group(2).strip()
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    for i, w in enumerate(words):
        if (w == "--message" or re.fullmatch(r"-[a-zA-Z]*m", w)) and i + 1 < len(words):  # -m, -am, -qm
            return words[i + 1]
        if w.startswith("--message="):
            return w.split("=", 1)[1]
        if w.startswith("-m") and len(w) > 2 and not w.startswith("--"):
            return w[2:]
    return None


def _reachable(repo: str, sha: str) -> bool:
    """On a branch or tag (not amended or rebased away). HEAD first: one short walk, where asking
    every ref costs a walk per ref in a repository with many tags."""
    if _git(repo, "merge-base", "--is-ancestor", sha, "HEAD").returncode == 0:
        return True
    out = _git(repo, "for-each-ref", "--contains", sha, "--count=1", "--format=%(refname)")
    return out.returncode == 0 and bool(out.stdout.strip())


def find_commits(steps: list[_Step], repo: str | None, edits: list[_Edit]) -> list[Commit]:
    """The commits the session's Bash calls made, found in the repository: by the SHA Claude Code
    or git printed when it is still there, else by time, message and content (an amend or a
    rebase since gives the same change a new SHA)."""
    if not repo:
        return []
    found: list[Commit] = []
    used: set[str] = set()
    results = _results(steps)
    for i, s in enumerate(steps):
        if s.fields["kind"] != "tool_call" or s.fields.get("tool_name") != "Bash":
            continue
        command = _input(s).get("command") or ""
        if not isinstance(command, str) or not GIT_COMMIT.search(command):
            continue
        result = results.get(i)
        if result is None or steps[result].fields.get("is_error") and not _printed_sha(steps[result]):
            continue
        short, subject = _printed_sha(steps[result])
        subject = subject or (commit_message(command) or "").split("\n", 1)[0].strip() or None
        sha = None
        if short:
            rev = _git(repo, "rev-parse", "--verify", "-q", short + "^{commit}")
            if rev.returncode == 0 and _reachable(repo, rev.stdout.strip()):
                sha = rev.stdout.strip()
        if sha is None and (short or subject):
            sha = _match_commit(repo, steps, s.at, steps[result].at, subject, edits, i, used)
        if sha and sha not in used:
            used.add(sha)
            found.append(Commit(sha, i, result))
    return found


def _results(steps: list[_Step]) -> dict[int, int]:
    """Index of each tool call -> index of its result."""
    return {s.result_of: j for j, s in enumerate(steps) if s.result_of is not None}


def _printed_sha(result: _Step) -> tuple[str | None, str | None]:
    tur = result.tool_use_result if isinstance(result.tool_use_result, dict) else {}
    op = ((tur.get("gitOperation") or {}).get("commit") or {}) if isinstance(tur.get("gitOperation"), dict) else {}
    stdout = tur.get("stdout") if isinstance(tur.get("stdout"), str) else (result.fields.get("text") or "")
    m = COMMIT_LINE.search(stdout or "")
    sha = op.get("sha") if isinstance(op.get("sha"), str) else (m.group("sha") if m else None)
    return sha, (m.group("subject").strip() if m else None)


def _match_commit(repo: str, steps: list[_Step], t_call: float, t_result: float, subject: str | None,
                  edits: list[_Edit], call: int, used: set[str]) -> str | None:
    # Committer time is never before author time, so this bounds the walk without missing any.
    log = _git(repo, "log", "--all", "--no-merges", "--format=%H%x1f%at%x1f%s", f"--since={int(t_call) - 60}")
    candidates = []
    for line in log.stdout.splitlines():
        parts = line.split("\x1f")
        if len(parts) != 3 or parts[0] in used:
            continue
        sha, at, subj = parts[0], int(parts[1]), parts[2]
        # Author time survives amend (without --reset-author) and rebase; git stores seconds.
        if not (t_call - 2 <= at <= t_result + 2):
            continue
        if subject and subj.strip() != subject:
            continue
        candidates.append(sha)
    if subject and len(candidates) == 1:
        return candidates[0]
    # Several at once, or no message to go by: the commit holding most of the recorded edits' lines.
    prior = [e for e in edits if e.index < call]
    scored = [(sum(1 for *_, step in attribute(repo, sha, prior) if step is not None), sha) for sha in candidates]
    best = max(scored, default=(0, None))
    return best[1] if best[0] > 0 or subject else None


def committed_later(repo: str, steps: list[_Step], tail: list[_Edit], *, exclude: set[str],
                    claimed: set[str], limit: int = 50) -> str | None:
    """The first commit, from the first of the session's uncommitted edits on, that holds lines
    those edits wrote (three, or all if they wrote fewer): a person committing the session's work
    after it. Blank and very short lines (a brace, `end`) prove nothing and are not counted."""
    after = steps[tail[0].index].at
    written = {(e.path, ln) for e in tail for ln in e.lines if len(ln.strip()) >= 4}
    need = min(3, len(written))
    if not need:
        return None
    log = _git(repo, "log", "--all", "--no-merges", "--reverse", "--format=%H%x1f%at", f"--since={int(after) - 60}")
    seen = 0
    for line in log.stdout.splitlines():
        sha, _, at = line.partition("\x1f")
        if not at.isdigit() or int(at) < after - 2 or sha in exclude or any(sha.startswith(p) for p in claimed):
            continue
        seen += 1
        if seen > limit:
            break
        added = added_lines(repo, sha)
        texts = {(path, n): text for path, n, text in added}
        matched = {texts[(path, n)] for path, n, step in attribute(repo, sha, tail, added)
                   if step is not None and len(texts[(path, n)].strip()) >= 4}
        if len(matched) >= need:
            return sha
    return None


# --- the line map ------------------------------------------------------------------------------


@dataclass
class _Edit:
    index: int  # the tool call's step index
    path: str  # real path of the file
    lines: set[str]  # the lines it added


def recorded_edits(steps: list[_Step]) -> list[_Edit]:
    """The Write/Edit/MultiEdit calls that succeeded, with the lines each added: the `+` lines of
    Claude Code's structured patch, or a new file's content, else new_string minus old_string."""
    out = []
    results = _results(steps)
    for i, s in enumerate(steps):
        if s.fields["kind"] != "tool_call" or s.fields.get("tool_name") not in EDIT_TOOLS:
            continue
        result = steps[results[i]] if i in results else None
        tur = result.tool_use_result if result else None
        if result is not None and (result.fields.get("is_error") or isinstance(tur, str)):
            continue  # the edit failed: nothing was written
        tool_input = _input(s)
        tur = tur if isinstance(tur, dict) else {}
        path = tur.get("filePath") or tool_input.get("file_path")
        if not isinstance(path, str):
            continue
        lines = _added_lines(s.fields["tool_name"], tool_input, tur)
        out.append(_Edit(i, os.path.realpath(path), lines))
    return out


def _added_lines(tool: str, tool_input: dict, tur: dict) -> set[str]:
    patch = tur.get("structuredPatch")
    # A Write over an existing file ("update") added only its patch's lines, maybe none.
    if tool == "Write" and (tur.get("type") == "create" or not isinstance(patch, list)):
        content = tur.get("content") if isinstance(tur.get("content"), str) else tool_input.get("content")
        return set((content or "").splitlines())
    if isinstance(patch, list) and (patch or tool == "Write"):
        return {ln[1:] for hunk in patch if isinstance(hunk, dict)
                for ln in hunk.get("lines") or [] if isinstance(ln, str) and ln.startswith("+")}
    pairs = [(tool_input.get("old_string"), tool_input.get("new_string"))]
    if tool == "MultiEdit":
        pairs = [(e.get("old_string"), e.get("new_string")) for e in tool_input.get("edits") or []
                 if isinstance(e, dict)]
    added: set[str] = set()
    for old, new in pairs:
        old_lines = set((old or "").splitlines()) if isinstance(old, str) else set()
        added |= {ln for ln in (new or "").splitlines() if ln not in old_lines} if isinstance(new, str) else set()
    return added


def added_lines(repo: str, sha: str) -> list[tuple[str, int, str]]:
    """(path, new line number, text) of each line the commit added or changed (new side)."""
    # A merge gives no lines: what it brings in was written by the commits merged.
    out = _git(repo, "diff-tree", "-p", "--root", "-M", "--unified=0", "--no-color", "--no-ext-diff", sha)
    if out.returncode != 0:
        raise LitError(f"cannot read commit {sha[:12]} in {repo}: {out.stderr.strip()}")
    rows, path, line, header = [], None, 0, False
    for text in out.stdout.split("\n"):
        if text.startswith("diff --git "):
            header, path = True, None
        elif header and text.startswith("+++ "):
            target = text[4:]
            path = None if target == "/dev/null" else _unquote(target)[2:]
        elif text.startswith("@@ "):
            header = False
            m = re.match(r"@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@", text)
            line = int(m.group(1)) if m else 0
        elif not header and text.startswith("+") and path is not None and line:
            rows.append((path, line, text[1:]))
            line += 1
    return rows


def _unquote(path: str) -> str:
    if path.startswith('"') and path.endswith('"'):
        return path[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape").encode(
            "latin-1").decode("utf-8", "replace")
    return path


def attribute(repo: str, sha: str, edits: list[_Edit],
              added: list[tuple[str, int, str]] | None = None) -> list[tuple[str, int, int | None]]:
    """For each added line of the commit: (path, line, index of the edit step that wrote it, or
    None for a person). The last edit before the commit whose added lines hold it wins."""
    real_root = os.path.realpath(repo)
    by_path: dict[str, list[_Edit]] = {}
    for e in edits:
        by_path.setdefault(e.path, []).append(e)
    out = []
    for path, line, text in added if added is not None else added_lines(repo, sha):
        candidates = by_path.get(os.path.join(real_root, path), [])
        step = next((e.index for e in reversed(candidates) if text in e.lines or text.rstrip("\r") in e.lines),
                    None)
        out.append((path, line, step))
    return out


def line_ranges(attributed: list[tuple[str, int, int | None]]) -> list[tuple[str, int, int, int | None]]:
    """Consecutive lines of one file from one step as inclusive ranges."""
    ranges: list[list] = []
    for path, line, step in attributed:
        last = ranges[-1] if ranges else None
        if last and last[0] == path and last[2] == line - 1 and last[3] == step:
            last[2] = line
        else:
            ranges.append([path, line, line, step])
    return [tuple(r) for r in ranges]


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
                sha, _ = _printed_sha(_Step({"kind": "tool_result"}, 0.0, 0, tool_use_result=tur))
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
    with db.conn:
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
    out = _git(repo, "rev-parse", "--verify", "-q", sha + "^")
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
