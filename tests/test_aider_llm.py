"""Real Chat Completions agents under `lit record`, offline against a scripted upstream on 127.0.0.1:
aider (no tools: it edits files from SEARCH/REPLACE blocks in its answer's text, then commits by
itself) and llm (a plain chat, and a chat with tool calls). Each conversation with a user is a
thread; aider's edits are blamed on the answer that carried them; side calls stay side calls."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lit_fixtures import init_repo
from real_clients import (FAKE_OPENAI_KEY, aider_cli, aider_price_cache,  # noqa: F401
                          llm_cli, offline_env)

from lit import store
from lit.git import notes
from lit.scripted import ScriptedUpstream, text_message, tool_message

PROMPT = "Write hello.py with a hello function."
CONTENT = 'def hello():\n    return "hi"\n'
ANSWER = ("I will create hello.py with the function.\n\nhello.py\n```python\n<<<<<<< SEARCH\n=======\n"
          + CONTENT + ">>>>>>> REPLACE\n```\n")
COMMIT_MESSAGE = "Add hello function"
PRICES = {model: {"max_input_tokens": 128000, "max_output_tokens": 16384, "max_tokens": 16384,
                  "input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05, "litellm_provider": "openai",
                  "mode": "chat", "supports_function_calling": True} for model in ("gpt-4o", "gpt-4o-mini")}


def lit_record(args: list[str], *, cwd: Path, env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lit", "record", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def scripted_aider_model(body: dict) -> dict:
    """The edit for the main model; a one-line message for the weak model's commit-message call."""
    system = (body.get("messages") or [{}])[0].get("content") or ""
    if "commit message" in str(system):
        return text_message(COMMIT_MESSAGE)
    return text_message(ANSWER)


@pytest.mark.slow
def test_aiders_edits_are_blamed_on_the_answer_that_made_them(tmp_path, aider_cli):  # noqa: F811
    repo = init_repo(tmp_path / "repo")
    env = offline_env(tmp_path)
    aider_price_cache(Path(env["HOME"]), PRICES)
    with ScriptedUpstream(scripted_aider_model) as up:
        proc = lit_record(["--openai-upstream", up.url + "/v1", "--", str(aider_cli), "--model", "gpt-4o",
                           "--yes-always", "--no-check-update", "--analytics-disable", "--no-show-release-notes",
                           "--no-pretty", "--no-fancy-input", "--no-gitignore", "--message", PROMPT],
                          cwd=repo, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Applied edit to hello.py" in proc.stdout
    assert (repo / "hello.py").read_text() == CONTENT
    assert [r["path"] for r in up.requests] == ["/v1/chat/completions"] * 2

    db = store.connect(tmp_path / "lit.db", create=False)
    steps = db.execute("SELECT id, kind, text, tool_input FROM steps ORDER BY created_at").fetchall()
    kinds = [s[1] for s in steps]
    # aider's own "I am not sharing any files" turn is context; the prompt is what was typed.
    assert kinds == ["context", "prompt", "text"], steps
    assert steps[0][2].startswith("I am not sharing any files") and steps[1][2] == PROMPT
    answer = steps[2]
    assert answer[2] == ANSWER and json.loads(answer[3]) == {"files": ["hello.py"]}
    roles = db.execute("SELECT role, model FROM exchanges ORDER BY seq").fetchall()
    assert roles == [("main", "gpt-4o"), ("side", "gpt-4o-mini")]  # the commit message is a side call
    (agent,), = db.execute("SELECT agent FROM sessions").fetchall()
    assert agent.startswith("aider (OpenAI/Python ")  # its User-Agent names only the SDK

    # aider's own commit got the trailer, and its lines are the answer's, with the answer as the why.
    thread_id = answer[0].rsplit(".", 1)[0]
    message = subprocess.run(["git", "log", "-1", "--format=%B"], cwd=repo, capture_output=True, text=True).stdout
    assert message.startswith(COMMIT_MESSAGE) and f"Lit-Thread: {thread_id}" in message, message
    note = notes.read(repo, "HEAD").to_json()
    assert note["files"] == {"hello.py": [[1, 2, answer[0]]]}
    assert note["steps"][answer[0]]["why"] == ANSWER
    blame = subprocess.run([sys.executable, "-m", "lit", "blame", "hello.py", "--json"], cwd=repo, env=env,
                           capture_output=True, text=True, timeout=60)
    assert blame.returncode == 0, blame.stderr
    assert [ln["step"] for ln in json.loads(blame.stdout)] == [answer[0]] * 2
    assert f"bound to {note['commit'][:7]}" in proc.stderr.splitlines()[-1]
    assert FAKE_OPENAI_KEY.encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("lit.db*"))


@pytest.mark.slow
def test_a_plain_llm_chat_is_a_thread(tmp_path, llm_cli):  # noqa: F811
    env = offline_env(tmp_path)
    with ScriptedUpstream([text_message("Hello! How can I help?"), text_message("Sure: 4.")]) as up:
        first = lit_record(["--openai-upstream", up.url + "/v1", "--", str(llm_cli), "-m", "gpt-4o-mini", "say hi"],
                           cwd=tmp_path, env=env)
        second = lit_record(["--openai-upstream", up.url + "/v1", "--", str(llm_cli), "-m", "gpt-4o-mini",
                             "--no-stream", "what is 2+2?"], cwd=tmp_path, env=env)
    for proc, answer in ((first, "Hello! How can I help?"), (second, "Sure: 4.")):
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == answer
        assert proc.stderr.startswith("lit: recorded 1 exchange, 2 steps in thread ")
    db = store.connect(tmp_path / "lit.db", create=False)
    rows = db.execute("SELECT t.title, group_concat(s.kind), e.streamed, e.role, ss.agent FROM threads t"
                      " JOIN steps s ON s.thread_id = t.id JOIN exchanges e ON e.thread_id = t.id"
                      " JOIN sessions ss ON ss.id = t.session_id GROUP BY t.id ORDER BY t.started_at").fetchall()
    assert [r[:4] for r in rows] == [("say hi", "prompt,text", 1, "main"), ("what is 2+2?", "prompt,text", 0, "main")]
    assert all(r[4].startswith("llm (OpenAI/Python ") for r in rows)


@pytest.mark.slow
def test_llm_with_tools_writes_a_file_and_the_commit_is_bound(tmp_path, llm_cli):  # noqa: F811
    """llm --functions: the model calls a Python function that writes a file, and a second that
    commits it; blame cites the write call."""
    repo = init_repo(tmp_path / "repo")
    (repo / "tools.py").write_text(
        "import subprocess\n\n\ndef write_file(path: str, content: str) -> str:\n"
        "    with open(path, 'w') as f:\n        f.write(content)\n    return 'wrote ' + path\n\n\n"
        "def commit(message: str) -> str:\n"
        "    subprocess.run(['git', 'add', '-A', 'greet.py'], check=True)\n"
        "    subprocess.run(['git', 'commit', '-q', '-m', message], check=True)\n    return 'committed'\n")
    subprocess.run(["git", "add", "tools.py"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "tools"], cwd=repo, check=True)
    content = "def greet(name):\n    return 'hi ' + name\n"
    why = "A greet function in greet.py, written through the write_file tool."
    env = offline_env(tmp_path)
    with ScriptedUpstream([tool_message("write_file", {"path": "greet.py", "content": content}, thinking=why),
                           tool_message("commit", {"message": "Add greet"}, thinking="Commit it."),
                           text_message("Wrote greet.py and committed it.")]) as up:
        proc = lit_record(["--openai-upstream", up.url + "/v1", "--", str(llm_cli), "-m", "gpt-4o-mini",
                           "--functions", "tools.py", "--tools-debug", "add a greet function and commit it"],
                          cwd=repo, env=env)
    assert proc.returncode == 0, proc.stderr
    assert (repo / "greet.py").read_text() == content
    db = store.connect(tmp_path / "lit.db", create=False)
    write = db.execute("SELECT id FROM steps WHERE kind = 'tool_call' AND tool_name = 'write_file'").fetchone()[0]
    note = notes.read(repo, "HEAD").to_json()
    assert note["files"] == {"greet.py": [[1, 2, write]]} and note["steps"][write]["why"] == why
