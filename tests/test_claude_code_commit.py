"""The real Claude Code CLI under `lit record` writes a file and commits it through its Bash tool:
the commit gets its Lit-Thread trailer and its note, and the line map cites Claude Code's Write."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FAKE_KEY

from lit_fixtures import init_repo

from lit import store
from lit.git import notes
from lit.scripted import ScriptedUpstream, text_message, tool_message

CONTENT = "def greet(name):\n    return f'hello {name}'\n"


def scripted_model(repo: Path):
    def reply(body: dict) -> dict:
        if not body.get("tools"):
            return text_message("Greeting module")
        results = [b for m in body.get("messages", []) if isinstance(m.get("content"), list)
                   for b in m["content"] if isinstance(b, dict) and b.get("type") == "tool_result"]
        if not results:
            return tool_message("Write", {"file_path": str(repo / "greet.py"), "content": CONTENT},
                                thinking="A one-function module is all this needs.", tool_id="toolu_01WRITE")
        if len(results) == 1:
            return tool_message("Bash", {"command": "git add greet.py && git commit -q -m 'Add greet'",
                                         "description": "Commit greet.py"},
                                thinking="Written; commit it.", tool_id="toolu_02COMMIT")
        return text_message("Added greet.py and committed it.")

    return reply


@pytest.mark.slow
def test_claude_codes_commit_is_bound_to_its_thread(tmp_path, claude_code):
    repo, home, db_path = tmp_path / "project", tmp_path / "home", tmp_path / "lit.db"
    init_repo(repo)
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_", "LIT_"))}
    env.update({"HOME": str(home), "IS_SANDBOX": "1", "ANTHROPIC_API_KEY": FAKE_KEY, "LIT_DB": str(db_path),
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
                "DISABLE_ERROR_REPORTING": "1", "DISABLE_AUTOUPDATER": "1", "GIT_CONFIG_NOSYSTEM": "1"})
    with ScriptedUpstream(scripted_model(repo)) as upstream:
        proc = subprocess.run(
            [sys.executable, "-m", "lit", "record", "--upstream", upstream.url, "--", str(claude_code),
             "-p", "Add a greet function and commit it.", "--permission-mode", "bypassPermissions",
             "--output-format", "json"],
            cwd=repo, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    message = subprocess.run(["git", "log", "-1", "--format=%B"], cwd=repo, capture_output=True, text=True).stdout
    assert message.startswith("Add greet") and "Lit-Thread: " in message, message
    thread = message.split("Lit-Thread: ")[1].split()[0]
    note = notes.read(repo, "HEAD").to_json()
    db = store.connect(db_path)
    write = db.execute("SELECT id FROM steps WHERE tool_use_id = 'toolu_01WRITE' AND kind = 'tool_call'").fetchone()[0]
    assert note["thread"] == thread and note["files"] == {"greet.py": [[1, 2, write]]}
    assert note["steps"][write]["why"] == "A one-function module is all this needs."
    assert note["agent"].startswith("claude-cli/")
    assert db["threads"].get(thread)["status"] == "bound"
    assert f"bound to {note['commit'][:7]}" in proc.stderr.splitlines()[-1]
