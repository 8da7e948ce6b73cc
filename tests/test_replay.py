"""lit replay serves a recorded thread as an upstream, and lit export / import carry a thread
between DBs. The recording is `lit record` of examples/agent.py against a scripted model."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import anthropic
import pytest

from lit_fixtures import init_repo

from lit import portable, store
from lit.replay import Replay, load
from lit.scripted import ScriptedUpstream, text_message, tool_message

AGENT = Path(__file__).resolve().parent.parent / "examples" / "agent.py"
FAKE_KEY = "sk-ant-api03-" + "Zr4" * 30 + "-AA"
PROMPT = "create notes.txt with a todo list, check it, fix the typo"
SCRIPT = [
    tool_message("write_file", {"path": "notes.txt", "content": "- write tets\n- ship\n"},
                 thinking="Start with the file.", text="Creating notes.txt.", tool_id="toolu_01AAA"),
    tool_message("run_shell", {"command": "grep -c - notes.txt"}, tool_id="toolu_01BBB"),
    tool_message("edit_file", {"path": "notes.txt", "old_string": "tets", "new_string": "tests"},
                 thinking="There is a typo: tets.", tool_id="toolu_01CCC"),
    text_message("notes.txt has two items and no typo."),
]


def agent(repo: Path, url: str, prompt: str = PROMPT) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": FAKE_KEY, "HOME": str(repo.parent)}
    return subprocess.run([sys.executable, str(AGENT), prompt], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=60)


def record(db_path: Path, repo: Path) -> str:
    """`lit record` of the agent against the scripted model; returns the thread id."""
    env = {**os.environ, "LIT_DB": str(db_path), "ANTHROPIC_API_KEY": FAKE_KEY, "HOME": str(repo.parent)}
    with ScriptedUpstream(SCRIPT) as up:
        proc = subprocess.run([sys.executable, "-m", "lit", "record", "--upstream", up.url, "--",
                               sys.executable, str(AGENT), PROMPT], cwd=repo, env=env, capture_output=True,
                              text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return store.connect(db_path).execute("SELECT thread_id FROM steps WHERE kind = 'prompt'").fetchone()[0]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Path, str]:
    base = tmp_path_factory.mktemp("recorded")
    db_path = base / "lit.db"
    thread = record(db_path, init_repo(base / "repo"))
    return db_path, thread


def tool_calls(requests: list[dict]) -> list[tuple]:
    last = requests[-1]["json"]["messages"]
    return [(b["id"], b["name"], b["input"]) for m in last if m["role"] == "assistant"
            for b in m["content"] if b["type"] == "tool_use"]


def test_the_agent_rerun_against_the_replay_makes_the_same_tool_calls(recorded, tmp_path):
    db_path, thread = recorded
    repo = init_repo(tmp_path / "fresh")
    with Replay(thread, db_path=db_path) as server:
        proc = agent(repo, server.url)
    assert proc.returncode == 0, proc.stderr
    assert server.served == [1, 2, 3, 4] and server.mismatches == []
    assert "notes.txt has two items and no typo." in proc.stdout
    assert (repo / "notes.txt").read_text() == "- write tests\n- ship\n"
    assert [c[:2] for c in tool_calls(server.requests)] == [
        ("toolu_01AAA", "write_file"), ("toolu_01BBB", "run_shell"), ("toolu_01CCC", "edit_file")]
    assert all(r["json"]["stream"] for r in server.requests)
    # the stream carried the recorded thinking, signature included
    assert server.requests[1]["json"]["messages"][1]["content"][0]["thinking"] == "Start with the file."


def test_a_request_that_does_not_match_gets_a_400_saying_which_turn_and_what(recorded):
    db_path, thread = recorded
    recording = load(thread, db_path)
    with Replay(recording) as server:
        client = anthropic.Anthropic(base_url=server.url, api_key=FAKE_KEY, max_retries=0)
        with pytest.raises(anthropic.BadRequestError) as wrong_prompt:
            with client.messages.stream(model="claude-sonnet-4-6", max_tokens=100,
                                        messages=[{"role": "user", "content": "create todo.txt instead"}]) as s:
                s.get_final_message()
        turn2 = [dict(m) for m in recording.turns[1].messages]
        turn2[-1] = {"role": "user", "content": [{**turn2[-1]["content"][0], "tool_use_id": "toolu_01XYZ"}]}
        with pytest.raises(anthropic.BadRequestError) as wrong_result:
            client.messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=turn2)
    assert wrong_prompt.value.status_code == 400
    assert wrong_prompt.value.body["error"] == {"type": "invalid_request_error", "message": (
        "lit replay: turn 1 does not match the recording: the prompt differs: recorded "
        f"{PROMPT!r}, got 'create todo.txt instead'")}
    assert wrong_result.value.body["error"]["message"] == (
        "lit replay: turn 2 does not match the recording: message 3 sends tool results for "
        "['toolu_01XYZ'], the recording for ['toolu_01AAA']")
    assert [m.turn for m in server.mismatches] == [1, 2]
    assert server.served == []


def test_json_when_not_streamed_and_a_clear_error_past_the_end(recorded):
    db_path, thread = recorded
    recording = load(thread, db_path)
    with Replay(recording) as server:
        client = anthropic.Anthropic(base_url=server.url, api_key=FAKE_KEY, max_retries=0)
        last = recording.turns[-1]
        reply = client.messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=last.messages)
        assert reply.content[0].text == "notes.txt has two items and no typo."
        assert reply.stop_reason == "end_turn"
        longer = last.messages + [{"role": "assistant", "content": "ok"}, {"role": "user", "content": "more"}]
        with pytest.raises(anthropic.BadRequestError, match="goes past the end of the recording"):
            client.messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=longer)


def test_lit_replay_serves_an_exported_file_until_ctrl_c(recorded, tmp_path):
    db_path, thread = recorded
    exported = tmp_path / "thread.jsonl"
    env = {**os.environ, "LIT_DB": str(db_path)}
    subprocess.run([sys.executable, "-m", "lit", "export", thread[:6], "-o", str(exported)], env=env, check=True)
    proc = subprocess.Popen([sys.executable, "-m", "lit", "replay", str(exported)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "LIT_DB": str(tmp_path / "none.db")})
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"lit replay: serving thread {thread} (4 turns) on http://127.0.0.1:")
        url = line.split(" on ")[1].strip()
        client = anthropic.Anthropic(base_url=url, api_key=FAKE_KEY, max_retries=0)
        with pytest.raises(anthropic.BadRequestError):
            client.messages.create(model="claude-sonnet-4-6", max_tokens=10,
                                   messages=[{"role": "user", "content": "hi"}])
        first = client.messages.create(model="claude-sonnet-4-6", max_tokens=10,
                                       messages=[{"role": "user", "content": PROMPT}])
        assert first.content[-1].name == "write_file"
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert ("lit replay: turn 1 does not match the recording: the prompt differs: recorded "
            f"{PROMPT!r}, got 'hi'") in err
    assert "lit replay: turn 1: thinking, text, tool_use write_file (tool_use)" in err
    assert "Traceback" not in err


def test_export_then_import_into_another_db_is_the_same_thread_and_idempotent(recorded, tmp_path):
    db_path, thread = recorded
    exported = tmp_path / "t.jsonl"
    summary = portable.export_thread(store.connect(db_path), thread, exported)
    header = json.loads(exported.read_text().splitlines()[0])
    assert header["lit_export"] == 1 and header["thread"] == thread and header["title"] == PROMPT
    assert summary.rows["exchanges"] == 4 and summary.rows["steps"] >= 10

    env = {**os.environ, "LIT_DB": str(tmp_path / "other.db")}
    first = subprocess.run([sys.executable, "-m", "lit", "import", str(exported)], env=env, capture_output=True,
                           text=True, check=True)
    again = subprocess.run([sys.executable, "-m", "lit", "import", str(exported), "--json"], env=env,
                           capture_output=True, text=True, check=True)
    assert first.stdout.startswith(f"lit import: thread {thread}: added rows: sessions 1, threads 1,")
    assert json.loads(again.stdout)["added"] == {}

    src, dst = store.connect(db_path), store.connect(tmp_path / "other.db")
    for table in ("sessions", "threads", "steps", "exchanges", "messages"):
        assert dst[table].count == src[table].count, table
    assert store.thread_steps(dst, thread) == store.thread_steps(src, thread)
    key = src.execute("SELECT response_key FROM exchanges ORDER BY seq DESC LIMIT 1").fetchone()[0]
    assert store.message_chain(dst, key) == store.message_chain(src, key)
    assert len(store.message_chain(dst, key)) == 8
    # the FTS index of the steps follows the imported rows
    assert dst.execute("SELECT count(*) FROM steps_fts WHERE steps_fts MATCH 'typo'").fetchone()[0] >= 1


def test_errors_a_user_can_make_are_one_line(recorded, tmp_path):
    db_path, _ = recorded
    not_export = tmp_path / "notes.jsonl"
    not_export.write_text('{"hello": 1}\n')
    env = {**os.environ, "LIT_DB": str(db_path)}
    for args, message in [
        (["import", str(not_export)],
         f"lit: {not_export} is not a lit export (its first line has no lit_export header)"),
        (["export", "nothread"],
         "lit: no thread matches 'nothread': give a thread id or a prefix of one, or a commit (a SHA, HEAD, "
         "main~2); lit threads lists them"),
        (["replay", "missing.jsonl"], "lit: no such file: missing.jsonl"),
    ]:
        proc = subprocess.run([sys.executable, "-m", "lit", *args], env=env, capture_output=True, text=True,
                              cwd=tmp_path)
        assert proc.returncode == 1 and proc.stderr.strip() == message


def test_claude_code_replays_its_own_recorded_thread(tmp_path, claude_code):
    """The real Claude Code CLI, recorded by lit record against a scripted model, then run again
    against `lit replay` of that thread: same calls, same file, no mismatch."""
    from lit.scripted import text_message

    prompt, content = "Create greeting.txt saying hello.", "hello from Claude Code\n"
    repo = tmp_path / "project"

    def model(body: dict) -> dict:
        last = (body.get("messages") or [{}])[-1].get("content")
        if isinstance(last, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in last):
            return text_message("Created greeting.txt.")
        return tool_message("Write", {"file_path": str(repo / "greeting.txt"), "content": content},
                            thinking="One file, one line.", tool_id="toolu_01GREETING")

    def claude(upstream: str, db: Path) -> subprocess.CompletedProcess:
        shutil.rmtree(repo, ignore_errors=True)
        home = tmp_path / "home"
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir()
        init_repo(repo)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_", "LIT_"))}
        env.update({"HOME": str(home), "IS_SANDBOX": "1", "ANTHROPIC_API_KEY": FAKE_KEY, "LIT_DB": str(db),
                    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
                    "DISABLE_ERROR_REPORTING": "1", "DISABLE_AUTOUPDATER": "1"})
        return subprocess.run([sys.executable, "-m", "lit", "record", "--upstream", upstream, "--", str(claude_code),
                               "-p", prompt, "--permission-mode", "bypassPermissions", "--output-format", "json"],
                              cwd=repo, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=120)

    with ScriptedUpstream(model) as up:
        first = claude(up.url, tmp_path / "first.db")
    assert first.returncode == 0, first.stderr[-2000:]
    thread = store.connect(tmp_path / "first.db").execute(
        "SELECT thread_id FROM steps WHERE kind = 'prompt'").fetchone()[0]
    with Replay(thread, db_path=tmp_path / "first.db") as server:
        again = claude(server.url, tmp_path / "second.db")
    assert again.returncode == 0, again.stderr[-2000:]
    assert server.mismatches == [] and server.served == [1, 2]
    assert json.loads(again.stdout)["result"] == "Created greeting.txt."
    assert (repo / "greeting.txt").read_text() == content
    second = store.connect(tmp_path / "second.db")
    assert [r[0] for r in second.execute("SELECT tool_use_id FROM steps WHERE kind = 'tool_call'")] == [
        "toolu_01GREETING"]
