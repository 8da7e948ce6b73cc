"""The recorder on the exchanges an agent produces: conversations, threads and steps, storage
that grows with what is new, and failures that never reach the relay."""

from __future__ import annotations

import json
import time

import pytest

from lit import store
from lit.proxy.anthropic import message_to_sse
from lit.proxy.exchange import Exchange
from lit.recorder import Recorder

TOOLS = [{"name": "Write", "description": "Write a file " + "x" * 20000,
          "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}}}]
SYSTEM = [{"type": "text", "text": "You are a coding agent.", "cache_control": {"type": "ephemeral"}}]


class Agent:
    """Feeds a recorder the exchanges a tool-using agent loop makes."""

    def __init__(self, rec: Recorder, tools=TOOLS, ua="claude-cli/2.1.197 (external, cli)"):
        self.rec, self.tools, self.ua = rec, tools, ua
        self.messages: list[dict] = []
        self.seq = 0

    def call(self, response: dict, *, stream=True, status=200, complete=True, model="claude-sonnet-4-6",
             extra_headers=None, **params) -> Exchange:
        self.seq += 1
        body = {"model": model, "max_tokens": 4096, "stream": stream, "system": SYSTEM,
                "messages": self.messages, "thinking": {"type": "adaptive"}, **params}
        if self.tools:
            body["tools"] = self.tools
        ex = Exchange(id=f"{self.rec.session_id}.{self.seq}", session_id=self.rec.session_id, seq=self.seq,
                      method="POST", path="/v1/messages", query="beta=true",
                      request_headers={"x-api-key": "sk-ant-api03-FAKEFAKEFAKE-secretvalue", "user-agent": self.ua,
                                       **(extra_headers or {})},
                      request_body=json.dumps(body).encode(), started_at=time.time())
        self.rec.request(ex)
        message = {"id": f"msg_{self.seq}", "model": model, "usage": {"input_tokens": 100, "output_tokens": 20,
                   "cache_read_input_tokens": 80, "cache_creation_input_tokens": 0}, **response}
        if stream:
            ex.response_body = b"".join(message_to_sse(message))
            ex.response_headers = {"content-type": "text/event-stream", "request-id": f"req_{self.seq}"}
        else:
            ex.response_body = json.dumps({"type": "message", "role": "assistant", **message}).encode()
            ex.response_headers = {"content-type": "application/json"}
        ex.status, ex.streamed, ex.complete = status, stream, complete
        ex.ttfb_ms, ex.duration_ms = 1.0, 5.0
        self.rec.response(ex)
        return ex

    def user(self, content):
        self.messages.append({"role": "user", "content": content})

    def assistant(self, content):
        self.messages.append({"role": "assistant", "content": content})


def tool_turn(tool_id="toolu_1", path="a.py"):
    return {"content": [{"type": "thinking", "thinking": "I need a file.", "signature": "sig"},
                        {"type": "text", "text": "Writing it."},
                        {"type": "tool_use", "id": tool_id, "name": "Write",
                         "input": {"file_path": path, "content": "print(1)\n"}}],
            "stop_reason": "tool_use"}


@pytest.fixture
def rec(tmp_path):
    r = Recorder(tmp_path / "lit.db", argv=["agent"], cwd=str(tmp_path), upstream="http://127.0.0.1:1")
    yield r
    if r._writer.is_alive():
        r.finish(0)


def test_a_tool_loop_becomes_the_threads_steps(rec, tmp_path):
    agent = Agent(rec)
    agent.user([{"type": "text", "text": "<system-reminder>context</system-reminder>"},
                {"type": "text", "text": "Add a hello script"}])
    turn = tool_turn()
    agent.call(turn)
    agent.assistant(turn["content"])
    agent.user([{"type": "tool_result", "tool_use_id": "toolu_1", "content": "File created",
                 "cache_control": {"type": "ephemeral"}}])
    agent.call({"content": [{"type": "text", "text": "Done."}], "stop_reason": "end_turn"}, stream=False)
    summary = rec.finish(0)

    db = store.connect(tmp_path / "lit.db")
    steps = list(db.query("SELECT kind, text, tool_name, tool_input, tool_use_id, is_error FROM steps ORDER BY seq"))
    assert [s["kind"] for s in steps] == ["context", "prompt", "thinking", "text", "tool_call", "tool_result", "text"]
    # System reminders are context the agent added, kept as such, never the user's prompt.
    assert steps[0]["text"] == "<system-reminder>context</system-reminder>"
    steps = steps[1:]
    assert steps[0]["text"] == "Add a hello script"
    assert json.loads(steps[3]["tool_input"]) == {"file_path": "a.py", "content": "print(1)\n"}
    assert steps[4]["tool_use_id"] == "toolu_1" and steps[4]["is_error"] == 0 and steps[4]["text"] == "File created"
    assert summary.exchanges == 2 and summary.steps == 7 and summary.unrecorded == 0
    thread = db["threads"].get(summary.threads[0][0])
    assert thread["title"] == "Add a hello script" and thread["status"] == "pending"  # not in a git repo
    ex = list(db.query("SELECT * FROM exchanges ORDER BY seq"))
    assert [e["role"] for e in ex] == ["main", "main"] and ex[0]["conversation_id"] == ex[1]["conversation_id"]
    assert ex[0]["stop_reason"] == "tool_use" and ex[0]["cache_read_input_tokens"] == 80
    assert ex[0]["query"] == "beta=true" and ex[0]["request_id"] == "req_1"
    session = db["sessions"].get(rec.session_id)
    assert session["agent"].startswith("claude-cli/") and session["exit_code"] == 0
    raw = (tmp_path / "lit.db").read_bytes() + (tmp_path / "lit.db-wal").read_bytes()
    assert b"secretvalue" not in raw
    # The conversation comes back whole from what was stored once (replay and export use this).
    sent = [{**m, "content": [{k: v for k, v in b.items() if k != "cache_control"} for b in m["content"]]}
            for m in agent.messages]
    assert store.message_chain(db, ex[1]["message_key"]) == sent
    answer = store.message_chain(db, ex[0]["response_key"])[-1]
    assert answer == {"role": "assistant", "content": turn["content"]}


def test_each_long_content_is_redacted_once(rec, tmp_path):
    """A tool result and an answer go through the recorder several times each (as a step, as the
    block of a message, in every request that resends them): their text is scanned for secrets
    once; what is stored is redacted all the same."""
    secret = "ghp_" + "T3stT0kenValue0123456789abcdefABCDEF"
    output = "".join(f"{n:4}  line {n} of the file\n" for n in range(200)) + f"TOKEN={secret}\n"
    answer = "What I found:\n" + "".join(f"- finding {n}: nothing to change\n" for n in range(60))
    agent = Agent(rec)
    agent.user("Read a.py")
    call = {"content": [{"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "a.py"}}],
            "stop_reason": "tool_use"}
    agent.call(call)
    agent.assistant(call["content"])
    agent.user([{"type": "tool_result", "tool_use_id": "toolu_1", "content": output}])
    agent.call({"content": [{"type": "text", "text": answer}], "stop_reason": "end_turn"})
    agent.assistant([{"type": "text", "text": answer}])
    agent.user("Thanks")
    agent.call({"content": [{"type": "text", "text": "You're welcome."}], "stop_reason": "end_turn"})
    rec.finish(0)
    # The long texts: the tool definitions' description, the tool result, the answer.
    assert rec.redactor.scanned == 3 and rec.redactor.reused >= 3
    db = store.connect(tmp_path / "lit.db")
    texts = [store.step_text(t) for (t,) in db.execute(
        "SELECT text FROM steps WHERE kind IN ('tool_result', 'text') ORDER BY seq")]
    assert texts == [output.replace(f"TOKEN={secret}", "TOKEN=[REDACTED:secret]"), answer, "You're welcome."]


def test_side_calls_and_retries_do_not_clutter_the_thread(rec, tmp_path):
    agent = Agent(rec)
    agent.user("Fix the bug")
    agent.call({"content": [{"type": "text", "text": "Looking."}]}, status=529, complete=True)  # an error...
    side = Agent(rec, tools=None, ua="claude-cli/2.1.197")
    side.seq = 50
    side.user("Write a 5-word title for: Fix the bug")
    side.call({"content": [{"type": "text", "text": "Fixing the bug"}]}, model="claude-haiku-4-5")
    agent.call({"content": [{"type": "text", "text": "Looking."}]}, stream=False)  # ...retried as JSON
    rec.finish(0)
    db = store.connect(tmp_path / "lit.db")
    kinds = [r["kind"] for r in db.query("SELECT kind FROM steps ORDER BY seq")]
    assert kinds == ["prompt", "text"]
    roles = {r["model"]: r["role"] for r in db.query("SELECT model, role FROM exchanges")}
    assert roles == {"claude-sonnet-4-6": "main", "claude-haiku-4-5": "side"}


def test_side_calls_are_known_by_what_they_ask_and_a_chat_without_tools_is_a_thread(rec, tmp_path):
    chat = Agent(rec, tools=None, ua="OpenAI/Python 2.20.0")  # names the SDK, not the agent
    chat.user("What does this repository do?")
    chat.call({"content": [{"type": "text", "text": "It counts words."}]})
    calls = [("quota", {"max_tokens": 1}),  # a quota probe
             ("Name this session", {"output_format": {"type": "json_schema", "schema": {"type": "object"}}}),
             ("Write a 5-word title for the conversation", {}),
             ("USER: What does this repository do?\nASSISTANT: It counts words.", {})]  # quotes the prompt
    for n, (text, params) in enumerate(calls):
        side = Agent(rec, tools=None)
        side.seq = 10 * (n + 1)
        side.user(text)
        side.call({"content": [{"type": "text", "text": "side"}]}, model="claude-haiku-4-5", **params)
    rec.finish(0)
    db = store.connect(tmp_path / "lit.db")
    assert [(r["kind"], r["text"]) for r in db.query("SELECT kind, text FROM steps ORDER BY seq")] == [
        ("prompt", "What does this repository do?"), ("text", "It counts words.")]
    assert [r["role"] for r in db.query("SELECT role FROM exchanges ORDER BY seq")] == ["main"] + ["side"] * 4
    assert db["sessions"].get(rec.session_id)["agent"] == "agent (OpenAI/Python 2.20.0)"


def test_subagent_hangs_under_the_tool_call_that_started_it(rec, tmp_path):
    agent = Agent(rec)
    agent.user("Survey the repo")
    task = {"content": [{"type": "tool_use", "id": "toolu_task", "name": "Task",
                         "input": {"description": "survey", "prompt": "List every module and its job"}}],
            "stop_reason": "tool_use"}
    agent.call(task)
    sub = Agent(rec)
    sub.seq = 100
    sub.user("List every module and its job")
    sub.call({"content": [{"type": "text", "text": "There are three modules."}]})
    rec.finish(0)
    db = store.connect(tmp_path / "lit.db")
    call = db.execute("SELECT id FROM steps WHERE tool_use_id = 'toolu_task'").fetchone()[0]
    sub_steps = list(db.query("SELECT kind, parent_step_id FROM steps WHERE parent_step_id IS NOT NULL"))
    assert [s["kind"] for s in sub_steps] == ["prompt", "text"] and {s["parent_step_id"] for s in sub_steps} == {call}


def test_storage_grows_with_what_is_new(tmp_path):
    """200 turns, each resending 20 kB of tools and the whole history: the DB stays under 1.2 times
    its unique content (the requests sent total ~O(N^2) bytes)."""
    rec = Recorder(tmp_path / "lit.db", argv=["agent"], cwd=str(tmp_path))
    agent = Agent(rec)
    agent.user("Start")
    unique = len(json.dumps(TOOLS)) + len(json.dumps(SYSTEM)) + len(json.dumps(agent.messages))
    sent = 0
    for i in range(200):
        turn = tool_turn(tool_id=f"toolu_{i}", path=f"f{i}.py")
        turn["content"][0]["thinking"] = f"Step {i}: " + " ".join(f"reason{i * j}" for j in range(40))
        ex = agent.call(turn)
        sent += len(ex.request_body)
        agent.assistant(turn["content"])
        body = "\n".join(f"{n:4}  line {n} of file {i}: value = compute({i}, {n})" for n in range(10 + i * 37 % 150))
        result = [{"type": "tool_result", "tool_use_id": f"toolu_{i}", "content": body}]
        agent.user(result)
        unique += len(json.dumps(turn["content"])) + len(json.dumps(result))
    rec.finish(0)
    db = store.connect(tmp_path / "lit.db")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = (tmp_path / "lit.db").stat().st_size
    assert db.execute("SELECT COUNT(*) FROM blobs WHERE kind = 'tools'").fetchone()[0] == 1
    assert db.execute("SELECT COUNT(*) FROM exchanges").fetchone()[0] == 200
    # Issue 16's goal: 1.2x. Tool results over 1 kB are stored compressed (1.02x here; 1.9x before).
    assert size < 1.2 * unique, (size, unique, sent)
    assert sent > 50 * size
    packed = db.execute("SELECT COUNT(*) FROM steps WHERE kind = 'tool_result' AND typeof(text) = 'blob'").fetchone()
    assert packed[0] > 150
    # ...and read back as they were sent: the messages that cite them rebuild the conversation.
    last = db.execute("SELECT message_key FROM exchanges ORDER BY seq DESC LIMIT 1").fetchone()[0]
    assert store.message_chain(db, last)[1:] == agent.messages[1:-2]  # (the first, a string, comes back as a block)


def test_unparseable_bodies_are_kept_raw_and_counted_nowhere_as_failures(rec, tmp_path):
    ex = Exchange(id=f"{rec.session_id}.1", session_id=rec.session_id, seq=1, method="POST", path="/v1/messages",
                  query="", request_headers={}, request_body=b"{not json\xff", started_at=time.time())
    rec.request(ex)
    ex.status, ex.response_body, ex.complete = 400, b'{"type":"error","error":{"type":"invalid_request_error"}}', True
    ex.response_headers = {"content-type": "application/json"}
    rec.response(ex)
    summary = rec.finish(0)
    db = store.connect(tmp_path / "lit.db")
    row = db["exchanges"].get(ex.id)
    assert "not JSON" in row["parse_error"] and store.get_blob(db, row["request_blob"]) == b"{not json\xff"
    assert row["status"] == 400 and summary.unrecorded == 0


def test_openai_chat_and_responses_become_the_same_steps(tmp_path):
    from lit.proxy import openai_encode

    rec = Recorder(tmp_path / "lit.db", argv=["agent"], cwd=str(tmp_path))
    turn = {"content": [{"type": "thinking", "thinking": "Need a file."},
                        {"type": "tool_use", "id": "call_1", "name": "write_file",
                         "input": {"path": "a.py", "content": "x = 1\n"}}], "usage": {"input_tokens": 9}}
    tools = [{"type": "function", "function": {"name": "write_file", "parameters": {}}}]
    chat1 = {"model": "gpt-5", "stream": True, "tools": tools,
             "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Make a.py"}]}
    chat2 = {**chat1, "messages": chat1["messages"] + [
        {"role": "assistant", "content": None, "reasoning_content": "Need a file.",
         "tool_calls": [{"id": "call_1", "type": "function",
                         "function": {"name": "write_file", "arguments": '{"path": "a.py", "content": "x = 1\\n"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "wrote a.py"}]}
    responses = {"model": "gpt-5", "tools": tools, "instructions": "Be brief.", "input": "Now b.py"}
    bodies = [
        ("/v1/chat/completions", chat1, b"".join(openai_encode.chat_stream(turn, "gpt-5")), "text/event-stream"),
        ("/v1/chat/completions", chat2,
         json.dumps(openai_encode.chat_completion({"content": [{"type": "text", "text": "Done."}]}, "gpt-5")).encode(),
         "application/json"),
        ("/openai/v1/responses", responses,
         b"".join(openai_encode.responses_stream({"content": [{"type": "text", "text": "b.py done."}]}, "gpt-5")),
         "text/event-stream"),
    ]
    for i, (path, body, response, ctype) in enumerate(bodies, 1):
        ex = Exchange(id=f"{rec.session_id}.{i}", session_id=rec.session_id, seq=i, method="POST", path=path,
                      query="", request_headers={"authorization": "Bearer sk-proj-FAKE0000"},
                      request_body=json.dumps(body).encode(), started_at=time.time())
        rec.request(ex)
        ex.status, ex.response_body, ex.response_headers, ex.complete = 200, response, {"content-type": ctype}, True
        rec.response(ex)
    rec.finish(0)
    db = store.connect(tmp_path / "lit.db")
    steps = list(db.query("SELECT kind, text, tool_name, tool_input FROM steps ORDER BY thread_id, seq"))
    assert [s["kind"] for s in steps] == ["prompt", "thinking", "tool_call", "tool_result", "text", "prompt", "text"]
    assert json.loads(steps[2]["tool_input"]) == {"path": "a.py", "content": "x = 1\n"}
    assert steps[3]["text"] == "wrote a.py" and steps[6]["text"] == "b.py done."
    protocols = [r[0] for r in db.execute("SELECT protocol FROM exchanges ORDER BY seq")]
    assert protocols == ["openai-chat", "openai-chat", "openai-responses"]
    assert db.execute("SELECT input_tokens FROM exchanges WHERE seq = 1").fetchone()[0] == 9


def test_the_same_run_recorded_twice_gives_two_full_threads(tmp_path):
    """A replayed run sends and receives the very same messages: each session keeps its steps."""
    for _ in range(2):
        rec = Recorder(tmp_path / "lit.db", argv=["agent"], cwd=str(tmp_path))
        agent = Agent(rec)
        agent.user("Add a hello script")
        agent.call(tool_turn())
        rec.finish(0)
    db = store.connect(tmp_path / "lit.db")
    counts = [r[0] for r in db.execute("SELECT COUNT(*) FROM steps GROUP BY thread_id")]
    assert counts == [4, 4]


@pytest.mark.parametrize("path,field", [("/v1/messages", "messages"), ("/v1/chat/completions", "messages"),
                                        ("/v1/responses", "input")])
def test_a_request_too_deep_to_parse_is_recorded_and_said(rec, tmp_path, path, field):
    """Anthropic's and OpenAI's parsers alike: a hostile body deeper than Python parses is kept raw."""
    from lit.record import summary_line

    deep = b'{"%s": ' % field.encode() + b"[" * 200_000 + b"]" * 200_000 + b"}"
    ex = Exchange(id=f"{rec.session_id}.1", session_id=rec.session_id, seq=1, method="POST", path=path,
                  query="", request_headers={"content-type": "application/json"}, request_body=deep,
                  started_at=time.time())
    rec.request(ex)
    ex.status, ex.complete, ex.response_headers = 200, True, {"content-type": "application/json"}
    ex.response_body = b'{"type": "error"}'
    rec.response(ex)
    summary = rec.finish(0)
    db = store.connect(tmp_path / "lit.db")
    (row,) = db.query("SELECT parse_error, complete, request_blob FROM exchanges")
    assert row["parse_error"] == "request: not JSON (nested too deeply to read)" and row["complete"] == 1
    assert store.get_blob(db, row["request_blob"]) == deep  # kept raw
    assert (summary.exchanges, summary.unrecorded, summary.unreadable) == (1, 0, 1)
    assert summary_line(summary).endswith(
        "; 1 request kept raw, not read into steps (exchange 1: request: not JSON (nested too deeply to read))")


@pytest.mark.parametrize("path,stream", [(p, s) for p in ("/v1/messages", "/v1/chat/completions", "/v1/responses")
                                         for s in (False, True)])
def test_an_answer_too_deep_to_parse_is_recorded(rec, tmp_path, path, stream):
    """A hostile upstream's answer (or an event in its stream) deeper than Python parses: the call
    is kept with its raw answer and said unreadable, and the next call is recorded as usual."""
    deep = b"[" * 200_000 + b"]" * 200_000
    request = {"model": "m", "stream": stream,
               ("input" if path == "/v1/responses" else "messages"): [{"role": "user", "content": "hi"}]}
    ex = Exchange(id=f"{rec.session_id}.1", session_id=rec.session_id, seq=1, method="POST", path=path,
                  query="", request_headers={"content-type": "application/json"},
                  request_body=json.dumps(request).encode(), started_at=time.time())
    rec.request(ex)
    kind = "text/event-stream" if stream else "application/json"
    ex.status, ex.complete, ex.response_headers = 200, True, {"content-type": kind}
    ex.response_body = (b"event: x\ndata: " + deep + b"\n\n") if stream else b'{"a": ' + deep + b"}"
    rec.response(ex)
    rec.finish(0)
    db = store.connect(tmp_path / "lit.db")
    (row,) = db.query("SELECT complete, response_blob FROM exchanges")
    assert row["complete"] == 1 and store.get_blob(db, row["response_blob"]) == ex.response_body


def test_an_answer_that_edits_files_stands_for_its_edits_only_without_tools(rec, tmp_path):
    """aider edits from SEARCH/REPLACE blocks in its answer: that text step names the files it edits.
    An agent with tools showing a diff in its closing words has made its edits through its tools."""
    edit = "Adding it.\n\nhello.py\n```python\n<<<<<<< SEARCH\n=======\nprint('hi')\n>>>>>>> REPLACE\n```\n"
    plain = Agent(rec, tools=None, ua="OpenAI/Python 2.20.0")
    plain.user("add hello.py")
    plain.call({"content": [{"type": "text", "text": edit}]})
    tooled = Agent(rec)
    tooled.seq = 10
    tooled.user("show me the change")
    tooled.call({"content": [{"type": "text", "text": edit}]})
    rec.finish(0)
    db = store.connect(tmp_path / "lit.db")
    inputs = [r["tool_input"] for r in db.query("SELECT tool_input FROM steps WHERE kind = 'text' ORDER BY created_at")]
    assert [json.loads(i) if i else None for i in inputs] == [{"files": ["hello.py"]}, None]


def test_headers_that_change_per_call_are_kept_apart_from_those_that_do_not(rec, tmp_path):
    agent = Agent(rec)
    agent.user("Say hi")
    for n in range(3):
        agent.call({"content": [{"type": "text", "text": "hi"}]},
                   extra_headers={"Content-Length": str(1000 + n), "X-Stainless-Retry-Count": str(n)})
    rec.finish(0)
    db = store.connect(tmp_path / "lit.db")
    rows = db.execute("SELECT request_headers, request_headers_call FROM exchanges ORDER BY seq").fetchall()
    assert len({r[0] for r in rows}) == 1  # one blob for what every call sends alike
    assert [json.loads(r[1]) for r in rows] == [
        {"Content-Length": str(1000 + n), "X-Stainless-Retry-Count": str(n)} for n in range(3)]
    same = json.loads(store.get_blob(db, rows[0][0]))
    assert same["user-agent"].startswith("claude-cli/") and "Content-Length" not in same
    assert "secretvalue" not in json.dumps(same)  # the key is never stored, here either
