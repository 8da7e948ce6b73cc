"""OpenAI-compatible agents under `lit record`: the real openai SDK (Chat Completions and the
Responses API, streamed and not) through lit's relay to a scripted upstream on 127.0.0.1,
recorded into the same steps as an Anthropic agent's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


from lit import store
from lit.scripted import ScriptedUpstream, text_message, tool_message

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "openai_agent.py"
FAKE_OPENAI_KEY = "sk-proj-" + "F4keOpenAIKey" * 4


def script() -> list[dict]:
    return [
        tool_message("write_file", {"path": "greet.py", "content": "def greet(name):\n    return f'hi {name}'\n"},
                     thinking="A greet function in its own module keeps the CLI thin."),
        tool_message("run_shell", {"command": "git add greet.py && git commit -q -m 'Add greet'"},
                     thinking="The function is done; commit it."),
        text_message("Added greet.py and committed it."),
    ]


@pytest.mark.parametrize("api,stream", [("chat", True), ("chat", False), ("responses", True), ("responses", False)])
def test_an_openai_agent_is_recorded_as_steps(tmp_path, repo, api, stream):
    db_path = tmp_path / "lit.db"
    with ScriptedUpstream(script()) as up:
        env = {**os.environ, "LIT_DB": str(db_path), "OPENAI_API_KEY": FAKE_OPENAI_KEY, "HOME": str(tmp_path)}
        args = [sys.executable, "-m", "lit", "record", "--openai-upstream", up.url + "/v1", "--",
                sys.executable, str(EXAMPLE), "--api", api, "add a greet function and commit it"]
        if not stream:
            args.insert(-1, "--no-stream")
        proc = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, timeout=60)
        paths = [r["path"] for r in up.requests]
    assert proc.returncode == 0, proc.stderr
    assert "Added greet.py and committed it." in proc.stdout
    assert paths == ["/v1/chat/completions" if api == "chat" else "/v1/responses"] * 3
    assert (repo / "greet.py").read_text().startswith("def greet(name):")

    db = store.connect(db_path)
    steps = list(db.query("SELECT id, kind, text, tool_name, tool_input FROM steps ORDER BY created_at, seq"))
    kinds = [s["kind"] for s in steps]
    assert kinds[0] == "prompt" and steps[0]["text"] == "add a greet function and commit it"
    calls = [s for s in steps if s["kind"] == "tool_call"]
    assert [c["tool_name"] for c in calls] == ["write_file", "run_shell"]
    assert json.loads(calls[0]["tool_input"])["path"] == "greet.py"
    assert kinds.count("tool_result") == 2 and kinds[-1] == "text"
    thinking = [s["text"] for s in steps if s["kind"] == "thinking"]
    assert thinking == ["A greet function in its own module keeps the CLI thin.", "The function is done; commit it."]
    protocol = "openai-chat" if api == "chat" else "openai-responses"
    assert {r[0] for r in db.execute("SELECT protocol FROM exchanges")} == {protocol}
    assert {r[0] for r in db.execute("SELECT DISTINCT conversation_id FROM exchanges")} != set()
    assert len({r[0] for r in db.execute("SELECT DISTINCT conversation_id FROM exchanges")}) == 1
    # The commit made through run_shell is bound, and blame cites the reasoning that wrote each line.
    assert "Lit-Thread: " in subprocess.run(["git", "log", "-1", "--format=%B"], cwd=repo, capture_output=True,
                                            text=True).stdout
    blame = subprocess.run([sys.executable, "-m", "lit", "blame", "greet.py", "--json"], cwd=repo, env=env,
                           capture_output=True, text=True, timeout=60)
    assert blame.returncode == 0, blame.stderr
    lines = [json.loads(line) for line in blame.stdout.splitlines()] if not blame.stdout.lstrip().startswith("[") \
        else json.loads(blame.stdout)
    assert [ln["why"] for ln in lines] == ["A greet function in its own module keeps the CLI thin."] * 2
    assert {ln["step"] for ln in lines} == {s["id"] for s in db.query(
        "SELECT id FROM steps WHERE kind = 'tool_call' AND tool_name = 'write_file'")}
    raw = b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))
    assert FAKE_OPENAI_KEY.encode() not in raw


def test_websocket_frames_become_exchanges_the_http_parser_reads():
    from lit.proxy import openai
    from lit.proxy.openai_encode import responses_events

    create = json.dumps({"type": "response.create", "model": "gpt-5.5", "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]})
    answer = [json.dumps(e) for e in responses_events(text_message("Hello."), "gpt-5.5")]
    frames = [(True, create), *[(False, a) for a in answer],
              (True, json.dumps({"type": "response.create", "model": "gpt-5.5", "input": []})),
              (False, json.dumps({"type": "error", "status": 429, "error": {"type": "rate_limit", "message": "slow"}})),
              (True, create), (False, answer[0])]  # the connection closed mid-answer
    exchanges = list(openai.websocket_exchanges(frames))
    assert [complete for _, _, complete in exchanges] == [True, True, False]
    parsed = []
    for request, response, _ in exchanges:
        p = openai.parse_responses_request(request)
        openai.parse_responses_response(response, {"content-type": "text/event-stream"}, 200, p)
        parsed.append(p)
    assert parsed[0].request_ok
    assert parsed[0].messages == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert parsed[0].response["content"] == [{"type": "text", "text": "Hello."}] and parsed[0].response_id
    assert parsed[1].error == {"type": "rate_limit", "message": "slow"} and not parsed[1].response_ok
    assert parsed[2].parse_error == "response: no response.completed event"


def test_custom_tool_calls_are_tool_calls_whose_input_is_text():
    from lit.proxy import openai

    patch = "*** Begin Patch\n*** Update File: a.py\n@@\n-x\n+y\n*** Add File: b/c.py\n+z\n*** End Patch\n"
    body = json.dumps({"model": "gpt-5.5", "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix"}]},
        {"type": "custom_tool_call", "call_id": "call_1", "name": "apply_patch", "input": patch},
        {"type": "custom_tool_call_output", "call_id": "call_1", "output": "Success."}]}).encode()
    p = openai.parse_responses_request(body)
    assert p.messages[1]["content"] == [{"type": "custom_tool_use", "id": "call_1", "name": "apply_patch",
                                         "input": patch}]
    assert p.messages[2]["content"] == [{"type": "tool_result", "tool_use_id": "call_1", "content": "Success."}]
    assert openai.patch_files(patch) == ["a.py", "b/c.py"]


@pytest.mark.parametrize("stream", [True, False])
def test_custom_tool_calls_over_chat_completions(stream):
    """Chat Completions' custom (freeform) tools: the call's input is text, as in the Responses API."""
    from lit.proxy import openai, openai_encode

    message = tool_message("apply_patch", "*** Begin Patch\n*** Add File: a.py\n+x\n*** End Patch\n", tool_id="c1")
    p = openai.parse_chat_request(json.dumps({"model": "gpt-5.5", "stream": stream,
                                              "messages": [{"role": "user", "content": "add a.py"}]}).encode())
    if stream:
        body, headers = b"".join(openai_encode.chat_stream(message, "gpt-5.5")), {"content-type": "text/event-stream"}
    else:
        body, headers = json.dumps(openai_encode.chat_completion(message, "gpt-5.5")).encode(), {}
    openai.parse_chat_response(body, headers, 200, p)
    assert p.response["content"] == [{"type": "custom_tool_use", "id": "c1", "name": "apply_patch",
                                      "input": "*** Begin Patch\n*** Add File: a.py\n+x\n*** End Patch\n"}]
    assert p.stop_reason == "tool_use" and not p.parse_error
