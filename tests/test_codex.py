"""The real Codex CLI under `lit record`, offline: lit points it at the relay with no flag of the
user's, a scripted Responses API on 127.0.0.1 has it write a file with apply_patch (a freeform tool:
custom_tool_call) and commit through its shell tool, and the DB, the trailer, the note and
`lit blame` cite the apply_patch call and the reasoning before it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from lit_fixtures import init_repo
from real_clients import FAKE_OPENAI_KEY, codex_cli, codex_config, offline_env  # noqa: F401

from lit import store
from lit.git import notes
from lit.proxy import openai
from lit.proxy.exchange import Exchange
from lit.recorder import Recorder
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
    repo = init_repo(tmp_path / "repo")
    env = offline_env(tmp_path)
    codex_config(Path(env["HOME"]))
    return subprocess.run(
        [sys.executable, "-m", "lit", "record", "--openai-upstream", upstream.url + "/v1", "--", str(codex),
         "exec", "-m", MODEL, "--dangerously-bypass-approvals-and-sandbox", PROMPT],
        cwd=repo, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["websocket", "http"])
def test_lit_records_codex_writing_with_apply_patch_and_committing(tmp_path, codex_cli, transport):  # noqa: F811
    """Codex keeps its preferred transport under lit (a WebSocket through the relay); with an upstream
    that refuses the upgrade it falls back to HTTP with SSE. Either way the same thread is recorded."""
    with ScriptedUpstream(scripted_codex_model, websocket=transport == "websocket") as up:
        proc = record_codex(codex_cli, tmp_path, up)
    repo, db_path = tmp_path / "repo", tmp_path / "lit.db"
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert DONE in proc.stdout
    assert (repo / "hello.py").read_text() == CONTENT
    # No flag of ours: lit pointed Codex at its relay, which went on to the upstream under /v1.
    turns = [r for r in up.requests if r["method"] == "POST"]
    assert {r["path"] for r in turns} == {"/v1/responses"}
    if transport == "websocket":  # a warm-up, then one response.create per turn, all on one connection
        assert len(turns) == 4 and all(r["websocket"] for r in turns) and len(up.websocket_frames) == 1
    else:
        assert len(turns) == 3 and not any(r.get("websocket") for r in turns)

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
                                      " ORDER BY started_at")]
    assert stops == ["end_turn"] * (transport == "websocket") + ["tool_use", "tool_use", "end_turn"]
    (agent,), = db.execute("SELECT agent FROM sessions").fetchall()
    assert agent.startswith("codex_exec/0.169.")
    thread_id = prompts[0][0].rsplit(".", 1)[0]
    assert db["threads"].get(thread_id)["title"] == PROMPT

    # The commit is bound; the note and blame give hello.py to the apply_patch call and its reasoning.
    message = subprocess.run(["git", "log", "-1", "--format=%B"], cwd=repo, capture_output=True, text=True).stdout
    assert message.startswith("Add hello") and f"Lit-Thread: {thread_id}" in message
    note = notes.read(repo, "HEAD").to_json()
    assert note["files"] == {"hello.py": [[1, 2, patch_step[0]]]}
    assert note["steps"][patch_step[0]]["why"] == WHY
    blame = subprocess.run([sys.executable, "-m", "lit", "blame", "hello.py", "--json"], cwd=repo,
                           env=offline_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert blame.returncode == 0, blame.stderr
    lines = json.loads(blame.stdout)
    assert [(ln["step"], ln["why"]) for ln in lines] == [(patch_step[0], WHY)] * 2
    assert FAKE_OPENAI_KEY.encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("lit.db*"))


def test_codex_over_a_websocket_gives_one_exchange_per_response_create(tmp_path, codex_cli):  # noqa: F811
    """Codex's preferred transport, straight to the upstream: a warm-up `response.create` (generate
    false), then one per turn, each sending only what is new after its previous_response_id. The
    frames it exchanged, cut into exchanges and handed to the recorder, give the same thread as
    the HTTP transport."""
    repo = init_repo(tmp_path / "repo")
    env = offline_env(tmp_path)
    codex_config(Path(env["HOME"]))
    with ScriptedUpstream(scripted_codex_model) as up:
        proc = subprocess.run([str(codex_cli), "-c", f'openai_base_url="{up.url}/v1"', "exec", "-m", MODEL,
                               "--dangerously-bypass-approvals-and-sandbox", PROMPT],
                              cwd=repo, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert DONE in proc.stdout and (repo / "hello.py").read_text() == CONTENT
    assert [r["method"] for r in up.requests] == ["POST"] * 4 and all(r["websocket"] for r in up.requests)
    assert len(up.websocket_frames) == 1  # one connection for the whole session
    sent = [json.loads(text) for from_client, text in up.websocket_frames[0] if from_client]
    assert [f.get("generate") for f in sent] == [False, None, None, None]
    assert [bool(f.get("previous_response_id")) for f in sent] == [False, True, True, True]

    exchanges = list(openai.websocket_exchanges(up.websocket_frames[0]))
    assert [complete for _, _, complete in exchanges] == [True] * 4

    # The recorder gets the connection's bytes as the relay copies them: frames masked from the
    # client, compressed (permessage-deflate), in pieces that cut frames anywhere.
    rec = Recorder(tmp_path / "lit.db", argv=[str(codex_cli), "exec", PROMPT], cwd=str(repo), snapshots=False)
    upgrade = Exchange(id=f"{rec.session_id}.1", session_id=rec.session_id, seq=1, method="GET",
                       path="/openai/responses", query="", request_headers=up.requests[0]["headers"],
                       request_body=b"", started_at=time.time(), status=101,
                       response_headers={"Upgrade": "websocket", "Sec-WebSocket-Extensions":
                                         "permessage-deflate; client_max_window_bits=15"})
    rec.request(upgrade)
    deflaters = {True: zlib.compressobj(wbits=-15), False: zlib.compressobj(wbits=-15)}
    for from_client, text in up.websocket_frames[0]:
        data = deflaters[from_client].compress(text.encode()) + deflaters[from_client].flush(zlib.Z_SYNC_FLUSH)
        wire = ws_frames(data[:-4], masked=from_client, compressed=True, fragment=300)
        for i in range(0, len(wire), 777):
            rec.websocket(upgrade, "c" if from_client else "s", time.time(), wire[i:i + 777])
    upgrade.complete = True
    rec.response(upgrade)
    summary = rec.finish(0)
    assert summary.unrecorded == 0 and summary.exchanges == 5  # the upgrade and the four calls over it

    db = store.connect(tmp_path / "lit.db", create=False)
    steps = db.execute("SELECT kind, text, tool_name FROM steps ORDER BY created_at").fetchall()
    assert [s[0] for s in steps] == ["context", "prompt", "thinking", "tool_call", "tool_result", "thinking",
                                     "tool_call", "tool_result", "text"]
    assert steps[1][1] == PROMPT and [s[2] for s in steps if s[0] == "tool_call"] == ["apply_patch", "exec_command"]
    rows = db.execute("SELECT conversation_id, role, stop_reason, message_key FROM exchanges WHERE method = 'POST'"
                      " ORDER BY started_at").fetchall()
    assert len({r[0] for r in rows}) == 1 and {r[1] for r in rows} == {"main"}
    assert [r[2] for r in rows] == ["end_turn", "tool_use", "tool_use", "end_turn"]
    # Each request named only what was new, yet the stored conversation is whole.
    chain = store.message_chain(db, rows[-1][3])
    assert [m["role"] for m in chain][-4:] == ["assistant", "user", "assistant", "user"]
    assert any(b.get("type") == "custom_tool_use" and b.get("input") == PATCH
               for m in chain for b in m["content"])
    # The encrypted reasoning is the model's own bytes, kept as they came (a resumed call sends them back).
    answered = [json.loads(text) for from_client, text in up.websocket_frames[0] if not from_client]
    encrypted = {i["encrypted_content"] for e in answered if e["type"] == "response.completed"
                 for i in e["response"]["output"] if i["type"] == "reasoning"}
    kept = {b.get("signature") for m in chain for b in m["content"] if b.get("type") == "thinking"}
    assert len(encrypted) == 2 and encrypted <= kept


def ws_frames(payload: bytes, *, masked: bool, compressed: bool, fragment: int) -> bytes:
    """A text message as WebSocket frames (RFC 6455): cut into fragments, masked as a client must."""
    out = b""
    pieces = [payload[i:i + fragment] for i in range(0, len(payload), fragment)] or [b""]
    for n, piece in enumerate(pieces):
        b0 = (0x80 if n == len(pieces) - 1 else 0) | (0x40 if compressed and n == 0 else 0) | (0x1 if n == 0 else 0)
        size = len(piece)
        head = bytes([b0]) + (bytes([(0x80 if masked else 0) | size]) if size < 126 else
                              bytes([(0x80 if masked else 0) | 126]) + size.to_bytes(2, "big") if size < 65536 else
                              bytes([(0x80 if masked else 0) | 127]) + size.to_bytes(8, "big"))
        if masked:
            key = os.urandom(4)
            piece = bytes(b ^ key[i % 4] for i, b in enumerate(piece))
            head += key
        out += head + piece
    return out
