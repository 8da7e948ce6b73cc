"""`lit record` as a user runs it: the real CLI in a subprocess, an agent on the real SDK as its
child, a scripted upstream on 127.0.0.1, and the DB read back afterwards."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FAKE_KEY
from lit_fixtures import init_repo

from lit import store
from lit.record import child_env, resolve_upstream, summary_line
from lit.recorder import Summary
from lit.scripted import ScriptedUpstream, text_message, tool_message, wait_for

AGENT = '''
import json, os, sys
import anthropic

with open("child-env.json", "w") as f:
    json.dump({k: os.environ.get(k) for k in ("ANTHROPIC_BASE_URL", "LIT_SESSION", "LIT_DB")}, f)
client = anthropic.Anthropic(max_retries=0)
tools = [{"name": "Write", "description": "Write a file",
          "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"},
                                                            "content": {"type": "string"}}}}]
title = client.messages.create(model="claude-haiku-4-5", max_tokens=20,
                               messages=[{"role": "user", "content": "Title: " + sys.argv[1]}])
messages = [{"role": "user", "content": sys.argv[1]}]
while True:
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=1000, tools=tools,
                                messages=messages) as stream:
        reply = stream.get_final_message()
    messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in reply.content]})
    if reply.stop_reason != "tool_use":
        break
    results = []
    for block in reply.content:
        if block.type == "tool_use":
            with open(block.input["file_path"], "w") as f:
                f.write(block.input["content"])
            results.append({"type": "tool_result", "tool_use_id": block.id, "content": "written"})
    messages.append({"role": "user", "content": results})
print(reply.content[-1].text)
sys.exit(int(os.environ.get("AGENT_EXIT", "0")))
'''

PROMPT = "Write hello.txt saying hello"


def answer(body: dict) -> dict:
    """Side calls get a title; the main loop writes the file, then says it is done."""
    if not body.get("tools"):
        return text_message("Hello file")
    last = body["messages"][-1]
    if isinstance(last["content"], list) and any(b.get("type") == "tool_result" for b in last["content"]):
        return text_message("Wrote hello.txt.")
    return tool_message("Write", {"file_path": "hello.txt", "content": "hello\n"},
                        thinking="The user wants a file named hello.txt.", tool_id="toolu_01HELLO")


def lit_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_BASE_URL"}
    return {**env, "HOME": str(tmp_path / "home"), "LIT_DB": str(tmp_path / "lit.db"),
            "ANTHROPIC_API_KEY": FAKE_KEY, "GIT_CONFIG_NOSYSTEM": "1", **extra}


def lit_record(args: list[str], *, cwd: Path, env: dict, input: str | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lit", "record", *args], cwd=cwd, env=env, input=input,
                          capture_output=True, text=True, timeout=timeout)


def db_bytes(db_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))


def test_records_an_sdk_agent_step_by_step(tmp_path, repo):
    (repo / "agent.py").write_text(AGENT)
    with ScriptedUpstream(answer) as up:
        proc = lit_record(["--upstream", up.url, "--", sys.executable, "agent.py", PROMPT],
                          cwd=repo, env=lit_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Wrote hello.txt.\n"  # the agent's own output, untouched
    assert (repo / "hello.txt").read_text() == "hello\n"
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and re.fullmatch(
        r"lit: recorded 3 exchanges, 5 steps in thread [0-9a-f]{12} \(not committed yet\)",
        lines[0]), lines

    db = store.connect(tmp_path / "lit.db", create=False)
    (session_id, argv, upstream, port, exit_code, ended_at, repo_root), = db.execute(
        "SELECT id, argv, upstream, port, exit_code, ended_at, repo_root FROM sessions").fetchall()
    assert json.loads(argv) == [sys.executable, "agent.py", PROMPT]
    assert (upstream, exit_code, repo_root) == (up.url, 0, str(repo))
    assert ended_at and port
    seen = json.loads((repo / "child-env.json").read_text())
    assert seen == {"ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}", "LIT_SESSION": session_id,
                    "LIT_DB": str(tmp_path / "lit.db")}

    exchanges = db.execute("SELECT seq, method, path, status, streamed, complete, role, model FROM exchanges"
                           " ORDER BY seq").fetchall()
    assert exchanges == [(1, "POST", "/v1/messages", 200, 0, 1, "side", "claude-haiku-4-5"),
                         (2, "POST", "/v1/messages", 200, 1, 1, "main", "claude-sonnet-4-6"),
                         (3, "POST", "/v1/messages", 200, 1, 1, "main", "claude-sonnet-4-6")]
    steps = db.execute("SELECT s.kind, s.text, s.tool_name, s.tool_input, s.tool_use_id FROM steps s"
                       " JOIN threads t ON t.id = s.thread_id WHERE t.session_id = ? ORDER BY s.seq",
                       [session_id]).fetchall()
    assert [s[0] for s in steps] == ["prompt", "thinking", "tool_call", "tool_result", "text"]
    assert steps[0][1] == PROMPT and steps[1][1] == "The user wants a file named hello.txt."
    assert steps[2][2:] == ("Write", json.dumps({"file_path": "hello.txt", "content": "hello\n"}), "toolu_01HELLO")
    assert steps[3][1] == "written" and steps[3][4] == "toolu_01HELLO"
    assert steps[4][1] == "Wrote hello.txt."
    assert FAKE_KEY.encode() not in db_bytes(tmp_path / "lit.db")


def test_the_exit_code_and_terminal_are_the_childs(tmp_path):
    env = lit_env(tmp_path)
    proc = lit_record(["--", sys.executable, "-c", "import sys; print(input().upper()); sys.exit(7)"],
                      cwd=tmp_path, env=env, input="piped in\n")
    assert (proc.returncode, proc.stdout) == (7, "PIPED IN\n")
    assert proc.stderr.startswith("lit: recorded 0 exchanges, 0 steps (session ")
    killed = lit_record(["--", "sh", "-c", "kill -9 $$"], cwd=tmp_path, env=env)
    assert killed.returncode == 128 + 9
    exit_codes = store.connect(tmp_path / "lit.db").execute("SELECT exit_code FROM sessions ORDER BY started_at")
    assert [r[0] for r in exit_codes] == [7, 137]


def test_a_missing_command_says_so_and_exits_127(tmp_path):
    proc = lit_record(["--", "no-such-agent-xyz", "--help"], cwd=tmp_path, env=lit_env(tmp_path))
    assert proc.returncode == 127
    assert proc.stderr == "lit: no-such-agent-xyz: command not found\n"
    assert not (tmp_path / "lit.db").exists()  # nothing ran, nothing recorded
    proc = lit_record(["--", "./not-here.sh"], cwd=tmp_path, env=lit_env(tmp_path))
    assert (proc.returncode, proc.stderr) == (127, "lit: ./not-here.sh: no such file\n")


def test_a_taken_port_or_a_bad_upstream_is_one_line_before_anything_runs(tmp_path):
    marker = tmp_path / "child-ran"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = lit_record(["--port", str(port), "--", "touch", str(marker)], cwd=tmp_path, env=lit_env(tmp_path))
    assert proc.returncode == 1 and proc.stderr.startswith(f"lit: cannot listen on 127.0.0.1:{port}: ")
    assert proc.stderr.count("\n") == 1
    proc = lit_record(["--upstream", "api.anthropic.com", "--", "touch", str(marker)], cwd=tmp_path,
                      env=lit_env(tmp_path))
    assert (proc.returncode, proc.stderr) == (
        2, "lit: --upstream: upstream must be an http(s) URL, not 'api.anthropic.com'\n")
    assert not marker.exists() and not (tmp_path / "lit.db").exists()


def test_an_unusable_db_stops_lit_before_the_child_starts(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    marker = tmp_path / "child-ran"
    proc = lit_record(["--db", str(blocker / "lit.db"), "--", "touch", str(marker)],
                      cwd=tmp_path, env=lit_env(tmp_path))
    assert proc.returncode == 1 and not marker.exists()
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("lit: cannot open the lit DB at ")
    assert "Traceback" not in proc.stderr


# One call to the relay with the standard library (the SDK's import alone takes seconds).
CALL = """
import os, urllib.error, urllib.request
try:
    answer = urllib.request.urlopen(urllib.request.Request(os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages",
                                    data=b'{"messages": []}', headers={"content-type": "application/json"}))
    print(answer.status, answer.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
"""


def test_the_upstream_defaults_to_the_base_url_lit_was_started_with(tmp_path):
    assert resolve_upstream(None, {}) == "https://api.anthropic.com"
    assert resolve_upstream(None, {"ANTHROPIC_BASE_URL": "http://127.0.0.1:9/"}) == "http://127.0.0.1:9"
    assert resolve_upstream("http://127.0.0.1:8", {"ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}) == "http://127.0.0.1:8"
    with ScriptedUpstream([{"status": 200, "body": b"via the inherited base URL"}]) as up:
        proc = lit_record(["--", sys.executable, "-c", CALL], cwd=tmp_path,
                          env=lit_env(tmp_path, ANTHROPIC_BASE_URL=up.url))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "200 via the inherited base URL\n"
    assert up.requests[0]["headers"]["Host"] == f"127.0.0.1:{up.port}"


def test_an_unreachable_upstream_reaches_the_agent_as_a_502(tmp_path):
    proc = lit_record(["--upstream", "http://127.0.0.1:9", "--", sys.executable, "-c", CALL],
                      cwd=tmp_path, env=lit_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    status, body = proc.stdout.split(" ", 1)
    assert status == "502"
    assert json.loads(body)["error"]["message"].startswith("lit: upstream http://127.0.0.1:9 unreachable: ")
    assert proc.stderr.startswith("lit: recorded 1 exchange, 0 steps")


SLOW_AGENT = '''
import os, signal, sys, time

def stop(signum, frame):
    with open("signal.txt", "w") as f:
        f.write(signal.Signals(signum).name)
    sys.exit(5)

for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, stop)
''' + CALL + '''
open("ready", "w").close()
time.sleep(60)
'''


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_to_lit_reaches_the_child_and_lit_still_finishes(tmp_path, signum):
    (tmp_path / "agent.py").write_text(SLOW_AGENT)
    with ScriptedUpstream([text_message("hi")]) as up:
        # A session of its own, as under a service manager: no terminal that would signal the child too.
        lit = subprocess.Popen([sys.executable, "-m", "lit", "record", "--upstream", up.url, "--",
                                sys.executable, "agent.py"], cwd=tmp_path, env=lit_env(tmp_path),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            assert wait_for(lambda: (tmp_path / "ready").exists(), timeout=30)
            lit.send_signal(signum)
            _, err = lit.communicate(timeout=30)
        finally:
            if lit.poll() is None:
                lit.kill()
    assert (tmp_path / "signal.txt").read_text() == signal.Signals(signum).name
    assert lit.returncode == 5
    assert err.startswith("lit: recorded 1 exchange, 0 steps")
    db = store.connect(tmp_path / "lit.db", create=False)
    assert db.execute("SELECT exit_code, ended_at IS NOT NULL FROM sessions").fetchall() == [(5, 1)]
    assert db.execute("SELECT status, complete FROM exchanges").fetchall() == [(200, 1)]


def test_the_child_environment_is_built_in_one_place():
    env = child_env({"PATH": "/bin", "ANTHROPIC_BASE_URL": "https://api.anthropic.com", "NO_PROXY": ".corp"},
                    relay_url="http://127.0.0.1:5000", session_id="a0b1c2d3e4f5", db_path="/data/lit.db")
    assert env["PATH"] == "/bin"
    assert (env["ANTHROPIC_BASE_URL"], env["LIT_SESSION"], env["LIT_DB"]) == (
        "http://127.0.0.1:5000", "a0b1c2d3e4f5", "/data/lit.db")
    # An agent that honours HTTPS_PROXY must still call the relay directly.
    assert env["NO_PROXY"] == ".corp,127.0.0.1,localhost" and env["no_proxy"] == "127.0.0.1,localhost"
    assert "LIT_SYNC" not in env  # no hooks (not in a repository): nothing asks the session to catch up


def test_the_final_line():
    s = Summary("a0b1c2d3e4f5", exchanges=12, steps=48, threads=[("3f9c0a1b2c4d", "a1b2c3d4e5f6", "bound")],
                repo_root="/home/dev/app")
    assert summary_line(s) == "lit: recorded 12 exchanges, 48 steps in thread 3f9c0a1b2c4d (bound to a1b2c3d)"
    s.threads.append(("8d7e6f5a4b3c", None, "pending"))
    s.unrecorded, s.problems = 2, ["response: OperationalError: database is locked"]
    assert summary_line(s) == (
        "lit: recorded 12 exchanges, 48 steps in threads 3f9c0a1b2c4d (bound to a1b2c3d), 8d7e6f5a4b3c "
        "(not committed yet); 2 not recorded (response: OperationalError: database is locked)")
    assert summary_line(Summary("a0b1c2d3e4f5", exchanges=1)) == (
        "lit: recorded 1 exchange, 0 steps (session a0b1c2d3e4f5); not in a git repository, so commits cannot be"
        " linked")


def test_help_has_an_example(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lit", "record", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "lit record -- claude" in proc.stdout


COUNTING_AGENT = '''
import signal
# Blocked and taken with sigtimedwait: each SIGINT is seen as it arrives, with who sent it.
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
open("ready", "w").close()
senders = []
info = signal.sigtimedwait({signal.SIGINT}, 20)
while info:
    senders.append("terminal" if info.si_code == 0x80 else f"pid {info.si_pid}")
    info = signal.sigtimedwait({signal.SIGINT}, 1)  # a second one, if lit sent it too
open("interrupts", "w").write(" ".join(senders))
'''


def test_ctrl_c_at_the_terminal_reaches_the_child_once(tmp_path):
    """An interactive agent reads a second Ctrl-C as "quit": lit must not double the terminal's."""
    import fcntl
    import pty
    import termios

    (tmp_path / "agent.py").write_text(COUNTING_AGENT)
    master, slave = pty.openpty()

    def take_the_terminal() -> None:  # in lit's process, after setsid: the pty becomes its terminal
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    lit = subprocess.Popen([sys.executable, "-m", "lit", "record", "--", sys.executable, "agent.py"],
                           cwd=tmp_path, env=lit_env(tmp_path), stdin=slave, stdout=slave, stderr=slave,
                           start_new_session=True, preexec_fn=take_the_terminal)
    os.close(slave)
    try:
        assert wait_for(lambda: (tmp_path / "ready").exists(), timeout=30)
        os.write(master, b"\x03")  # Ctrl-C, as typed
        assert lit.wait(30) == 0
    finally:
        if lit.poll() is None:
            lit.kill()
        os.close(master)
    assert (tmp_path / "interrupts").read_text() == "terminal"


def test_an_upstream_url_with_credentials_is_never_stored_or_shown(tmp_path):
    proc = lit_record(["--upstream", "http://gateway-user:hunter2-secret@127.0.0.1:9", "--", sys.executable, "-c",
                       CALL], cwd=tmp_path, env=lit_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("502 ") and "http://***@127.0.0.1:9 unreachable" in proc.stdout
    assert "hunter2" not in proc.stdout + proc.stderr
    db = store.connect(tmp_path / "lit.db", create=False)
    assert db.execute("SELECT upstream FROM sessions").fetchone()[0] == "http://***@127.0.0.1:9"
    assert b"hunter2" not in db_bytes(tmp_path / "lit.db") and b"gateway-user" not in db_bytes(tmp_path / "lit.db")


def test_what_a_killed_lit_left_behind_is_cleaned_at_the_next_start(tmp_path):
    repo = init_repo(tmp_path / "repo")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer runs: the lit that was killed
    for name, pid in (("lit-hooks-killed", gone.pid), ("lit-hooks-running", os.getpid())):
        (tmp / name).mkdir()
        (tmp / name / ".lit-pid").write_text(str(pid))
    (repo / ".git" / "lit").mkdir()
    left = repo / ".git" / "lit" / "index-0123456789ab"  # a session not in the DB, untouched for a day
    left.write_bytes(b"DIRC")
    os.utime(left, (time.time() - 86400, time.time() - 86400))
    for name in ("excludes-0123456789ab", "lock-0123456789ab"):  # the same session's, removed with it
        (repo / ".git" / "lit" / name).write_bytes(b"")
    (repo / ".git" / "lit" / "index-0123456789ab.lock").write_bytes(b"")  # git's lock is never lit's to remove
    proc = lit_record(["--", "true"], cwd=repo, env=lit_env(tmp_path, TMPDIR=str(tmp)))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp.iterdir()) == ["lit-hooks-running"]
    assert [p.name for p in (repo / ".git" / "lit").iterdir() if "0123456789ab" in p.name] == [
        "index-0123456789ab.lock"]
