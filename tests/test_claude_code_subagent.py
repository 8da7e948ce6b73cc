"""The real Claude Code CLI under `lit record` delegates to a subagent (its Agent tool) that writes a
file, then commits it through its Bash tool: the commit gets its Lit-Thread trailer and its note and
is bound to its thread; the subagent's turns are turn boundaries, so the file is blamed on the
subagent's own Write and the reasoning before it, while the delegating Agent call stays the
subagent's parent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from real_clients import record_claude

from lit import store
from lit.git import notes
from lit.scripted import ScriptedUpstream, text_message, tool_message

TASK = "Create helper.py with an add(a, b) function."
DELEGATE_WHY = "Hand the helper module to a subagent."
WRITE_WHY = "The helper needs one function, add, returning the sum."
CONTENT = "def add(a, b):\n    return a + b\n"


def _texts(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "\n".join(b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text")


def _results(body: dict) -> int:
    return sum(1 for m in body.get("messages", []) if isinstance(m.get("content"), list)
               for b in m["content"] if isinstance(b, dict) and b.get("type") == "tool_result")


def scripted_model(repo: Path):
    def reply(body: dict) -> dict:
        if not body.get("tools"):
            return text_message("Helper module")
        first_user = next((m for m in body.get("messages", []) if m.get("role") == "user"), {})
        if TASK in _texts(first_user):  # the subagent's own conversation
            if not _results(body):
                return tool_message("Write", {"file_path": str(repo / "helper.py"), "content": CONTENT},
                                    thinking=WRITE_WHY, tool_id="toolu_01SUBWRITE")
            return text_message("Created helper.py with add().")
        done = _results(body)
        if done == 0:
            return tool_message("Agent", {"description": "Write the helper", "prompt": TASK,
                                          "subagent_type": "claude"},
                                thinking=DELEGATE_WHY, tool_id="toolu_02AGENT")
        if done == 1:
            return tool_message("Bash", {"command": "git add helper.py && git commit -q -m 'Add helper'",
                                         "description": "Commit helper.py"},
                                thinking="The subagent wrote it; commit.", tool_id="toolu_03COMMIT")
        return text_message("A subagent wrote helper.py; committed.")

    return reply


@pytest.mark.slow
def test_a_subagents_write_is_blamed_on_the_subagent(tmp_path, claude_code):
    repo, db_path = tmp_path / "project", tmp_path / "lit.db"
    with ScriptedUpstream(scripted_model(repo)) as upstream:
        proc = record_claude(claude_code, tmp_path, upstream.url, "Add a helper module (delegate it) and commit it.",
                             timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (repo / "helper.py").read_text() == CONTENT

    db = store.connect(db_path, create=False)
    agent_call = db.execute("SELECT id, conversation_id FROM steps WHERE tool_use_id = 'toolu_02AGENT'"
                            " AND kind = 'tool_call'").fetchone()
    write = db.execute("SELECT id, conversation_id, parent_step_id FROM steps WHERE tool_use_id = 'toolu_01SUBWRITE'"
                       " AND kind = 'tool_call'").fetchone()
    # The subagent's Write is in its own conversation, under the Agent call that started it.
    assert write[1] != agent_call[1] and write[2] == agent_call[0]
    roles = {r[0]: r[1] for r in db.execute("SELECT DISTINCT conversation_id, role FROM exchanges"
                                            " WHERE role IS NOT NULL")}
    assert roles[write[1]] == "subagent" and roles[agent_call[1]] == "main"
    # The subagent's turn was a turn boundary: a snapshot holds its Write.
    assert any(write[0] in json.loads(r[0]) for r in db.execute("SELECT step_ids FROM snapshots WHERE reason = 'turn'"))

    message = subprocess.run(["git", "log", "-1", "--format=%B"], cwd=repo, capture_output=True, text=True).stdout
    assert message.startswith("Add helper") and "Lit-Thread: " in message, message
    thread = message.split("Lit-Thread: ")[1].split()[0]
    note = notes.read(repo, "HEAD").to_json()
    assert note["thread"] == thread and note["files"] == {"helper.py": [[1, 2, write[0]]]}
    assert note["steps"][write[0]]["why"] == WRITE_WHY
    assert note["agent"].startswith("claude-cli/")
    assert db["threads"].get(thread)["status"] == "bound"
    assert f"bound to {note['commit'][:7]}" in proc.stderr.splitlines()[-1]
    blame = subprocess.run([sys.executable, "-m", "lit", "blame", "helper.py", "--json"], cwd=repo,
                           env={**os.environ, "LIT_DB": str(db_path)}, capture_output=True, text=True, timeout=60)
    assert blame.returncode == 0, blame.stderr
    assert [(ln["step"], ln["why"]) for ln in json.loads(blame.stdout)] == [(write[0], WRITE_WHY)] * 2
