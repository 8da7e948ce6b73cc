"""`lit import codex` on a rollout shaped like the ones Codex CLI 0.169 writes
(~/.codex/sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl, as openai/codex's
protocol writes them): its commit found in a real repository, the line map from its apply_patch,
its reasoning kept as it came (summary readable, reasoning encrypted), imported once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lit_fixtures import init_repo, lit_in_process
from real_clients import codex_cli, offline_env  # noqa: F401
from test_codex import PATCH as CODEX_PATCH
from test_codex import PROMPT as CODEX_PROMPT
from test_codex import record_codex, scripted_codex_model

from lit import store
from lit.git import notes
from lit.scripted import ScriptedUpstream

SESSION = "019ac8e2-5b1f-7d30-9a4e-3c2b1a0f9e8d"
PROMPT = "Add hello.py with a hello() function, then commit it."
ENV_CONTEXT = ("<environment_context>\n  <cwd>{cwd}</cwd>\n  <approval_policy>never</approval_policy>\n"
               "  <sandbox_mode>danger-full-access</sandbox_mode>\n  <shell>bash</shell>\n</environment_context>")
SUMMARY = "**Writing the module first**\n\nOne function, then a commit of just that file."
ENCRYPTED = "gAAAAABpLk" + "Qz9xV3nR2mT8" * 20
PATCH = ("*** Begin Patch\n*** Add File: hello.py\n+def hello():\n+    return \"hi\"\n*** End Patch\n")
COMMIT = "git add hello.py && git commit -q -m 'Add hello'"


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class RolloutWriter:
    """Lines as Codex's RolloutRecorder writes them: {timestamp, ordinal, type, payload}."""

    def __init__(self, path: Path) -> None:
        self.path, self.ordinal = path, 0

    def write(self, t: float, kind: str, payload: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps({"timestamp": iso(t), "ordinal": self.ordinal, "type": kind, "payload": payload}) + "\n")
        self.ordinal += 1

    def item(self, t: float, payload: dict) -> None:
        self.write(t, "response_item", payload)

    def tokens(self, t: float, inp: int, cached: int, out: int) -> None:
        usage = {"input_tokens": inp, "cached_input_tokens": cached, "output_tokens": out,
                 "reasoning_output_tokens": 12, "total_tokens": inp + out}
        self.write(t, "event_msg", {"type": "token_count", "info": {
            "total_token_usage": usage, "last_token_usage": usage, "model_context_window": 258400}})


def codex_session(repo: Path, home: Path) -> tuple[Path, str]:
    """A `codex exec` run that adds hello.py with apply_patch and commits it through exec_command:
    the file and the commit are made for real, the rollout written around them. Returns the
    rollout and the commit."""
    t0 = datetime.now(UTC).timestamp() - 120
    day = datetime.fromtimestamp(t0, UTC)
    folder = home / ".codex" / "sessions" / day.strftime("%Y/%m/%d")
    folder.mkdir(parents=True)
    rollout = RolloutWriter(folder / f"rollout-{day.strftime('%Y-%m-%dT%H-%M-%S')}-{SESSION}.jsonl")
    rollout.write(t0, "session_meta", {
        "session_id": SESSION, "id": SESSION, "timestamp": iso(t0), "cwd": str(repo), "originator": "codex_exec",
        "cli_version": "0.169.0", "source": "exec", "model_provider": "openai",
        "base_instructions": {"text": "You are Codex, a coding agent."}, "git": {"branch": "main"}})
    rollout.write(t0, "event_msg", {"type": "task_started", "turn_id": "t1"})
    rollout.write(t0, "turn_context", {"turn_id": "t1", "cwd": str(repo), "model": "gpt-5.5",
                                       "approval_policy": "never", "sandbox_policy": {"type": "danger-full-access"}})
    rollout.item(t0, {"type": "message", "role": "developer", "content": [
        {"type": "input_text", "text": "<skills_instructions>\nNo skills.\n</skills_instructions>"}]})
    rollout.item(t0, {"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": ENV_CONTEXT.format(cwd=repo)}]})
    rollout.item(t0, {"type": "message", "role": "user", "content": [{"type": "input_text", "text": PROMPT}]})
    rollout.item(t0 + 2, {"type": "reasoning", "id": "rs_01", "summary": [{"type": "summary_text", "text": SUMMARY}],
                          "content": None, "encrypted_content": ENCRYPTED})
    rollout.item(t0 + 2, {"type": "custom_tool_call", "id": "ctc_01", "status": "completed", "call_id": "call_PATCH01",
                          "name": "apply_patch", "input": PATCH})
    rollout.tokens(t0 + 2, 9120, 4096, 210)
    (repo / "hello.py").write_text('def hello():\n    return "hi"\n')
    done = "Exit code: 0\nWall time: 0 seconds\nOutput:\nSuccess. Updated the following files:\nA hello.py\n"
    rollout.item(t0 + 3, {"type": "custom_tool_call_output", "call_id": "call_PATCH01", "output": done})
    rollout.item(t0 + 5, {"type": "function_call", "id": "fc_02", "name": "exec_command",
                          "arguments": json.dumps({"cmd": COMMIT}), "call_id": "call_COMMIT02"})
    rollout.tokens(t0 + 5, 9480, 9088, 64)
    env = {**os.environ, "GIT_AUTHOR_DATE": f"{int(t0) + 6} +0000", "GIT_COMMITTER_DATE": f"{int(t0) + 6} +0000"}
    subprocess.run(["sh", "-c", COMMIT], cwd=repo, env=env, check=True)
    rollout.item(t0 + 7, {"type": "function_call_output", "call_id": "call_COMMIT02",
                          "output": "Chunk ID: 8a055b\nWall time: 0.2 seconds\nProcess exited with code 0\nOutput:\n"})
    rollout.item(t0 + 9, {"type": "message", "role": "assistant", "status": "completed", "content": [
        {"type": "output_text", "text": "Added hello.py and committed it.", "annotations": []}]})
    rollout.tokens(t0 + 9, 9700, 9472, 18)
    rollout.write(t0 + 9, "event_msg", {"type": "task_complete", "turn_id": "t1"})
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    return rollout.path, sha


def lit(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return lit_in_process(list(args), cwd)


def test_a_codex_session_becomes_a_bound_thread_with_its_patch_in_the_line_map(tmp_path, _isolated):
    repo = init_repo(tmp_path / "repo", {"README.md": "# app\n"})
    path, sha = codex_session(repo, _isolated)
    proc = lit(repo, "import", "codex")
    assert proc.returncode == 0, proc.stderr
    db = store.connect(os.environ["LIT_DB"])
    # One thread, one commit; the answer after the commit opens the next thread.
    thread, after = list(db.query("SELECT * FROM threads ORDER BY seq"))
    assert proc.stdout == (f"lit import: linking commits in {repo}\n"
                           f"lit import: codex session {SESSION} -> session {thread['session_id']}: 2 threads, "
                           f"9 steps, 3 exchanges; thread {thread['id']} -> commit {sha[:7]}\n")
    assert (thread["status"], thread["commit_sha"], thread["title"]) == ("bound", sha, PROMPT)
    assert after["status"] == "pending" and [s["kind"] for s in store.thread_steps(db, after["id"])] == ["text"]
    session = db["sessions"].get(thread["session_id"])
    assert session["agent"] == "codex-import/0.169.0" and session["repo_root"] == str(repo)
    assert session["notes"] == f"imported from Codex session {SESSION} ({path.name}), on branch main"
    steps = store.thread_steps(db, thread["id"])
    assert [(s["kind"], s["tool_name"]) for s in steps] == [
        ("context", None), ("context", None), ("prompt", None), ("thinking", None), ("tool_call", "apply_patch"),
        ("tool_result", None), ("tool_call", "exec_command"), ("tool_result", None)]
    assert steps[2]["text"] == PROMPT and steps[1]["text"].startswith("<environment_context>")
    # The summary is the thinking; the reasoning stays encrypted, as Codex sent it back.
    thinking, patch = steps[3], steps[4]
    assert thinking["text"] == SUMMARY and json.loads(thinking["raw"])["signature"] == ENCRYPTED
    assert json.loads(patch["tool_input"]) == PATCH and patch["model"] == "gpt-5.5"
    assert json.loads(steps[6]["tool_input"]) == {"cmd": COMMIT}
    exchanges = list(db.query("SELECT protocol, path, model, stop_reason, input_tokens, cache_read_input_tokens,"
                              " output_tokens FROM exchanges ORDER BY seq"))
    assert exchanges == [
        {"protocol": "openai-responses", "path": "/v1/responses", "model": "gpt-5.5", "stop_reason": "tool_use",
         "input_tokens": 9120, "cache_read_input_tokens": 4096, "output_tokens": 210},
        {"protocol": "openai-responses", "path": "/v1/responses", "model": "gpt-5.5", "stop_reason": "tool_use",
         "input_tokens": 9480, "cache_read_input_tokens": 9088, "output_tokens": 64},
        {"protocol": "openai-responses", "path": "/v1/responses", "model": "gpt-5.5", "stop_reason": "end_turn",
         "input_tokens": 9700, "cache_read_input_tokens": 9472, "output_tokens": 18}]
    # Every line of hello.py is the patch's, in the DB, in the note and in lit blame.
    assert [tuple(r) for r in db.execute("SELECT path, line_start, line_end, step_id FROM line_map")] == [
        ("hello.py", 1, 2, patch["id"])]
    assert notes.read(repo, sha).to_json()["files"] == {"hello.py": [[1, 2, patch["id"]]]}
    blamed = json.loads(lit(repo, "blame", "hello.py", "--json").stdout)
    assert [(b["step"], b["tool"]) for b in blamed] == [(patch["id"], "apply_patch")] * 2
    assert "Writing the module first" in blamed[0]["why"]

    again = lit(repo, "import", "codex")
    assert again.returncode == 0
    assert again.stdout.endswith(f"codex session {SESSION}: already imported, nothing added\n")
    assert db["steps"].count == 9 and db["exchanges"].count == 3


def test_a_resumed_session_adds_only_its_new_turn(tmp_path, _isolated):
    repo = init_repo(tmp_path / "repo", {"README.md": "# app\n"})
    path, sha = codex_session(repo, _isolated)
    assert lit(repo, "import", "codex").returncode == 0
    # `codex resume`: the same rollout grows by a turn that updates the file, left uncommitted.
    rollout = RolloutWriter(path)
    rollout.ordinal = 100
    t = datetime.now(UTC).timestamp() - 30
    ask = {"type": "input_text", "text": "Say hello loudly."}
    rollout.item(t, {"type": "message", "role": "user", "content": [ask]})
    rollout.item(t + 1, {"type": "reasoning", "id": "rs_03", "summary": [], "encrypted_content": ENCRYPTED[::-1]})
    rollout.item(t + 1, {"type": "custom_tool_call", "call_id": "call_PATCH03", "name": "apply_patch", "input":
                         "*** Begin Patch\n*** Update File: hello.py\n@@\n-    return \"hi\"\n+    return \"HI\"\n"
                         "*** End Patch\n"})
    (repo / "hello.py").write_text('def hello():\n    return "HI"\n')
    rollout.item(t + 2, {"type": "custom_tool_call_output", "call_id": "call_PATCH03", "output": "Exit code: 0\n"})
    proc = lit(repo, "import", "codex", "--json")
    assert proc.returncode == 0, proc.stderr
    [result] = json.loads(proc.stdout)
    # The new steps continue the thread the last answer left pending.
    assert result["steps"] == 4 and [(t["status"], t["steps"]) for t in result["threads"]] == [("pending", 4)]
    db = store.connect(os.environ["LIT_DB"])
    thinking = db.execute("SELECT text, raw FROM steps WHERE kind = 'thinking' ORDER BY created_at DESC").fetchone()
    assert thinking[0] == "" and json.loads(thinking[1])["signature"] == ENCRYPTED[::-1]  # no summary: kept encrypted
    # A person commits the patched line: the thread left pending binds to that commit.
    subprocess.run(["git", "commit", "-qam", "Loud"], cwd=repo, check=True)
    proc = lit(repo, "import", "codex")
    assert proc.returncode == 0 and "-> commit " in proc.stdout, proc.stdout + proc.stderr
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    patch3 = db.execute("SELECT id FROM steps WHERE tool_use_id = 'call_PATCH03' AND kind = 'tool_call'").fetchone()[0]
    assert notes.read(repo, head).to_json()["files"] == {"hello.py": [[2, 2, patch3]]}


def test_hostile_logs_are_skipped_with_a_word_and_nothing_hangs(tmp_path, _isolated):
    repo = init_repo(tmp_path / "repo", {"README.md": "# app\n"})
    path, _ = codex_session(repo, _isolated)
    with open(path, "a") as f:
        f.write("[" * 100_000 + "]" * 100_000 + "\n")  # deeper than Python parses
        f.write('{"timestamp": "x", "type": "response_item", "payload": {"type": "message", "content": 5}}\n')
    os.mkfifo(path.parent / f"rollout-2026-11-30T10-00-00-{SESSION[:-1]}f.jsonl")
    proc = lit(repo, "import", "codex")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == f"lit import: warning: {path}:17: not a JSON line, skipped\n"
    assert "2 threads, 9 steps" in proc.stdout
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    proc = lit(repo, "import", "codex", str(fifo))
    assert proc.returncode == 1 and proc.stderr == (f"lit: {fifo} is not a regular file: pass a session log (.jsonl) "
                                                    "or a folder of them\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = lit(elsewhere, "import", "codex")
    assert proc.returncode == 1 and proc.stderr.startswith(f"lit: no Codex sessions for {elsewhere} under ")


def test_outside_a_repository_the_session_is_imported_unbound(tmp_path, _isolated):
    repo = init_repo(tmp_path / "repo", {"README.md": "# app\n"})
    path, _ = codex_session(repo, _isolated)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = lit(elsewhere, "import", "codex", str(path.parent))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == ("lit import: not in a git repository: sessions are imported without "
                                           "commits (--repo PATH)")
    assert "1 thread, 9 steps" in proc.stdout and "-> commit" not in proc.stdout
    assert subprocess.run(["git", "notes", "--ref=lit", "list"], cwd=repo, capture_output=True,
                          text=True).stdout == ""


@pytest.mark.slow
def test_a_real_codex_rollout_is_imported(tmp_path, codex_cli):  # noqa: F811
    """The real Codex CLI (0.169, offline against a scripted Responses API) writes its rollout under
    `lit record`; imported into another DB, the rollout alone gives the same thread: the commit,
    the apply_patch call and its line map."""
    with ScriptedUpstream(scripted_codex_model, websocket=False) as up:
        proc = record_codex(codex_cli, tmp_path, up)
    assert proc.returncode == 0, proc.stderr[-3000:]
    repo = tmp_path / "repo"
    env = {**offline_env(tmp_path), "LIT_DB": str(tmp_path / "imported.db")}
    [rollout] = (Path(env["CODEX_HOME"]) / "sessions").rglob("rollout-*.jsonl")
    imported = subprocess.run([sys.executable, "-m", "lit", "import", "codex"], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=60)
    assert imported.returncode == 0, imported.stderr
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    codex_session = "-".join(rollout.stem.split("-")[-5:])
    assert f"lit import: codex session {codex_session} -> session " in imported.stdout
    assert f"-> commit {head[:7]}" in imported.stdout
    db = store.connect(tmp_path / "imported.db")
    (thread,) = db.execute("SELECT id FROM threads WHERE commit_sha = ?", [head]).fetchone()
    steps = store.thread_steps(db, thread)
    kinds = [s["kind"] for s in steps]
    assert kinds[0] == "context" and [s["text"] for s in steps if s["kind"] == "prompt"] == [CODEX_PROMPT]
    patch = next(s for s in steps if s["tool_name"] == "apply_patch")
    assert json.loads(patch["tool_input"]) == CODEX_PATCH
    assert [(s["kind"], s["tool_name"]) for s in steps[kinds.index("prompt"):]] == [
        ("prompt", None), ("thinking", None), ("tool_call", "apply_patch"), ("tool_result", None),
        ("thinking", None), ("tool_call", "exec_command"), ("tool_result", None)]
    assert [tuple(r) for r in db.execute("SELECT path, line_start, line_end, step_id FROM line_map")] == [
        ("hello.py", 1, 2, patch["id"])]
    # The note lit record wrote is replaced by the import's, which cites the same lines.
    assert notes.read(repo, head).to_json()["files"] == {"hello.py": [[1, 2, patch["id"]]]}


def test_a_commit_line_git_printed_names_the_sessions_commit(tmp_path):
    """Without -q, git prints `[main 1a2b3c4] subject`: that commit is the session's (found by its
    SHA, and never taken for a person's commit by another session's import)."""
    from lit.importers import codex

    writer = RolloutWriter(tmp_path / f"rollout-2026-11-30T10-00-00-{SESSION}.jsonl")
    writer.write(1.0, "session_meta", {"id": SESSION, "cwd": str(tmp_path), "cli_version": "0.169.0"})
    writer.item(2.0, {"type": "function_call", "name": "exec_command", "call_id": "call_1",
                      "arguments": json.dumps({"cmd": "git commit -am 'Add hello'"})})
    writer.item(3.0, {"type": "function_call_output", "call_id": "call_1", "output":
                      "Process exited with code 0\nOutput:\n[main 1a2b3c4] Add hello\n 1 file changed\n"})
    writer.item(4.0, {"type": "function_call", "name": "exec_command", "call_id": "call_2",
                      "arguments": json.dumps({"cmd": "echo '[main 9f9f9f9] not a commit'"})})
    writer.item(5.0, {"type": "function_call_output", "call_id": "call_2", "output": "[main 9f9f9f9] not a commit\n"})
    source = codex.source(codex.load_rollout(writer.path), None)
    assert codex.printed_shas(source.steps) == {"1a2b3c4"}  # an echo of such a line is no commit
