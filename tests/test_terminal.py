"""Escape sequences from the DB, a note or git never reach the terminal: lit show, threads,
sessions, pr (on a terminal) and blame's headers, run as a person runs them, on a pseudo-terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from lit_fixtures import add_db_thread, add_note, commit_files, init_repo, make_note, on_a_terminal

from lit.terminal import safe

# A retitle, a clipboard write, clear screen, reset, 8-bit CSI and OSC, bidi override and isolate, CR.
HOSTILE = ("\x1b]0;pwned\x07 \x1b]52;c;ZXZpbA==\x1b\\ \x1b[2J \x1bc \x9b2J \x9d0;t\x9c \u202eevil\u202c "
           "\u2066x\u2069 over\rwrite")
FORBIDDEN = ["\x1b]", "\x1b[2J", "\x1bc", "\x9b", "\x9d", "\x9c", "\u202e", "\u202c", "\u2066", "\u2069", "\x07",
             "pwned", "ZXZpbA=="]
THREAD, NOTED = "7a7a7a7a7a7a", "6b6b6b6b6b6b"


def test_safe_removes_whole_sequences_and_keeps_text():
    assert safe("Retitle \x1b]0;pwned\x07the terminal\x1b[2J. Then more.") == "Retitle the terminal. Then more."
    assert safe("tab\tand\nnewline kept\r") == "tab\tand\nnewline kept"
    assert safe("\x1b[1;31mred\x1b[0m \x9b31mc1\x9b0m \u202egnp.exe") == "red c1 gnp.exe"
    assert safe(None) == "" and safe("plain words, café") == "plain words, café"


@pytest.fixture
def hostile(tmp_path, monkeypatch):
    db = tmp_path / "lit.db"
    monkeypatch.setenv("LIT_DB", str(db))
    monkeypatch.setenv("HOME", str(tmp_path))
    repo = init_repo(tmp_path / "repo")
    commit_files(repo, {"base.txt": "base\n"}, "base")
    c1 = commit_files(repo, {"app.py": "a = 1\nb = 2\n"}, f"Add app {HOSTILE}\n\nLit-Thread: {THREAD}",
                      author=(f"Eve {HOSTILE}", "eve@example.com"))
    add_db_thread(db, thread=THREAD, commit=c1, repo_root=str(repo), model=f"claude {HOSTILE}", steps=[
        {"kind": "prompt", "text": f"Add app.py {HOSTILE}"},
        {"kind": "thinking", "text": f"Thinking {HOSTILE}"},
        {"kind": "tool_call", "tool_name": f"Write{HOSTILE}", "tool_use_id": "toolu_1",
         "tool_input": {"file_path": f"app.py{HOSTILE}", "content": "a = 1\n"}},
        {"kind": "tool_result", "tool_use_id": "toolu_1", "text": f"written {HOSTILE}"},
        {"kind": "text", "text": f"Done {HOSTILE}"},
    ], line_map={"app.py": [[1, 1, f"{THREAD}.3"], [2, 2, None]]})
    from lit import store

    database = store.connect(db)
    database.execute("UPDATE sessions SET argv = ? ", [json.dumps(["claude", HOSTILE])])
    database.execute("UPDATE threads SET title = ?", [f"Add app.py {HOSTILE}"])
    database.conn.commit()
    # a teammate's note: the thread id, step id, tool and why are all hostile
    c2 = commit_files(repo, {"b.py": "x = 1\n"}, "b")
    step = f"{NOTED}.2{HOSTILE}"
    add_note(repo, c2, make_note(c2, f"{NOTED}{HOSTILE}", files={"b.py": [[1, 1, step]]}, prompts=[
        {"step": f"{NOTED}.1", "text": f"prompt {HOSTILE}"}], models=[HOSTILE],
        steps={step: {"seq": 2, "kind": "tool_call", "tool": f"Edit{HOSTILE}", "input": {"x": HOSTILE},
                      "why": f"Because {HOSTILE}. More", "prompt": f"{NOTED}.1", "result": HOSTILE}}))
    return repo


def piped(args: list[str], cwd) -> str:
    out = subprocess.run([sys.executable, "-m", "lit", *args], cwd=cwd, capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": "300"})
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("args, seen", [
    (["show", THREAD], "Add app.py"),
    (["show", "HEAD~1"], "Thinking"),
    (["threads", "--all"], THREAD),
    (["sessions"], "claude"),
    (["pr", "HEAD~2"], "Add app"),
    (["blame", "app.py"], "Thinking"),
    (["blame", "b.py", "--full"], "Because"),
    (["blame", "app.py", "-L", "2,2"], "human (Eve"),
])
def test_no_escape_sequence_reaches_the_terminal(hostile, args, seen):
    for out in (on_a_terminal(args, hostile), piped(args, hostile) if args[0] != "pr" else ""):
        if not out:
            continue
        assert seen in out
        # --full prints a tool's input as JSON, where an ESC is the inert text \u001b, payload and all
        found = [f for f in FORBIDDEN if f in out and not ("--full" in args and f in ("pwned", "ZXZpbA=="))]
        assert not found, (found, out)
        assert "\r" not in out  # a bare carriage return would overwrite what came before
