"""The real Claude Code CLI recorded by `lit record`, offline: its calls go through lit's relay to a
scripted model on 127.0.0.1 that has it write a file, and the DB holds the thread step by step."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import FAKE_KEY
from real_clients import record_claude

from lit import store

PROMPT = "Create greeting.txt saying hello."
THINKING = "One file with one line: a Write does it."
CONTENT = "hello from Claude Code\n"
DONE = "Created greeting.txt."


def scripted_model(repo: Path):
    """The model's side: side calls get a short answer; the main loop writes the file, and once the
    tool result is back, says it is done."""
    from lit.scripted import text_message, tool_message

    def reply(body: dict) -> dict:
        if not body.get("tools"):
            return text_message("Greeting file")
        last = (body.get("messages") or [{}])[-1]
        content = last.get("content")
        if isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
            return text_message(DONE)
        return tool_message("Write", {"file_path": str(repo / "greeting.txt"), "content": CONTENT},
                            thinking=THINKING, text="I'll write the file.", tool_id="toolu_01GREETING")

    return reply


def test_lit_records_claude_code(tmp_path, claude_code):
    from lit.scripted import ScriptedUpstream

    repo, db_path = tmp_path / "project", tmp_path / "lit.db"
    with ScriptedUpstream(scripted_model(repo)) as upstream:
        proc = record_claude(claude_code, tmp_path, upstream.url, PROMPT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["result"] == DONE
    assert (repo / "greeting.txt").read_text() == CONTENT
    assert re.fullmatch(r"lit: recorded \d+ exchanges?, 7 steps in thread [0-9a-f]{12} \(not committed yet\)"
                        r"(; \d+ not recorded \(snapshot: .*\))?\n", proc.stderr.splitlines(keepends=True)[-1])
    # Its calls went through the relay as it made them (query string and all).
    main_calls = [r for r in upstream.requests if r["json"].get("tools")]
    assert len(main_calls) == 2 and all(r["query"] == "beta=true" for r in main_calls)

    db = store.connect(db_path, create=False)
    (session_id, agent, exit_code), = db.execute("SELECT id, agent, exit_code FROM sessions").fetchall()
    assert agent.startswith("claude-cli/2.1.") and exit_code == 0
    main = db.execute("SELECT path, query, status, streamed, complete FROM exchanges WHERE role = 'main'"
                      " ORDER BY seq").fetchall()
    assert main == [("/v1/messages", "beta=true", 200, 1, 1)] * 2
    steps = db.execute("SELECT kind, text, tool_name, tool_input, tool_use_id, is_error FROM steps"
                       " WHERE session_id = ? ORDER BY seq", [session_id]).fetchall()
    # Claude Code's <system-reminder> (the date, CLAUDE.md) is context it adds, kept apart from the prompt.
    assert steps[0][0] == "context" and steps[0][1].startswith("<system-reminder>")
    steps = steps[1:]
    assert [s[0] for s in steps] == ["prompt", "thinking", "text", "tool_call", "tool_result", "text"]
    assert steps[0][1] == PROMPT and steps[1][1] == THINKING and steps[2][1] == "I'll write the file."
    assert steps[3][2] == "Write" and steps[3][4] == "toolu_01GREETING"
    assert json.loads(steps[3][3]) == {"file_path": str(repo / "greeting.txt"), "content": CONTENT}
    assert steps[4][4] == "toolu_01GREETING" and not steps[4][5] and "greeting.txt" in steps[4][1]
    assert steps[5][1] == DONE
    # The key went to the upstream, and nowhere into lit's files.
    assert any(FAKE_KEY in r["headers"].values() for r in upstream.requests)
    assert FAKE_KEY.encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("lit.db*"))

