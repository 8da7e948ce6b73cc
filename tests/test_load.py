"""lit under load, as users run it: 8 `lit record` sessions writing to one DB at once, 64
concurrent streams through one relay, a session of 1,000 exchanges. Real processes, real sockets
on 127.0.0.1, real SQLite files; what is checked is what a user would check afterwards: every
exchange recorded, complete, in order, nothing said about locks, a sound DB.

(No timing assertions: speed is measured by the benchmarks.)"""

from __future__ import annotations

import asyncio
import collections
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import anthropic

import pytest
from conftest import FAKE_KEY
from lit_fixtures import init_repo
from test_record import lit_env

from lit import store
from lit.proxy.relay import Relay
from lit.recording import RecorderProcess
from lit.scripted import ScriptedUpstream, text_message, tool_message, wait_for

MODEL = "claude-sonnet-4-6"
# How long a run may take before it is taken for hung: no speed is asserted here, and with two busy
# loops on both cores and other suites running, the 1,000 exchanges took more than 120 s.
HANG = 300
# What lit says when its recorder is still writing a second after the agent ended (README: "lit says
# so after a second"): on a busy machine, 8 sessions finishing at once or a 1,000-exchange session
# may take that long. It comes before the summary line, and nothing else may.
WAITED = r"(?:lit: writing the rest of the session to the DB\.\.\.\n)?"


def kill_group(proc: subprocess.Popen) -> None:
    """Stop a `lit record` started with start_new_session=True, and its agent with it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)


# --- 8 sessions, one DB ------------------------------------------------------------------------

# An agent on the real SDK: it waits for the others (so that all 8 loops run at the same time),
# then streams turns and runs the Write calls it is given until the model says it is done.
SDK_AGENT = '''
import os, sys, time
import anthropic

prompt, ready, go = sys.argv[1:4]
open(ready, "w").close()
deadline = time.monotonic() + 300  # HANG
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("agent: no go")
    time.sleep(0.01)
client = anthropic.Anthropic(max_retries=0)
tools = [{"name": "Write", "description": "Write a file",
          "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"},
                                                            "content": {"type": "string"}}}}]
messages = [{"role": "user", "content": prompt}]
calls = 0
while True:
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=1000, tools=tools,
                                messages=messages) as stream:
        reply = stream.get_final_message()
    calls += 1
    messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in reply.content]})
    if reply.stop_reason != "tool_use":
        break
    results = []
    for block in reply.content:
        if block.type == "tool_use":
            with open(block.input["file_path"], "w") as f:
                f.write(block.input["content"])
            results.append({"type": "tool_result", "tool_use_id": block.id,
                            "content": "wrote " + block.input["file_path"]})
    messages.append({"role": "user", "content": results})
print(calls, reply.content[-1].text)
'''

SESSIONS = 8


def files_of(session: int) -> int:
    """Each session writes a different number of files (12 to 19), so that an exchange or a step
    counted in the wrong session shows."""
    return 12 + session


def write_files(body: dict) -> dict:
    """`Session S: write N files`: one Write per turn (with its thinking), then done. Where the
    conversation is is read from the request, so one upstream serves all sessions at once."""
    prompt = re.fullmatch(r"Session (\d+): write (\d+) files", body["messages"][0]["content"])
    session, files = int(prompt[1]), int(prompt[2])
    done = (len(body["messages"]) - 1) // 2  # each turn adds the answer and its tool result
    if done < files:
        k = done + 1
        return tool_message("Write", {"file_path": f"s{session}-{k:02d}.txt",
                                      "content": f"session {session}, file {k}\n"},
                            thinking=f"Session {session} needs file {k}.", tool_id=f"toolu_s{session}f{k:02d}")
    return text_message(f"Session {session}: wrote {files} files.")


@pytest.mark.slow
def test_eight_sessions_write_to_one_db_at_once(tmp_path):
    env = lit_env(tmp_path)  # one LIT_DB for all
    with ScriptedUpstream(write_files) as up:
        procs: list[subprocess.Popen] = []
        try:
            for s in range(SESSIONS):
                repo = init_repo(tmp_path / f"repo{s}")
                (repo / "agent.py").write_text(SDK_AGENT)
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "lit", "record", "--upstream", up.url, "--", sys.executable, "agent.py",
                     f"Session {s}: write {files_of(s)} files", str(tmp_path / f"ready{s}"), str(tmp_path / "go")],
                    cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                    start_new_session=True))
            # All 8 have opened the DB, started their relay and imported the SDK: go at once.
            assert wait_for(lambda: all((tmp_path / f"ready{s}").exists() for s in range(SESSIONS)), timeout=HANG)
            (tmp_path / "go").touch()
            outputs = [p.communicate(timeout=HANG) for p in procs]
        finally:
            for p in procs:
                kill_group(p)

    for s, (p, (out, err)) in enumerate(zip(procs, outputs, strict=True)):
        n = files_of(s)
        assert p.returncode == 0, err
        assert "locked" not in err and "Traceback" not in err, err
        assert out == f"{n + 1} Session {s}: wrote {n} files.\n"
        # n Write turns (thinking, tool call, tool result each) between the prompt and the last words.
        assert re.fullmatch(rf"{WAITED}lit: recorded {n + 1} exchanges, {3 * n + 2} steps in thread [0-9a-f]{{12}}"
                            r" \(not committed yet\)\n", err), err
        assert sorted(f.name for f in (tmp_path / f"repo{s}").glob("s*.txt")) == [
            f"s{s}-{k:02d}.txt" for k in range(1, n + 1)]

    db = store.connect(tmp_path / "lit.db", create=False)
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    sessions = db.execute("SELECT id, repo_root, exit_code, ended_at IS NOT NULL, exchanges_unrecorded, notes"
                          " FROM sessions").fetchall()
    assert len(sessions) == SESSIONS
    by_repo = {Path(root).name: (sid, rest) for sid, root, *rest in sessions}
    assert sorted(by_repo) == sorted(f"repo{s}" for s in range(SESSIONS))
    for s in range(SESSIONS):
        n = files_of(s)
        sid, rest = by_repo[f"repo{s}"]
        assert rest == [0, 1, 0, None]  # exit 0, ended, nothing unrecorded, nothing to say
        exchanges = db.execute("SELECT seq, status, streamed, complete, error, role FROM exchanges"
                               " WHERE session_id = ? ORDER BY seq", [sid]).fetchall()
        assert exchanges == [(i, 200, 1, 1, None, "main") for i in range(1, n + 2)]
        (thread_id,) = [r[0] for r in db.execute("SELECT id FROM threads WHERE session_id = ?", [sid])]
        steps = db.execute("SELECT seq, kind, text, tool_use_id FROM steps WHERE thread_id = ? ORDER BY seq",
                           [thread_id]).fetchall()
        assert [st[0] for st in steps] == list(range(1, 3 * n + 3))  # in order, no gap, no duplicate
        expected = [("prompt", f"Session {s}: write {n} files", None)]
        for k in range(1, n + 1):
            tool_id = f"toolu_s{s}f{k:02d}"
            expected += [("thinking", f"Session {s} needs file {k}.", None), ("tool_call", None, tool_id),
                         ("tool_result", f"wrote s{s}-{k:02d}.txt", tool_id)]
        expected.append(("text", f"Session {s}: wrote {n} files.", None))
        assert [st[1:] for st in steps] == expected
        assert db.execute("SELECT COUNT(*) FROM steps WHERE session_id = ?", [sid]).fetchone()[0] == 3 * n + 2
        # Each Write turn's working tree was captured (git and the DB, 8 repositories at once).
        assert db.execute("SELECT COUNT(*) FROM snapshots WHERE session_id = ? AND reason = 'turn'",
                          [sid]).fetchone()[0] == n


# --- 64 streams, one relay ---------------------------------------------------------------------

STREAMS = 64
TOOLS = [{"name": "Read", "description": "Read a file",
          "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}}}]


def prompt_of(i: int) -> str:
    return f"Prompt {i:02d}: spell out the number {i}"


def answer_to(prompt: str) -> str:
    """An answer long enough to arrive in several text deltas, and only right for its prompt."""
    return f"To '{prompt}': " + " ".join(f"{prompt.split(':')[0].lower()}/{w}" for w in "one two three four".split())


async def stream_all(base_url: str) -> list[str]:
    """64 streams through the relay at once: each waits, after its first event, until all 64 are
    open, so the relay and the recorder really carry them together; then reads to the end."""
    client = anthropic.AsyncAnthropic(base_url=base_url, api_key=FAKE_KEY, max_retries=0)
    all_open = asyncio.Event()
    opened = 0

    async def one(i: int) -> str:
        nonlocal opened
        async with client.messages.stream(model=MODEL, max_tokens=200, tools=TOOLS,
                                          messages=[{"role": "user", "content": prompt_of(i)}]) as stream:
            async for event in stream:
                if event.type == "message_start":
                    opened += 1
                    if opened == STREAMS:
                        all_open.set()
                    await asyncio.wait_for(all_open.wait(), 30)
            final = await stream.get_final_message()
        return final.content[0].text

    try:
        return await asyncio.gather(*(one(i) for i in range(STREAMS)))
    finally:
        await client.close()


def test_sixty_four_concurrent_streams_through_one_relay(tmp_path):
    def answer(body: dict) -> dict:
        return text_message(answer_to(body["messages"][0]["content"]))

    # A short pause between chunks, so that the 64 streams are still running side by side.
    with ScriptedUpstream(answer, chunk_delay=0.005) as up:
        rec = RecorderProcess(tmp_path / "lit.db", argv=["load-test"], cwd=str(tmp_path), upstream=up.url,
                              session_id=store.new_id(), snapshots=False)
        relay = Relay(up.url, rec.spool)  # as `lit record` wires them
        try:
            relay.start()
            answers = asyncio.run(stream_all(relay.url))
        finally:
            relay.stop()
            summary = rec.finish(0)

    assert answers == [answer_to(prompt_of(i)) for i in range(STREAMS)]  # each client got its own
    assert relay.spool_lost == 0 and relay.exchanges == STREAMS
    assert (summary.exchanges, summary.unrecorded, summary.problems) == (STREAMS, 0, [])

    db = store.connect(tmp_path / "lit.db", create=False)
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert db.execute("SELECT exit_code, exchanges_unrecorded FROM sessions").fetchall() == [(0, 0)]
    rows = db.execute("SELECT id, seq, status, streamed, complete, error, response_key FROM exchanges"
                      " ORDER BY seq").fetchall()
    assert [r[1:6] for r in rows] == [(i, 200, 1, 1, None) for i in range(1, STREAMS + 1)]
    recorded = {}
    for exchange_id, *_, response_key in rows:
        prompt, reply = store.message_chain(db, response_key)  # the conversation, as stored
        assert (prompt["role"], reply["role"]) == ("user", "assistant")
        recorded[prompt["content"][0]["text"]] = reply["content"][0]["text"]
        # The steps say the same, each under its own exchange.
        steps = db.execute("SELECT kind, text FROM steps WHERE exchange_id = ? ORDER BY seq", [exchange_id]).fetchall()
        assert steps == [("prompt", prompt["content"][0]["text"]), ("text", reply["content"][0]["text"])]
    assert recorded == {prompt_of(i): answer_to(prompt_of(i)) for i in range(STREAMS)}
    # One thread took all 128 steps from 64 streams at once: numbered in order, none twice.
    assert [r[0] for r in db.execute("SELECT seq FROM steps ORDER BY seq")] == list(range(1, 2 * STREAMS + 1))


# --- 1,000 exchanges, one session --------------------------------------------------------------

# The agent of a long session: 1,000 streamed calls in one conversation, each resending the whole
# history. On the standard library with one kept-alive connection: the SDK's import alone takes
# seconds, and its per-call handling of a 2,000-message history would dominate the test.
LONG_AGENT = '''
import http.client, json, os, sys, urllib.parse

url = urllib.parse.urlsplit(os.environ["ANTHROPIC_BASE_URL"])
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
headers = {"content-type": "application/json", "x-api-key": os.environ["ANTHROPIC_API_KEY"],
           "anthropic-version": "2023-06-01"}
tools = [{"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}]
messages = [{"role": "user", "content": sys.argv[1]}]
calls = 0
while True:
    conn.request("POST", "/v1/messages", json.dumps({"model": "claude-sonnet-4-6", "max_tokens": 100,
                 "stream": True, "tools": tools, "messages": messages}), headers)
    resp = conn.getresponse()
    raw = resp.read()
    calls += 1
    if resp.status != 200:
        sys.exit(f"call {calls}: {resp.status} {raw[:500]!r}")
    blocks, partial, stop = [], {}, None
    for line in raw.decode().splitlines():
        if not line.startswith("data: "):
            continue
        ev = json.loads(line[6:])
        if ev["type"] == "content_block_start":
            blocks.append(ev["content_block"])
        elif ev["type"] == "content_block_delta" and ev["delta"]["type"] == "text_delta":
            blocks[ev["index"]]["text"] += ev["delta"]["text"]
        elif ev["type"] == "content_block_delta" and ev["delta"]["type"] == "input_json_delta":
            partial[ev["index"]] = partial.get(ev["index"], "") + ev["delta"]["partial_json"]
        elif ev["type"] == "content_block_stop" and ev["index"] in partial:
            blocks[ev["index"]]["input"] = json.loads(partial.pop(ev["index"]))
        elif ev["type"] == "message_delta":
            stop = ev["delta"]["stop_reason"]
    messages.append({"role": "assistant", "content": blocks})
    if stop != "tool_use":
        break
    messages.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": b["id"], "content": "ok"}
                                                  for b in blocks if b["type"] == "tool_use"]})
print(calls, blocks[-1]["text"])
'''

CALLS = 1000


def run_commands(body: dict) -> dict:
    """A Bash call per turn until the 1,000th call, which ends the session."""
    n = len(body["messages"]) // 2 + 1  # this call's number: each earlier call added two messages
    if n < CALLS:
        return {"content": [{"type": "tool_use", "id": f"toolu_{n:04d}", "name": "Bash",
                             "input": {"command": f"echo {n}"}}], "stop_reason": "tool_use"}
    return text_message("All done.")


@pytest.mark.slow
def test_a_session_of_a_thousand_exchanges(tmp_path):
    # A plain directory, not a git repository: in one, each of the 999 turns would take a
    # snapshot of the working tree (git processes), which is not what this test is about.
    (tmp_path / "agent.py").write_text(LONG_AGENT)
    with ScriptedUpstream(run_commands) as up:
        # The upstream keeps only the last request: 1,000 parsed requests of up to 2,000 messages
        # each would keep millions of objects alive in this process, and its garbage collector
        # would then take more time than the whole session.
        up.requests = collections.deque(maxlen=1)
        lit = subprocess.Popen([sys.executable, "-m", "lit", "record", "--upstream", up.url, "--",
                                sys.executable, "agent.py", "Run 999 commands"], cwd=tmp_path, env=lit_env(tmp_path),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = lit.communicate(timeout=HANG)
        finally:
            kill_group(lit)
        last = up.requests[-1]["json"]["messages"]

    assert lit.returncode == 0, err
    assert out == f"{CALLS} All done.\n"
    assert len(last) == 2 * CALLS - 1  # the conversation grew to its end
    steps_count = 2 * (CALLS - 1) + 2  # the prompt, a call and its result per turn, the last words
    assert "locked" not in err and "Traceback" not in err, err
    assert re.fullmatch(rf"{WAITED}lit: recorded {CALLS} exchanges, {steps_count} steps in thread [0-9a-f]{{12}}"
                        r" \(not committed yet\); not in a git repository, so commits cannot be linked\n", err), err

    db_path = tmp_path / "lit.db"
    db = store.connect(db_path, create=False)
    assert db.execute("SELECT exit_code, exchanges_unrecorded FROM sessions").fetchall() == [(0, 0)]
    exchanges = db.execute("SELECT seq, status, complete, error, role, conversation_id FROM exchanges"
                           " ORDER BY seq").fetchall()
    assert [e[:5] for e in exchanges] == [(i, 200, 1, None, "main") for i in range(1, CALLS + 1)]
    assert len({e[5] for e in exchanges}) == 1  # one conversation
    (thread_id,) = [r[0] for r in db.execute("SELECT id FROM threads")]
    steps = db.execute("SELECT seq, kind, tool_use_id, text FROM steps WHERE thread_id = ? ORDER BY seq",
                       [thread_id]).fetchall()
    assert [s[0] for s in steps] == list(range(1, steps_count + 1))  # in order, no gap, no duplicate
    expected = [("prompt", None, "Run 999 commands")]
    for n in range(1, CALLS):
        expected += [("tool_call", f"toolu_{n:04d}", None), ("tool_result", f"toolu_{n:04d}", "ok")]
    expected.append(("text", None, "All done."))
    assert [s[1:] for s in steps] == expected
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]

    # The agent sent its whole history on every call: ~115 MB in all. The DB keeps each message
    # once (keyed by its content and its parent's), so it grows with what is new per call: an
    # exchange row, two steps, two small messages, their index and search entries (measured:
    # 2.2 MB, ~2.2 kB an exchange). 4 kB an exchange leaves room, and is still far below what
    # storing each request's history would take (even compressed 10x, over 10 MB).
    sent = db.execute("SELECT SUM(request_bytes) FROM exchanges").fetchone()[0]
    db.close()
    size = sum(p.stat().st_size for p in tmp_path.glob("lit.db*"))
    assert sent > 100_000_000
    assert size < CALLS * 4096, f"{size} bytes of DB for {sent} bytes sent"
