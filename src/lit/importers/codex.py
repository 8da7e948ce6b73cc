"""Codex's own session logs as lit sessions: `lit import codex [PATH]`.

Codex writes one rollout per session, `$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<session
id>.jsonl` (CODEX_HOME defaults to ~/.codex): one line per item, `{"timestamp", "type",
"payload"}`. A `session_meta` line first (its id, cwd, cli_version); `turn_context` lines say the
model; `response_item` lines are the Responses API items as sent and received (messages,
reasoning with its summary and its encrypted content, function calls such as exec_command,
freeform custom tool calls such as apply_patch, and their outputs); `event_msg` lines are the UI's
events, of which `token_count` gives each response's usage.

This module reads a rollout into steps in lit's kinds, as `lit record` records Codex: context
blocks (`<environment_context>`, developer instructions) as context, reasoning as thinking whose
text is the summary and whose encrypted reasoning is kept as it came (the block's signature),
apply_patch calls with the patch as their input. lit.importers.session plans and writes the
session: threads cut at the commits its shell calls made, line maps from its patches.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from lit.importers.commits import GIT_COMMIT, printed_sha, recorded_edits, shell_command
from lit.importers.session import (LINE, AgentLogs, ImportResult, Source, Step, find_logs, inside, link_results,
                                   read_jsonl, run, timestamp)
from lit.steps import from_block, is_context, result_text

AGENT = "codex-import"
# Items of the model's answer; the others (messages of the user, tool outputs) are what was sent.
ANSWER_ITEMS = ("reasoning", "function_call", "custom_tool_call", "local_shell_call", "web_search_call")
# Harness bookkeeping kept in the rollout that is not conversation.
SKIPPED_ITEMS = ("ghost_snapshot",)
EXIT_CODE = re.compile(r"^(?:Exit code: |Process exited with code )(-?\d+)\s*$", re.MULTILINE)


def codex_home() -> Path:
    """Where Codex keeps its state: $CODEX_HOME, else ~/.codex."""
    env = os.environ.get("CODEX_HOME")
    return Path(env).expanduser() if env else Path.home() / ".codex"


@dataclass
class Rollout:
    path: Path
    session_id: str  # Codex's
    meta: dict
    lines: list[dict]
    warnings: list[str] = field(default_factory=list)

    @property
    def cwd(self) -> str | None:
        return self.meta.get("cwd") if isinstance(self.meta.get("cwd"), str) else None


def _rollouts(sessions: Path, root: str) -> list[Path]:
    # `codex` moves a session it archives to archived_sessions/, flat.
    return [f for folder in (sessions, sessions.parent / "archived_sessions")
            for f in sorted(folder.rglob("rollout-*.jsonl"))]


def _meta_cwd(f: Path) -> str | None:
    try:
        with open(f, encoding="utf-8", errors="replace") as fh:
            first = json.loads(fh.readline())
    except (OSError, ValueError, RecursionError):
        return None
    payload = first.get("payload") if isinstance(first, dict) else None
    cwd = payload.get("cwd") if isinstance(payload, dict) else None
    return cwd if isinstance(cwd, str) else None


ROLLOUTS = AgentLogs(agent="Codex", log="session log", logs="session logs", command="lit import codex",
                     folder=lambda: codex_home() / "sessions", candidates=_rollouts, is_log=Path.is_file,
                     cwd_of=_meta_cwd)


def find_rollouts(path: str | os.PathLike | None = None, root: str | None = None) -> list[Path]:
    """The rollouts to import: PATH (a rollout, or a folder searched for them), or by default the
    sessions under $CODEX_HOME/sessions that ran inside `root` (the current repository or folder)."""
    return find_logs(path, root or os.getcwd(), ROLLOUTS)


def load_rollout(path: str | os.PathLike) -> Rollout:
    path = Path(path)
    warnings: list[str] = []
    lines = [e for e in read_jsonl(path, warnings) if isinstance(e.get("payload"), dict)]
    meta = next((e["payload"] for e in lines if e.get("type") == "session_meta"), {})
    sid = meta.get("id") or meta.get("session_id")
    if not isinstance(sid, str):
        # rollout-2026-11-30T09-01-26-<uuid>.jsonl: the uuid is the last five groups.
        sid = "-".join(path.stem.split("-")[-5:]) if path.stem.startswith("rollout-") else path.stem
    return Rollout(path, sid, meta, lines, warnings)


# --- steps from items --------------------------------------------------------------------------


class _Reader:
    """Walks a rollout's lines, keeping what the next item needs: the time, the model, the answer
    (API response) it belongs to."""

    def __init__(self, rollout: Rollout) -> None:
        self.rollout = rollout
        self.steps: list[Step] = []
        self.at = 0.0
        self.model: str | None = None
        self.responses = 0
        self.in_answer = False
        self.answer: list[Step] = []  # the steps of the current answer, for its usage

    def read(self) -> list[Step]:
        for line in self.rollout.lines:
            self.at = timestamp(line.get("timestamp"), self.at)
            kind, payload = line.get("type"), line["payload"]
            try:
                if kind == "turn_context" and isinstance(payload.get("model"), str):
                    self.model = payload["model"]
                elif kind == "response_item":
                    self.item(payload)
                elif kind == "event_msg" and payload.get("type") == "token_count":
                    self.usage(payload.get("info"))
                elif kind == "compacted":
                    self.add({"kind": "other", "text": str(payload.get("message") or "")})
            except (AttributeError, TypeError, ValueError) as e:
                # A line of another shape than the versions this was written against: said, skipped.
                self.rollout.warnings.append(f"{line.get(LINE, '?')}: {kind} line of an unknown shape ({e}), skipped")
        link_results(self.steps)
        return self.steps

    def add(self, fields: dict, *, answer: bool = False) -> None:
        if answer and not self.in_answer:
            self.responses += 1
            self.answer = []
        self.in_answer = answer
        step = Step(fields, self.at)
        if answer:
            fields["model"] = self.model
            step.request = f"{self.rollout.session_id}.r{self.responses}"
            step.stop_reason = "end_turn"
            self.answer.append(step)
            if fields["kind"] == "tool_call":
                for s in self.answer:
                    s.stop_reason = "tool_use"
        self.steps.append(step)

    def item(self, item: dict) -> None:
        itype = item.get("type", "message")
        if itype == "message":
            self.message(item)
        elif itype in ANSWER_ITEMS:
            self.add(from_block(_block(item)), answer=True)
        elif itype in ("function_call_output", "custom_tool_call_output"):
            self.add(_result(item))
        elif itype not in SKIPPED_ITEMS:
            self.add({"kind": "other", "raw": json.dumps(item, ensure_ascii=False)})

    def message(self, item: dict) -> None:
        role = item.get("role")
        texts = [t for t in _texts(item.get("content")) if t.strip()]
        if role == "assistant":
            for text in texts:
                self.add({"kind": "text", "text": text}, answer=True)
            return
        prompt = []
        for text in texts:
            if role in ("developer", "system") or is_context(text):
                self.add({"kind": "context", "text": text})
            else:
                prompt.append(text)
        if prompt:
            self.add({"kind": "prompt", "text": "\n\n".join(prompt)})

    def usage(self, info: object) -> None:
        last = info.get("last_token_usage") if isinstance(info, dict) else None
        if not isinstance(last, dict) or not self.answer:
            return
        usage = {"input_tokens": last.get("input_tokens"), "output_tokens": last.get("output_tokens"),
                 "cache_read_input_tokens": last.get("cached_input_tokens")}
        for s in self.answer:
            s.usage = usage


def _texts(content: object) -> list[str]:
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        return []
    return [b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)]


def _block(item: dict) -> dict:
    """An answer's item as the content block lit's recorder makes of it."""
    itype = item.get("type")
    if itype == "reasoning":
        # The summary is the thinking a reader sees; the reasoning itself stays encrypted, as sent.
        summary = "\n\n".join(_texts(item.get("summary"))) or "\n\n".join(_texts(item.get("content")))
        block = {"type": "thinking", "thinking": summary}
        if isinstance(item.get("encrypted_content"), str):
            block["signature"] = item["encrypted_content"]
        return block
    if itype == "function_call":
        try:
            args = json.loads(item.get("arguments") or "{}")
        except (ValueError, RecursionError):
            args = {"arguments": item.get("arguments")}
        return {"type": "tool_use", "id": item.get("call_id"), "name": item.get("name"), "input": args}
    if itype == "custom_tool_call":  # freeform (apply_patch): the input is the patch text
        return {"type": "custom_tool_use", "id": item.get("call_id"), "name": item.get("name"),
                "input": item.get("input") if isinstance(item.get("input"), str) else ""}
    if itype == "local_shell_call":
        return {"type": "tool_use", "id": item.get("call_id") or item.get("id"), "name": "local_shell",
                "input": item.get("action") if isinstance(item.get("action"), dict) else {}}
    return {k: v for k, v in item.items() if k != "id"}


def _result(item: dict) -> dict:
    """A tool output: its text, and whether the command failed (a non-zero exit code)."""
    output = item.get("output")
    exit_code = None
    if isinstance(output, str) and output.startswith("{"):
        try:  # older versions: {"output": "...", "metadata": {"exit_code": 0}}
            data = json.loads(output)
            if isinstance(data, dict) and isinstance(data.get("output"), str):
                output, exit_code = data["output"], (data.get("metadata") or {}).get("exit_code")
        except (ValueError, RecursionError):
            pass
    text = output if isinstance(output, str) else result_text(output)
    if exit_code is None:
        m = EXIT_CODE.search(text[:500])
        exit_code = int(m.group(1)) if m else None
    return {"kind": "tool_result", "text": text, "tool_use_id": item.get("call_id"),
            "is_error": int(isinstance(exit_code, int) and exit_code != 0)}


def session_id_for(codex_session: str) -> str:
    """The lit session id of an imported Codex session: derived, so a second import finds it."""
    return hashlib.sha256(f"codex:{codex_session}".encode()).hexdigest()[:12]


def source(rollout: Rollout, repo: str | None) -> Source:
    steps = _Reader(rollout).read()
    meta = rollout.meta
    version = meta.get("cli_version") if isinstance(meta.get("cli_version"), str) else None
    git = meta.get("git") if isinstance(meta.get("git"), dict) else {}
    branch = git.get("branch") if isinstance(git.get("branch"), str) else None
    # Patch paths are relative to the folder Codex ran in; when that folder is not in the repository
    # being linked (a moved or cloned checkout), they are read from its root.
    base = rollout.cwd if rollout.cwd and (repo is None or inside(rollout.cwd, repo)) else repo
    return Source(
        agent=f"{AGENT}/{version}" if version else AGENT, session_id=session_id_for(rollout.session_id),
        agent_session=rollout.session_id, path=rollout.path, steps=steps, edits=recorded_edits(steps, base),
        notes=f"imported from Codex session {rollout.session_id} ({rollout.path.name})"
              + (f", on branch {branch}" if branch else ""),
        cwd=rollout.cwd, argv=["codex"], protocol="openai-responses", api_path="/v1/responses",
        warnings=rollout.warnings)


def import_path(db: sqlite_utils.Database, path: str | os.PathLike | None = None, *,
                repo: str | None = None) -> list[ImportResult]:
    """Import the Codex sessions at `path` (default: those that ran in `repo`, else in the current
    folder) into `repo`: their commits are looked for there and their notes written there (None:
    outside any repository, the sessions are imported unbound)."""
    rollouts = [load_rollout(f) for f in find_rollouts(path, repo)]
    sources = [source(r, repo) for r in rollouts]
    # A commit some session's shell made is that session's, never "committed later by a person".
    claimed = {sha for s in sources for sha in printed_shas(s.steps)}
    return [run(db, s, repo, claimed=claimed) for s in sources]


def printed_shas(steps: list[Step]) -> set[str]:
    """The (short) SHAs git printed for the commits the session's shell calls made."""
    out = set()
    for s in steps:
        command = shell_command(steps[s.result_of]) if s.result_of is not None else None
        if s.fields["kind"] == "tool_result" and command and GIT_COMMIT.search(command):
            sha, _ = printed_sha(None, s.fields.get("text"))
            if sha:
                out.add(sha)
    return out
