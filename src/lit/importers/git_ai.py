"""git-ai's authorship notes as lit threads: `lit import git-ai [RANGE]`.

git-ai (github.com/git-ai-project/git-ai, `specs/git_ai_standard_v3.0.0.md`) keeps one note per
commit in `refs/notes/ai`, format `authorship/3.0.0`: an attestation section, a line of exactly
`---`, then JSON. The attestation section is file path lines (no indent; double-quoted when the
path holds whitespace) each followed by entries indented two spaces, `KEY RANGES`, where RANGES is
`1-10,15,20-22` and KEY is one of
  `s_<hex>::t_<hex>`  an AI session (`metadata.sessions`) and one checkpoint of it (a trace),
  `h_<hex>`           a known human (`metadata.humans`, `{"author": "Name <email>"}`),
  `<16 hex>`          a session of git-ai before 1.4 (`metadata.prompts`; 7 hex before 1.0).
Sessions and prompts name their agent as `agent_id {tool, id, model}`; old prompts may still hold
`messages` (user, assistant and tool_use entries), which become the thread's prompts and text.
Lines no key covers are "untracked": lit leaves them out of the line map. When entries overlap,
the later one wins, as in git-ai's own blame. Older git-ai wrote whole-JSON notes,
`authorship/0.0.1`, as blobs under `refs/ai/authorship/<commit>`: `files.<path>.authors[]` of
`{author, lines: [n | [a, b]], agent_metadata}`, the author an agent's name or a person's.

Each commit becomes one thread per agent session (bound to it, with its line map); a thread's
steps are one per checkpoint (`t_`) that wrote lines. A note that is not valid is skipped with a
one-line warning, as lit skips a damaged note of its own.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

import sqlite_utils

from lit.errors import LitError
from lit.git.run import GitError, cat_file_batch, git
from lit.importers import attribution
from lit.importers.attribution import Result, Step, Thread, stable_id

NOTES_REF = "refs/notes/ai"
LEGACY_REFS = "refs/ai/authorship/"
FORMAT = "git-ai"
MAX_NOTE_BYTES = 4 * 1024 * 1024
MAX_FIELD = 200  # characters kept of a tool, model or id
MAX_LINES = 2_000_000  # line attributions read from one note, overlaps counted

SESSION_KEY = re.compile(r"(s_[0-9a-f]{6,32})::(t_[0-9a-f]{6,32})")
HUMAN_KEY = re.compile(r"h_[0-9a-f]{6,32}")
LEGACY_KEY = re.compile(r"[0-9a-f]{7}|[0-9a-f]{16}")
# Numbers of up to 20 digits are read (and then checked against the file); longer ones are not numbers.
RANGES = re.compile(r"\d{1,20}(?:-\d{1,20})?(?:,\d{1,20}(?:-\d{1,20})?)*")
AGENT_NAMES = {"claude", "claude code", "claude-code", "cursor", "copilot", "github copilot", "codex", "windsurf",
               "gemini", "amp", "opencode", "aider", "cline", "continue", "droid", "pi"}


class NoteError(ValueError):
    """A note that is not a git-ai authorship log; the message says why, in a few words."""


@dataclass
class Agent:
    key: str  # the session's key in the note (s_..., a legacy prompt hash, or an 0.0.1 author)
    tool: str | None
    agent_session: str | None  # agent_id.id: the agent's own id of its session
    model: str | None
    human_author: str | None = None
    messages: list | None = None


def _text(value, limit: int = MAX_FIELD) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _path(raw: str) -> str | None:
    """A repository-relative path from an attestation line, None if it cannot be one."""
    if len(raw) >= 2 and raw.startswith('"') and raw.endswith('"'):
        raw = raw[1:-1]
    if not raw or "\x00" in raw or raw.startswith("/") or ".." in raw.split("/") or len(raw) > 4096:
        return None
    return raw


def parse_ranges(spec: str) -> list[tuple[int, int]]:
    """`1-4,9,12-13` -> [(1, 4), (9, 9), (12, 13)]; never expanded here (see attribution)."""
    if not RANGES.fullmatch(spec):
        raise NoteError(f"line ranges {spec[:40]!r} are not N or N-M separated by commas")
    out = []
    for part in spec.split(","):
        a, _, b = part.partition("-")
        out.append((int(a), int(b or a)))
    return out


def parse_v3(text: str) -> tuple[list[tuple[str, str, list[tuple[int, int]]]], dict, list[str]]:
    """(attestations as (path, key, ranges), metadata, problems) of an authorship/3.x note."""
    lines = text.split("\n")
    try:
        divider = lines.index("---")
    except ValueError:
        raise NoteError("no '---' line between the attestations and the JSON") from None
    try:
        meta = json.loads("\n".join(lines[divider + 1:]))
    except ValueError as e:
        raise NoteError(f"its JSON does not parse ({e.msg} at line {e.lineno})") from None
    if not isinstance(meta, dict):
        raise NoteError("its JSON is not an object")
    version = meta.get("schema_version")
    if not (isinstance(version, str) and version.startswith("authorship/3.")):
        raise NoteError(f"schema_version {str(version)[:40]!r} is not authorship/3.x")
    entries, problems = [], []
    path = None
    for n, line in enumerate(lines[:divider], 1):
        if not line.strip():
            continue
        if not line.startswith(" "):
            path = _path(line.rstrip("\r"))
            if path is None:
                problems.append(f"line {n}: {line[:60]!r} is not a path in the repository")
            continue
        if path is None or not line.startswith("  ") or line.startswith("   "):
            problems.append(f"line {n}: an entry without a file, or not indented two spaces")
            continue
        key, _, spec = line[2:].rstrip("\r").partition(" ")
        try:
            entries.append((path, key, parse_ranges(spec)))
        except NoteError as e:
            problems.append(f"line {n}: {e}")
    return entries, meta, problems


def _agent(key: str, record) -> Agent | None:
    if not isinstance(record, dict):
        return None
    agent_id = record.get("agent_id") if isinstance(record.get("agent_id"), dict) else {}
    messages = record.get("messages") if isinstance(record.get("messages"), list) else None
    return Agent(key, _text(agent_id.get("tool")), _text(agent_id.get("id")), _text(agent_id.get("model")),
                 _text(record.get("human_author")), messages)


def _message_steps(messages: list | None, model: str | None, tool: str | None) -> list[Step]:
    """The prompts, answers and tool calls an old git-ai note kept (the spec's `messages`)."""
    steps = []
    for m in (messages or [])[:500]:
        if not isinstance(m, dict):
            continue
        kind = m.get("type")
        raw = {"imported": FORMAT, "agent": tool}
        if kind == "user" and isinstance(m.get("text"), str):
            steps.append(Step("prompt", text=m["text"][:100_000], raw=raw))
        elif kind == "assistant" and isinstance(m.get("text"), str):
            steps.append(Step("text", text=m["text"][:100_000], model=model, raw=raw))
        elif kind == "tool_use" and isinstance(m.get("name"), str):
            steps.append(Step("tool_call", tool_name=m["name"][:MAX_FIELD], model=model, raw=raw,
                              tool_input=m["input"] if isinstance(m.get("input"), dict) else None))
    return steps


def _thread(commit: str, agent: Agent, version: str) -> Thread:
    session = stable_id(FORMAT, agent.tool or "", agent.agent_session or agent.key)
    first_prompt = next((m.get("text") for m in agent.messages or []
                         if isinstance(m, dict) and m.get("type") == "user" and isinstance(m.get("text"), str)), None)
    title = (first_prompt or "").strip().split("\n", 1)[0] or \
        f"{agent.tool or 'an agent'} session {agent.agent_session or agent.key} (imported from git-ai)"
    note = (f"imported from git-ai ({version}): {agent.tool or 'agent'} session {agent.agent_session or agent.key}"
            + (f", directed by {agent.human_author}" if agent.human_author else ""))
    return Thread(id=stable_id(FORMAT, commit, agent.key), session_id=session, commit=commit, agent=agent.tool,
                  title=title, session_note=note, steps=_message_steps(agent.messages, agent.model, agent.tool))


def _edit_step(thread: Thread, agent: Agent, key: str) -> int:
    """The index of the step for one checkpoint (or one legacy session) that wrote lines."""
    for i, s in enumerate(thread.steps):
        if s.kind == "tool_call" and s.raw.get("key") == key:
            return i
    thread.steps.append(Step("tool_call", tool_name=None, model=agent.model,
                             raw={"imported": FORMAT, "agent": agent.tool, "key": key,
                                  "agent_session": agent.agent_session}))
    return len(thread.steps) - 1


def _assemble(repo, commit: str, owners: dict[str, list[tuple[str, list[tuple[int, int]]]]],
              agents: dict[str, Agent], version: str, result: Result) -> list[Thread]:
    """Threads of one commit from (path -> [(owner key, ranges)]), where an owner key is an
    agent's key with the checkpoint (`s_..::t_..`), a legacy or 0.0.1 agent key, or None for a
    person. Later entries win; ranges outside the file are dropped."""
    counts = attribution.line_counts(repo, commit, owners)
    budget = MAX_LINES
    threads: dict[str, Thread] = {}
    per_file: dict[str, dict[int, tuple[str, int | None]]] = {}
    human_lines: dict[str, list[int]] = {}
    for path, entries in owners.items():
        owner_of: dict[int, tuple[str, int | None] | None] = {}
        for key, ranges in entries:
            kept = attribution.checked_ranges(ranges, counts.get(path), f"{commit[:12]} {path}", result)
            if not kept:
                continue
            budget -= sum(end - start + 1 for start, end in kept)
            if budget < 0:
                raise NoteError(f"its entries cover more than {MAX_LINES:,} lines")
            if key is None:
                value = None
            else:
                agent_key = SESSION_KEY.fullmatch(key).group(1) if SESSION_KEY.fullmatch(key) else key
                agent = agents[agent_key]
                if agent_key not in threads:
                    threads[agent_key] = _thread(commit, agent, version)
                value = (agent_key, _edit_step(threads[agent_key], agent, key))
            for start, end in kept:
                for n in range(start, end + 1):
                    owner_of[n] = value
        for n in sorted(owner_of):
            if owner_of[n] is None:
                human_lines.setdefault(path, []).append(n)
            else:
                per_file.setdefault(path, {})[n] = owner_of[n]
    for path, lines in per_file.items():
        for n in sorted(lines):
            agent_key, index = lines[n]
            threads[agent_key].add_line(path, n, index)
    if threads:
        first = next(iter(threads.values()))  # a person's lines go with the commit's first thread
        for path, lines in human_lines.items():
            for n in lines:
                first.add_line(path, n, None)
    return list(threads.values())


def threads_from_v3(repo, commit: str, text: str, result: Result) -> list[Thread]:
    entries, meta, problems = parse_v3(text)
    for p in problems:
        result.warn(f"git-ai note on {commit[:12]}: {p}; skipped")
    maps = {name: meta.get(name) if isinstance(meta.get(name), dict) else {} for name in ("sessions", "prompts",
                                                                                           "humans")}
    agents: dict[str, Agent] = {}
    owners: dict[str, list] = {}
    for path, key, ranges in entries:
        m = SESSION_KEY.fullmatch(key)
        if m:
            agent = _agent(m.group(1), maps["sessions"].get(m.group(1)))
        elif HUMAN_KEY.fullmatch(key):
            if not isinstance(maps["humans"].get(key), dict):
                result.warn(f"git-ai note on {commit[:12]}: {key} is not in its humans; skipped")
                continue
            owners.setdefault(path, []).append((None, ranges))
            continue
        elif LEGACY_KEY.fullmatch(key):
            agent = _agent(key, maps["prompts"].get(key))
        else:
            result.warn(f"git-ai note on {commit[:12]}: {key[:40]!r} is not a session, human or prompt key; skipped")
            continue
        if agent is None:
            result.warn(f"git-ai note on {commit[:12]}: {key[:40]} has no record in its metadata; skipped")
            continue
        agents.setdefault(agent.key, agent)
        owners.setdefault(path, []).append((key, ranges))
    return _assemble(repo, commit, owners, agents, meta["schema_version"][:40], result)


def threads_from_v0(repo, commit: str, text: str, result: Result) -> list[Thread]:
    """An `authorship/0.0.1` note: whole JSON, authors with line lists."""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise NoteError(f"its JSON does not parse ({e.msg})") from None
    if not isinstance(data, dict) or not str(data.get("schema_version", "")).startswith("authorship/0."):
        raise NoteError("it is not an authorship/0.x log")
    files = data.get("files") if isinstance(data.get("files"), dict) else {}
    agents: dict[str, Agent] = {}
    owners: dict[str, list] = {}
    for raw_path, entry in files.items():
        path = _path(raw_path) if isinstance(raw_path, str) else None
        authors = entry.get("authors") if isinstance(entry, dict) else None
        if path is None or not isinstance(authors, list):
            result.warn(f"git-ai note on {commit[:12]}: {str(raw_path)[:60]!r} is not a file entry; skipped")
            continue
        for a in authors:
            if not isinstance(a, dict) or not isinstance(a.get("author"), str):
                continue
            ranges = []
            for item in a.get("lines") if isinstance(a.get("lines"), list) else []:
                if isinstance(item, int) and not isinstance(item, bool):
                    ranges.append((item, item))
                elif (isinstance(item, list) and len(item) == 2
                      and all(isinstance(x, int) and not isinstance(x, bool) for x in item)):
                    ranges.append((item[0], item[1]))
            meta = a.get("agent_metadata") if isinstance(a.get("agent_metadata"), dict) else None
            name = a["author"][:MAX_FIELD]
            if meta is None and name.strip().lower() not in AGENT_NAMES:
                owners.setdefault(path, []).append((None, ranges))
                continue
            meta = meta or {}
            key = f"author:{name}"
            agents.setdefault(key, Agent(key, name, _text(meta.get("id") or meta.get("session_id")),
                                         _text(meta.get("model"))))
            owners.setdefault(path, []).append((key, ranges))
    return _assemble(repo, commit, owners, agents, str(data["schema_version"])[:40], result)


# --- reading the refs --------------------------------------------------------------------------


def _sizes(repo, objects: list[str]) -> dict[str, tuple[str, int]]:
    """object -> (type, size), in one `git cat-file --batch-check`."""
    if not objects:
        return {}
    out = git(["cat-file", "--batch-check"], repo, input="\n".join(objects) + "\n")
    sizes = {}
    for name, line in zip(objects, out.splitlines(), strict=False):
        parts = line.split()
        if len(parts) == 3 and parts[2].isdigit():
            sizes[name] = (parts[1], int(parts[2]))
    return sizes


def notes_of(repo, commits: set[str]) -> list[tuple[str, str, str]]:
    """(commit, format, blob) of each git-ai note of `commits`: refs/notes/ai, then the old refs
    for commits that have no newer note."""
    found: dict[str, tuple[str, str]] = {}
    for line in git(["notes", "--ref", NOTES_REF, "list"], repo, check=False).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] in commits:
            found[parts[1]] = ("v3", parts[0])
    refs = git(["for-each-ref", "--format=%(refname) %(objectname)", LEGACY_REFS], repo, check=False)
    for line in refs.splitlines():
        ref, _, obj = line.partition(" ")
        sha = ref[len(LEGACY_REFS):]
        if sha in commits and sha not in found:
            found[sha] = ("v0", obj)
    return [(c, f, b) for c, (f, b) in found.items()]


def import_range(db: sqlite_utils.Database, repo: str | os.PathLike, rev_range: str = "HEAD") -> Result:
    """Import the git-ai notes of the commits of RANGE; what the DB has already is left alone."""
    try:
        commits = git(["rev-list", "--end-of-options", rev_range, "--"], repo).splitlines()
    except GitError as e:
        raise LitError(f"{rev_range!r} is not a commit or a range of this repository") from e
    order = {c: i for i, c in enumerate(reversed(commits))}
    notes = sorted(notes_of(repo, set(commits)), key=lambda n: order[n[0]])
    result = Result()
    sizes = _sizes(repo, [blob for _, _, blob in notes])
    readable = [b for _, _, b in notes if sizes.get(b, ("", 0))[0] == "blob" and sizes[b][1] <= MAX_NOTE_BYTES]
    contents = cat_file_batch(readable, cwd=repo)
    threads: list[Thread] = []
    noted = attribution.lit_notes(repo)
    for commit, fmt, blob in notes:
        where = f"git-ai note on {commit[:12]}"
        if blob not in contents:
            kind, size = sizes.get(blob, ("missing", 0))
            result.warn(f"{where}: " + (f"{size} bytes, over {MAX_NOTE_BYTES}" if kind == "blob" else
                                        f"a {kind}, not a blob") + "; skipped")
            result.skipped.append((commit, "note not read"))
            continue
        if attribution.lit_owned(db, commit, noted):
            result.skipped.append((commit, "lit's own line map"))
            continue
        text = contents[blob].decode("utf-8", "replace")
        try:
            found = (threads_from_v3 if fmt == "v3" else threads_from_v0)(repo, commit, text, result)
        except NoteError as e:
            result.warn(f"{where}: {e}; skipped")
            result.skipped.append((commit, "not a git-ai authorship log"))
            continue
        if not found:
            result.skipped.append((commit, "no line attributed to an agent"))
        threads += found
    return attribution.write(db, repo, threads, result)
