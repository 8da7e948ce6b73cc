"""Faults, each with real processes and real sockets: `lit record` running an agent on the real SDK
against a scripted upstream that breaks in the ways the real one does. Whatever breaks, the agent
gets what the upstream sent, every finished exchange is in the DB, and lit exits with the agent's
code."""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FAKE_KEY
from lit_fixtures import init_repo
from test_record import lit_env

from lit import store
from lit.proxy.anthropic import message_to_sse
from lit.scripted import ScriptedUpstream, text_message, tool_message, wait_for

# How long `lit record` and its agent may take to start and make their first calls (two Python
# starts, the SDK's import, a turn's snapshot) before the test gives up: wait_for returns as soon as
# they have. At load 17 (two busy loops and other suites on 2 cores) 30 s was not enough.
START = 120

# An agent like Claude Code in the ways that matter here: it streams, uses a tool, retries what
# its SDK retries (AGENT_RETRIES) and, like Claude Code, asks again itself when a stream breaks.
AGENT = '''
import os, sys, time
import anthropic

with open("agent.pid", "w") as f:
    f.write(str(os.getpid()))
client = anthropic.Anthropic(max_retries=int(os.environ.get("AGENT_RETRIES", "0")),
                             timeout=float(os.environ.get("AGENT_TIMEOUT", "30")))
tools = [{"name": "Write", "description": "Write a file",
          "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"},
                                                            "content": {"type": "string"}}}}]
messages = [{"role": "user", "content": sys.argv[1]}]
while True:
    for attempt in range(3):
        try:
            with client.messages.stream(model="claude-sonnet-4-6", max_tokens=1000, tools=tools,
                                        messages=messages) as stream:
                reply = stream.get_final_message()
            break
        except Exception as e:  # a broken stream: ask again, as Claude Code does
            print(f"agent: retrying after {type(e).__name__}", file=sys.stderr, flush=True)
            time.sleep(float(os.environ.get("AGENT_BACKOFF", "0")))
    else:
        sys.exit(3)
    messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in reply.content]})
    if reply.stop_reason != "tool_use":
        break
    results = []
    for block in reply.content:
        if block.type == "tool_use":
            with open(block.input["file_path"], "w") as f:
                f.write(block.input["content"])
            results.append({"type": "tool_result", "tool_use_id": block.id,
                            "content": "x" * int(os.environ.get("RESULT_BYTES", "0")) or "written"})
    messages.append({"role": "user", "content": results})
print(reply.content[-1].text)
'''

PROMPT = "Write hello.txt saying hello"
WRITE = tool_message("Write", {"file_path": "hello.txt", "content": "hello\n"},
                     thinking="One file.", tool_id="toolu_01FAULTS")
DONE = text_message("Wrote hello.txt.")


def full(reply: dict) -> dict:
    """A complete message (fixed ids) for raw SSE replies."""
    return {"id": "msg_01FAULT", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
            "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 5}, **reply}


def sse(reply: dict) -> list[bytes]:
    return message_to_sse(full(reply))


def start(tmp_path: Path, upstream: ScriptedUpstream, *, preexec=None, **env: str) -> subprocess.Popen:
    repo = tmp_path / "repo"
    if not repo.exists():
        init_repo(repo)
    (tmp_path / "agent.py").write_text(AGENT)
    return subprocess.Popen([sys.executable, "-m", "lit", "record", "--upstream", upstream.url, "--",
                             sys.executable, str(tmp_path / "agent.py"), PROMPT],
                            cwd=repo, env=lit_env(tmp_path, **env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=preexec)


def finish(proc: subprocess.Popen, timeout: float = 60) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err


def exchanges(tmp_path: Path) -> list[dict]:
    db = store.connect(tmp_path / "lit.db", create=False)
    return list(db.query("SELECT * FROM exchanges WHERE path = '/v1/messages' ORDER BY seq"))


def step_kinds(tmp_path: Path) -> list[str]:
    db = store.connect(tmp_path / "lit.db", create=False)
    return [r[0] for r in db.execute("SELECT kind FROM steps ORDER BY thread_id, seq")]


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent that is gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False


def integrity(db_path: Path) -> str:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def test_the_upstream_closes_mid_stream_and_the_agent_asks_again(tmp_path):
    with ScriptedUpstream([{"chunks": sse(WRITE), "reset_after": 4}, WRITE, DONE]) as up:
        code, out, err = finish(start(tmp_path, up))
    assert code == 0, err
    assert out.strip() == "Wrote hello.txt." and "agent: retrying after" in err
    cut, *rest = exchanges(tmp_path)
    assert (cut["status"], cut["complete"]) == (200, 0) and "upstream cut" in cut["error"]
    assert [(e["status"], e["complete"]) for e in rest] == [(200, 1), (200, 1)]
    # The half-streamed answer adds no steps: the thread reads as the agent lived it.
    assert step_kinds(tmp_path) == ["prompt", "thinking", "tool_call", "tool_result", "text"]


def test_rate_limits_and_overload_are_retried_by_the_agent_and_each_try_is_recorded(tmp_path):
    def error(status: int, kind: str, **headers: str) -> dict:
        return {"status": status, "headers": headers,
                "body": {"type": "error", "error": {"type": kind, "message": f"scripted {status}"}}}

    replies = [error(429, "rate_limit_error", **{"retry-after": "1"}),
               error(529, "overloaded_error", **{"retry-after-ms": "20"}),
               error(500, "api_error", **{"retry-after-ms": "20"}), WRITE, DONE]
    with ScriptedUpstream(replies) as up:
        code, out, err = finish(start(tmp_path, up, AGENT_RETRIES="3"))
        waits = [r["headers"].get("X-Stainless-Retry-Count") or r["headers"].get("x-stainless-retry-count")
                 for r in up.requests]
    assert code == 0, err
    assert out.strip() == "Wrote hello.txt." and "retrying" not in err  # the SDK retried, quietly
    rows = exchanges(tmp_path)
    assert [e["status"] for e in rows] == [429, 529, 500, 200, 200]
    assert [json.loads(e["error"])["type"] for e in rows[:3]] == [
        "rate_limit_error", "overloaded_error", "api_error"]
    assert json.loads(rows[0]["response_headers"])["retry-after"] == "1"  # what the agent was told
    assert waits[:4] == ["0", "1", "2", "3"]  # the SDK's own retries, each a separate exchange
    assert step_kinds(tmp_path) == ["prompt", "thinking", "tool_call", "tool_result", "text"]


@pytest.mark.slow
def test_a_stalled_upstream_is_waited_for_as_long_as_the_agent_waits(tmp_path):
    # The first answer goes silent for 3 s mid-stream (lit has no timeout of its own: it waits);
    # the second for a minute, longer than the agent's 5 s timeout: the agent gives up and asks
    # again, and lit hangs up on the upstream with it.
    stalled: list[float] = []  # when the minute-long stall's answer began

    def stalls_a_minute(body: dict) -> dict:
        stalled.append(time.monotonic())
        return {"chunks": sse(DONE), "stall_after": 2, "stall": 60}

    replies = [{"chunks": sse(WRITE), "stall_after": 2, "stall": 3}, stalls_a_minute, DONE]
    with ScriptedUpstream(replies) as up:
        code, out, err = finish(start(tmp_path, up, AGENT_TIMEOUT="5", AGENT_RETRIES="0"))
        assert len(up.hung_up) == 1
    assert code == 0, err
    assert out.strip() == "Wrote hello.txt." and err.count("agent: retrying after ReadTimeout") == 1
    rows = exchanges(tmp_path)
    assert [(e["complete"], e["status"]) for e in rows] == [(1, 200), (0, 200), (1, 200)]
    assert "agent closed" in rows[1]["error"]
    # The minute-long stall was not sat out: lit hung up with the agent (from the answer's start, not
    # lit's, which took 30 s and more at load 13 with two busy loops).
    assert up.hung_up[0] - stalled[0] < 45
    assert step_kinds(tmp_path) == ["prompt", "thinking", "tool_call", "tool_result", "text"]


HANGS_UP = """
import http.client, json, os, sys, urllib.parse
base = urllib.parse.urlsplit(os.environ["ANTHROPIC_BASE_URL"])
conn = http.client.HTTPConnection(base.hostname, base.port, timeout=30)
body = json.dumps({"model": "claude-sonnet-4-6", "max_tokens": 100, "stream": True,
                   "messages": [{"role": "user", "content": sys.argv[1]}]})
conn.request("POST", "/v1/messages", body, {"content-type": "application/json", "x-api-key": "k",
                                             "anthropic-version": "2023-06-01"})
resp = conn.getresponse()
while b"message_stop" not in resp.readline():
    pass
conn.close()  # the answer is in: hang up without waiting for the stream's own end
print("done")
"""


def test_an_answer_whose_last_event_came_is_recorded_when_the_agent_hangs_up_before_its_end(tmp_path):
    """Some agents (Codex) close the connection as soon as the answer's last event is in, before
    the upstream ends the stream: the answer is whole, and its steps are recorded."""
    init_repo(tmp_path / "repo")
    (tmp_path / "agent.py").write_text(HANGS_UP)
    reply = {"chunks": [*sse(DONE), b": the stream's end comes late\n\n"], "stall_after": len(sse(DONE)),
             "stall": 60}
    with ScriptedUpstream([reply]) as up:
        done = subprocess.run([sys.executable, "-m", "lit", "record", "--upstream", up.url, "--", sys.executable,
                               str(tmp_path / "agent.py"), PROMPT], cwd=tmp_path / "repo", env=lit_env(tmp_path),
                              capture_output=True, text=True, timeout=60)
        assert wait_for(lambda: up.hung_up, timeout=10)  # lit hung up on the upstream with the agent
    assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr
    (row,) = exchanges(tmp_path)
    assert row["complete"] == 0 and "agent closed" in row["error"]  # what the wire saw
    assert step_kinds(tmp_path) == ["prompt", "text"]  # and the answer, which was whole


def test_the_agent_dies_mid_stream(tmp_path):
    with ScriptedUpstream([{"chunks": sse(WRITE), "stall_after": 2, "stall": 60}]) as up:
        proc = start(tmp_path, up)
        try:
            assert wait_for(lambda: up.requests and (tmp_path / "repo" / "agent.pid").exists(), timeout=START)
            os.kill(int((tmp_path / "repo" / "agent.pid").read_text()), signal.SIGKILL)
            code, _, err = finish(proc)
        finally:
            proc.kill()
        assert wait_for(lambda: up.hung_up, timeout=10)  # the upstream call is cancelled with it
    assert code == 128 + signal.SIGKILL  # the agent's fate, as a shell reports it
    assert "lit: recorded 1 exchange" in err
    (row,) = exchanges(tmp_path)
    assert row["complete"] == 0 and "agent closed" in row["error"]
    assert step_kinds(tmp_path) == ["prompt"]


def test_lit_killed_mid_stream_leaves_a_clean_db_and_no_orphan(tmp_path):
    replies = [WRITE, {"chunks": sse(DONE), "stall_after": 2, "stall": 60}]
    with ScriptedUpstream(replies) as up:
        # Like Claude Code, the agent waits long before asking again when its connection breaks.
        proc = start(tmp_path, up, AGENT_BACKOFF="120")
        agent_pid = None
        try:
            assert wait_for(lambda: len(up.requests) == 2, timeout=START)
            agent_pid = int((tmp_path / "repo" / "agent.pid").read_text())
            # The relay holds a call's records until it ends, but never longer than spool.HOLD: the
            # stalled call reaches the DB before its end, so a kill -9 from then on loses none of it.
            assert wait_for(lambda: len(rows := exchanges(tmp_path)) == 2 and rows[0]["complete"], timeout=10)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            # The agent, its relay gone, is told to stop rather than left running on its own.
            assert wait_for(lambda: not alive(agent_pid), timeout=10)
        finally:
            proc.kill()
            if agent_pid and alive(agent_pid):
                os.kill(agent_pid, signal.SIGKILL)
    assert integrity(tmp_path / "lit.db") == "ok"
    first, second = exchanges(tmp_path)
    assert first["complete"] == 1 and second["complete"] == 0
    assert step_kinds(tmp_path)[:3] == ["prompt", "thinking", "tool_call"]
    listed = subprocess.run([sys.executable, "-m", "lit", "sessions", "--json"], env=lit_env(tmp_path),
                            capture_output=True, text=True, check=True)
    assert [s["state"] for s in json.loads(listed.stdout)] == ["interrupted"]
    # The repository is as the agent left it: no lock, no stray state.
    repo = tmp_path / "repo"
    assert (repo / "hello.txt").read_text() == "hello\n"
    assert not (repo / ".git" / "index.lock").exists()
    assert subprocess.run(["git", "fsck", "--no-progress"], cwd=repo, capture_output=True).returncode == 0


def test_a_full_disk_stops_the_recording_not_the_agent(tmp_path):
    # A file size limit makes every write past it fail, as a full disk does (EFBIG for ENOSPC):
    # the first exchanges fit, then a 2 MB tool result does not.
    store.connect(tmp_path / "lit.db").conn.close()
    limit = sum(p.stat().st_size for p in tmp_path.glob("lit.db*")) + 256 * 1024

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    with ScriptedUpstream([WRITE, DONE]) as up:
        code, out, err = finish(start(tmp_path, up, preexec=small_disk, RESULT_BYTES="2000000"))
    assert code == 0 and out.strip() == "Wrote hello.txt."  # the agent noticed nothing
    last = err.strip().splitlines()[-1]
    assert last.startswith("lit: recorded 1 exchange") and "2 not recorded (cannot write " in last
    assert "Traceback" not in err
    assert integrity(tmp_path / "lit.db") == "ok"
    first = exchanges(tmp_path)[0]
    assert first["complete"] == 1  # what was written before the disk filled is all there
    assert step_kinds(tmp_path)[:3] == ["prompt", "thinking", "tool_call"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_lit_stopped_by_a_signal_mid_stream_closes_the_session(tmp_path, signum):
    # A polite stop (not SIGKILL) reaches the agent, and lit still closes the session properly.
    with ScriptedUpstream([{"chunks": sse(WRITE), "stall_after": 2, "stall": 60}]) as up:
        proc = start(tmp_path, up)
        try:
            assert wait_for(lambda: up.requests, timeout=START)
            proc.send_signal(signum)
            code, _, err = finish(proc)
        finally:
            proc.kill()
    assert code == 128 + signum and "lit: recorded 1 exchange" in err
    db = store.connect(tmp_path / "lit.db", create=False)
    (session,) = db.query("SELECT ended_at, exit_code FROM sessions")
    assert session["ended_at"] and session["exit_code"] == 128 + signum
    assert integrity(tmp_path / "lit.db") == "ok"
    assert FAKE_KEY.encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("lit.db*"))


# The agent's second call goes out after the recorder process was killed (as the OOM killer would).
KILL_RECORDER = '''
import os, signal, time, urllib.request

def call():
    req = urllib.request.Request(os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages", data=b'{"messages": []}',
                                 headers={"content-type": "application/json"})
    return urllib.request.urlopen(req, timeout=30).read().decode()

first = call()
import sqlite3
deadline = time.monotonic() + 20
while time.monotonic() < deadline:  # the recorder has written the first call: then it dies
    db = sqlite3.connect(os.environ["LIT_DB"])
    if db.execute("SELECT COUNT(*) FROM exchanges WHERE status IS NOT NULL").fetchone()[0]:
        break
    db.close()
    time.sleep(0.05)
lit = os.getppid()
for pid in open(f"/proc/{lit}/task/{lit}/children").read().split():
    if b"lit.recording" in open(f"/proc/{pid}/cmdline", "rb").read():
        os.kill(int(pid), signal.SIGKILL)
time.sleep(0.5)
print(first, call())
'''


def test_a_recorder_that_dies_never_reaches_the_agent(tmp_path):
    (tmp_path / "agent.py").write_text(KILL_RECORDER)
    with ScriptedUpstream([{"status": 200, "body": b"one"}, {"status": 200, "body": b"two"}]) as up:
        proc = subprocess.run([sys.executable, "-m", "lit", "record", "--upstream", up.url, "--", sys.executable,
                               "agent.py"], cwd=tmp_path, env=lit_env(tmp_path), capture_output=True, text=True,
                              timeout=60)
    assert (proc.returncode, proc.stdout) == (0, "one two\n")  # the agent noticed nothing
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1
    # What it wrote before it died is counted from the DB; the call after it is said as lost.
    assert proc.stderr.startswith("lit: recorded 1 exchange, 0 steps")
    assert proc.stderr.rstrip().endswith("; 1 not recorded (the recorder stopped (exit code -9))")
    assert integrity(tmp_path / "lit.db") == "ok"


def test_a_commit_after_the_recorder_died_is_not_held_and_says_why(tmp_path):
    """The hooks ask the session to catch up before they bind a thread: a recorder that is gone
    answers at once, and the commit goes on with what the DB holds, saying so in one line."""
    repo = init_repo(tmp_path / "repo")
    commit = ("\nimport subprocess\nt0 = time.monotonic()\n"
              "done = subprocess.run('echo x > x.txt && git add x.txt && git commit -q -m x', shell=True,"
              " capture_output=True, text=True)\n"
              "import json\nprint(json.dumps([done.returncode, time.monotonic() - t0, done.stderr.splitlines()]))\n")
    (repo / "agent.py").write_text(KILL_RECORDER.replace("print(first, call())", commit))
    with ScriptedUpstream([{"status": 200, "body": b"one"}]) as up:
        proc = subprocess.run([sys.executable, "-m", "lit", "record", "--upstream", up.url, "--", sys.executable,
                               "agent.py"], cwd=repo, env=lit_env(tmp_path), capture_output=True, text=True,
                              timeout=60)
    code, _seconds, said = json.loads(proc.stdout)
    # The relay answered at once that the recorder stopped (a hook held for the recorder would
    # have waited SYNC_WAIT and said it is behind): the why tells the two apart, not a clock,
    # which a busy machine makes lie.
    assert code == 0
    # Said once: the commit got no trailer (the DB lacks the tool call that wrote x.txt), so
    # post-commit has nothing to bind and does not ask.
    assert said == ["lit: prepare-commit-msg hook: the session's recorder stopped: the thread holds the steps "
                    "written so far"]
    assert subprocess.run(["git", "log", "-1", "--format=%s"], cwd=repo, capture_output=True,
                          text=True).stdout == "x\n"
