"""examples/agent.py is run as a test: a real SDK client against a scripted upstream, really
editing files and committing in a temporary git repository."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


from lit.scripted import ScriptedUpstream, text_message, tool_message

AGENT = Path(__file__).resolve().parent.parent / "examples" / "agent.py"
FAKE_KEY = "sk-ant-api03-" + "Qx7" * 30 + "-AA"


def run_agent(repo: Path, url: str, prompt: str, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": FAKE_KEY,
           "HOME": str(repo.parent), "GIT_CONFIG_NOSYSTEM": "1"}
    env.pop("LIT_AGENT_MODEL", None)
    return subprocess.run([sys.executable, str(AGENT), prompt, *extra], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=60)


def test_the_agent_writes_edits_runs_and_commits(repo: Path) -> None:
    replies = [
        tool_message("write_file", {"path": "greet.py", "content": "def greet(name):\n    return 'hi ' + name\n"},
                     thinking="A greet function first.", text="I'll write the module."),
        tool_message("run_shell", {"command": "python -c 'import greet; print(greet.greet(\"ada\"))'"}),
        tool_message("edit_file", {"path": "greet.py", "old_string": "'hi '", "new_string": "'Hello, '"}),
        tool_message("read_file", {"path": "missing.py"}),
        tool_message("run_shell", {"command": "git add greet.py && git commit -q -m 'Add greet'"}),
        text_message("Committed greet.py."),
    ]
    with ScriptedUpstream(replies) as up:
        proc = run_agent(repo, up.url, "write a greet function and commit it")
    assert proc.returncode == 0, proc.stderr
    assert "Committed greet.py." in proc.stdout
    assert (repo / "greet.py").read_text() == "def greet(name):\n    return 'Hello, ' + name\n"
    log = subprocess.run(["git", "log", "--format=%s"], cwd=repo, capture_output=True, text=True).stdout
    assert log.strip() == "Add greet"

    bodies = [r["json"] for r in up.requests]
    assert len(bodies) == 6
    assert all(b["stream"] for b in bodies)  # the SDK streams, so recordings hold SSE
    assert bodies[0]["thinking"]["type"] == "enabled"
    assert {t["name"] for t in bodies[0]["tools"]} == {"read_file", "write_file", "edit_file", "run_shell"}
    # Each request resends the conversation: thinking keeps its signature, results answer the calls.
    first_turn = bodies[1]["messages"][1]["content"]
    assert first_turn[0]["type"] == "thinking" and first_turn[0]["signature"].startswith("sig-")
    history = bodies[-1]["messages"]
    results = [m["content"][0] for m in history[2::2]]
    calls = [b for m in history[1::2] for b in m["content"] if b["type"] == "tool_use"]
    assert [r["tool_use_id"] for r in results] == [c["id"] for c in calls]
    assert results[1]["content"].startswith("exit code 0\nhi ada")
    assert results[3]["is_error"] is True and "cannot read missing.py" in results[3]["content"]
    assert "is_error" not in results[0]


def test_a_bad_edit_goes_back_to_the_model_as_an_error(repo: Path) -> None:
    (repo / "a.txt").write_text("x\nx\n")
    replies = [tool_message("edit_file", {"path": "a.txt", "old_string": "x", "new_string": "y"}),
               tool_message("write_file", {"path": "../outside.txt", "content": "no"}),
               tool_message("run_shell", {"command": "sleep 5", "timeout": 1}),
               text_message("I could not do it.")]
    with ScriptedUpstream(replies) as up:
        proc = run_agent(repo, up.url, "edit a.txt")
    assert proc.returncode == 0, proc.stderr
    last = up.requests[-1]["json"]["messages"]
    results = [m["content"][0] for m in last[2::2]]
    assert results[0] == {"type": "tool_result", "tool_use_id": results[0]["tool_use_id"], "is_error": True,
                          "content": "old_string occurs 2 times in a.txt; it must occur exactly once"}
    assert results[1]["is_error"] and "outside the repository" in results[1]["content"]
    assert results[2]["is_error"] and "timed out after 1 s" in results[2]["content"]
    assert (repo / "a.txt").read_text() == "x\nx\n"
    assert not (repo.parent / "outside.txt").exists()


def test_an_api_error_ends_the_agent_in_one_line(repo: Path) -> None:
    error = {"status": 400, "body": {"type": "error", "error": {"type": "invalid_request_error",
                                                               "message": "prompt is too long"}}}
    with ScriptedUpstream([error]) as up:
        proc = run_agent(repo, up.url, "anything", "--model", "claude-3-5-haiku-20241022")
    assert proc.returncode == 2
    assert "prompt is too long" in proc.stderr and "Traceback" not in proc.stderr
    assert "thinking" not in up.requests[0]["json"]  # a model without extended thinking
    assert up.requests[0]["json"]["model"] == "claude-3-5-haiku-20241022"
