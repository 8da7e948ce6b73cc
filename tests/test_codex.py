"""The real Codex CLI under `lit record`, offline: lit points it at the relay with no flag of the
user's, a scripted Responses API on 127.0.0.1 has it write a file with apply_patch (a freeform tool:
custom_tool_call) and commit through its shell tool, and the DB, the trailer, the note and
`lit blame` cite the apply_patch call and the reasoning before it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from real_clients import FAKE_OPENAI_KEY, codex_cli, codex_config, git_repo, offline_env  # noqa: F401

from lit import store
from lit.git import notes
from lit.scripted import ScriptedUpstream, text_message, tool_message

PROMPT = "Add hello.py with a hello function, then commit it."
CONTENT = 'def hello():\n    return "hi"\n'
PATCH = "*** Begin Patch\n*** Add File: hello.py\n" + "".join("+" + ln + "\n" for ln in CONTENT.splitlines()) \
    + "*** End Patch\n"
WHY = "A hello function in its own module; apply_patch adds the file."
COMMIT = "git add hello.py && git commit -q -m 'Add hello'"
DONE = "Added hello.py and committed it."
MODEL = "gpt-5.5"  # in Codex's catalog with the classic tools: apply_patch (freeform) and exec_command


def tool_outputs(body: dict) -> list[dict]:
    return [i for i in body.get("input") or [] if isinstance(i, dict)
            and i.get("type") in ("function_call_output", "custom_tool_call_output")]


def scripted_codex_model(body: dict) -> dict:
    """Write the file with apply_patch, then commit through exec_command, then say so."""
    done = len(tool_outputs(body))
    if done == 0:
        return tool_message("apply_patch", PATCH, thinking=WHY, tool_id="call_PATCH01")  # text input: freeform
    if done == 1:
        return tool_message("exec_command", {"cmd": COMMIT}, thinking="The file is there; commit it.",
                            tool_id="call_COMMIT02")
    return text_message(DONE)


def record_codex(codex: Path, tmp_path: Path, upstream: ScriptedUpstream) -> subprocess.CompletedProcess:
    repo = git_repo(tmp_path / "repo")
    env = offline_env(tmp_path)
    codex_config(Path(env["HOME"]))
    return subprocess.run(
        [sys.executable, "-m", "lit", "record", "--openai-upstream", upstream.url + "/v1", "--", str(codex),
         "exec", "-m", MODEL, "--dangerously-bypass-approvals-and-sandbox", PROMPT],
        cwd=repo, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)


def test_lit_records_codex_writing_with_apply_patch_and_committing(tmp_path, codex_cli):  # noqa: F811
    with ScriptedUpstream(scripted_codex_model, websocket=False) as up:
        proc = record_codex(codex_cli, tmp_path, up)
    repo, db_path = tmp_path / "repo", tmp_path / "lit.db"
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert DONE in proc.stdout
    assert (repo / "hello.py").read_text() == CONTENT
    # No flag of ours: lit pointed Codex at its relay, which went on to the upstream under /v1.
    turns = [r for r in up.requests if r["method"] == "POST"]
    assert len(turns) == 3 and {r["path"] for r in turns} == {"/v1/responses"}

    db = store.connect(db_path, create=False)
    steps = db.execute("SELECT id, kind, text, tool_name, tool_input, tool_use_id FROM steps"
                       " ORDER BY created_at").fetchall()
    kinds = [s[1] for s in steps]
    # Codex's <environment_context> is context it adds, not the prompt; the prompt is what was typed.
    assert kinds[0] == "context" and steps[0][2].lstrip().startswith("<environment_context>")
    prompts = [s for s in steps if s[1] == "prompt"]
    assert [p[2] for p in prompts] == [PROMPT]
    assert kinds[kinds.index("prompt"):] == ["prompt", "thinking", "tool_call", "tool_result", "thinking",
                                            "tool_call", "tool_result", "text"]
    patch_step = next(s for s in steps if s[3] == "apply_patch")
    assert json.loads(patch_step[4]) == PATCH and patch_step[5] == "call_PATCH01"
    assert next(s for s in steps if s[1] == "tool_result" and s[5] == "call_PATCH01")
    stops = [r[0] for r in db.execute("SELECT stop_reason FROM exchanges WHERE role = 'main' AND status = 200"
                                      " ORDER BY seq")]
    assert stops == ["tool_use", "tool_use", "end_turn"]
    (agent,), = db.execute("SELECT agent FROM sessions").fetchall()
    assert agent.startswith("codex_exec/0.169.")
    thread_id = prompts[0][0].rsplit(".", 1)[0]
    assert db["threads"].get(thread_id)["title"] == PROMPT
    # Its last words came after the commit: the thread that follows holds them.
    assert steps[-1][0].rsplit(".", 1)[0] != thread_id

    # The commit is bound; the note and blame give hello.py to the apply_patch call and its reasoning.
    message = subprocess.run(["git", "log", "-1", "--format=%B"], cwd=repo, capture_output=True, text=True).stdout
    assert message.startswith("Add hello") and f"Lit-Thread: {thread_id}" in message
    note = notes.read(repo, "HEAD")
    assert note["files"] == {"hello.py": [[1, 2, patch_step[0]]]}
    assert note["steps"][patch_step[0]]["why"] == WHY
    blame = subprocess.run([sys.executable, "-m", "lit", "blame", "hello.py", "--json"], cwd=repo,
                           env=offline_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert blame.returncode == 0, blame.stderr
    lines = json.loads(blame.stdout)
    assert [(ln["step"], ln["why"]) for ln in lines] == [(patch_step[0], WHY)] * 2
    assert FAKE_OPENAI_KEY.encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("lit.db*"))
