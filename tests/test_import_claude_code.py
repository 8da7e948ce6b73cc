"""`lit import claude-code` on transcripts written by the real Claude Code CLI: the committed copy
(tests/data/claude_code, made by make_transcripts.py) and, when the CLI is installed, a live run.
Each becomes a lit session whose threads are bound to the commits its Bash calls made, with line
maps that cite the Write and Edit calls line by line."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lit_fixtures import init_repo, lit_in_process

from lit import store

DATA = Path(__file__).resolve().parent / "data" / "claude_code"
_spec = importlib.util.spec_from_file_location("make_transcripts", DATA / "make_transcripts.py")
mt = importlib.util.module_from_spec(_spec)
sys.modules["make_transcripts"] = mt  # dataclasses look their module up there
_spec.loader.exec_module(mt)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def lit(env: dict, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return lit_in_process(list(args), cwd, env=env)


def lit_env(tmp_path: Path, home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE_", "LIT_"))}
    return {**env, "HOME": str(home), "LIT_DB": str(tmp_path / "lit.db"), "GIT_CONFIG_NOSYSTEM": "1"}


def threads_of(tmp_path: Path) -> list[str]:
    return [r[0] for r in store.connect(tmp_path / "lit.db").execute("SELECT id FROM threads ORDER BY seq")]


def transcript_entries(folder: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(folder.rglob("*.jsonl"), key=lambda p: "subagents" in str(p))
            for line in f.read_text().splitlines() if line.strip()]


def ends_with_words(folder: Path) -> bool:
    """Whether the session's file holds the agent's last words after its last tool result (Claude
    Code does not always write that last answer to its transcript before it exits)."""
    main = [e for e in transcript_entries(folder)
            if e.get("type") in ("user", "assistant") and not e.get("isSidechain") and "agentId" not in e]
    results = [i for i, e in enumerate(main) if e["type"] == "user" and isinstance(e["message"]["content"], list)
               and any(b.get("type") == "tool_result" for b in e["message"]["content"])]
    last_result = max(results, default=-1)
    return any(e["type"] == "assistant" for e in main[last_result + 1:])


@pytest.fixture
def committed(tmp_path: Path):
    """The committed transcripts under a tmp HOME, for a rebuilt copy of the repository."""
    repo, home = tmp_path / "project", tmp_path / "home"
    folder = mt.install(DATA, repo, home)
    return repo, home, folder


def check_import(tmp_path: Path, repo: Path, home: Path, folder: Path, *, again: bool = False) -> dict:
    """Import the repository's sessions and check what a user would: threads, steps, commits,
    line maps. Returns the DB rows for further checks. `again`: the first commit was imported
    before, from the part of the transcript written by then."""
    env = lit_env(tmp_path, home)
    proc = lit(env, repo, "import", "claude-code")
    assert proc.returncode == 0, proc.stderr
    entries = transcript_entries(folder)
    claude_session = entries[0]["sessionId"]
    hello_sha, notes_sha = git(repo, "rev-parse", "HEAD~1"), git(repo, "rev-parse", "HEAD")
    said, session_line = proc.stdout.splitlines()[:2]
    assert said == f"lit import: linking commits in {repo}"
    assert session_line.startswith(f"lit import: claude code session {claude_session} -> session ")
    assert (f"-> commit {hello_sha[:7]}" in proc.stdout) is not again and f"-> commit {notes_sha[:7]}" in proc.stdout

    db = store.connect(tmp_path / "lit.db")
    session = db.execute("SELECT id, agent, cwd, repo_root, notes FROM sessions").fetchall()
    assert len(session) == 1
    sid, agent, cwd, repo_root, notes = session[0]
    assert agent.startswith("claude-code-import") and cwd == str(repo) and repo_root == str(repo)
    assert notes.startswith(f"imported from Claude Code session {claude_session}") and notes.endswith("on branch main")

    # Steps: every tool call of the transcript (main and subagent), in order, with its input.
    steps = list(db.query("SELECT s.* FROM steps s JOIN threads t ON s.thread_id = t.id"
                          " ORDER BY t.seq, s.seq"))
    uses = [b for e in entries if e.get("type") == "assistant"
            for b in e["message"]["content"] if b.get("type") == "tool_use"]
    calls = [s for s in steps if s["kind"] == "tool_call"]
    assert [c["tool_name"] for c in calls] == ["Write", "Read", "Edit", "Edit", "Bash", "Agent", "Write", "Bash"]
    assert sorted(c["tool_use_id"] for c in calls) == sorted(u["id"] for u in uses)
    assert all(json.loads(c["tool_input"]) == next(u["input"] for u in uses if u["id"] == c["tool_use_id"])
               for c in calls)
    results = [s for s in steps if s["kind"] == "tool_result"]
    assert len(results) == len(calls)
    assert [r["is_error"] for r in results] == [0, 0, 1, 0, 0, 0, 0, 0]  # the Edit that missed
    assert [s["text"] for s in steps if s["kind"] == "prompt"] == [mt.PROMPT, mt.SUBAGENT_PROMPT]
    assert [s["text"] for s in steps if s["kind"] == "thinking"][0].startswith("A module with one function")
    # The subagent's steps hang under the Agent call, in its own conversation.
    agent_call = next(c for c in calls if c["tool_name"] == "Agent")
    sub = [s for s in steps if s["parent_step_id"] == agent_call["id"]]
    assert [s["kind"] for s in sub] == ["prompt", "text", "tool_call", "tool_result", "text"]
    assert len({s["conversation_id"] for s in sub}) == 1 and sub[0]["conversation_id"] != agent_call["conversation_id"]

    # Threads: cut at each commit, bound to it; what follows the last commit is pending.
    threads = list(db.query("SELECT * FROM threads ORDER BY seq"))
    assert [(t["status"], t["commit_sha"]) for t in threads] == [
        ("bound", hello_sha), ("bound", notes_sha)] + [("pending", None)] * ends_with_words(folder)
    assert all(t["title"] == mt.PROMPT for t in threads)
    first_thread = [s for s in steps if s["thread_id"] == threads[0]["id"]]
    assert first_thread[-1]["text"].startswith("[main (root-commit)")  # ends with the commit's result
    assert [s["id"] for s in first_thread] == [f"{threads[0]['id']}.{n}" for n in range(1, len(first_thread) + 1)]

    # Exchanges: one per API request, with the tokens Claude Code logged.
    requests = {e["requestId"] for e in entries if e.get("type") == "assistant"}
    exchanges = list(db.query("SELECT * FROM exchanges ORDER BY seq"))
    assert {e["request_id"] for e in exchanges} == requests
    assert all(e["input_tokens"] > 0 and e["output_tokens"] > 0 and e["model"] for e in exchanges)
    assert {e["role"] for e in exchanges} == {"main", "subagent"}

    # Line maps: hello.py line 1 from the Write, 2-6 from the Edit that worked; NOTES.md 1-2 from
    # the subagent's Write, line 3 appended by shell: a person.
    write, _, _, edit, *_ = calls
    sub_write = calls[6]
    line_map = [(r["commit_sha"], r["path"], r["line_start"], r["line_end"], r["step_id"], r["thread_id"])
                for r in db.query("SELECT * FROM line_map ORDER BY commit_sha = ?, path, line_start", [notes_sha])]
    assert line_map == [
        (hello_sha, "hello.py", 1, 1, write["id"], threads[0]["id"]),
        (hello_sha, "hello.py", 2, 6, edit["id"], threads[0]["id"]),
        (notes_sha, "NOTES.md", 1, 2, sub_write["id"], threads[1]["id"]),
        (notes_sha, "NOTES.md", 3, 3, None, threads[1]["id"]),
    ]
    assert (repo / "NOTES.md").read_text().splitlines()[2] == mt.HUMAN_LINE
    return {"env": env, "sid": sid, "db": db, "steps": steps, "threads": threads}


def test_committed_transcript_becomes_bound_threads_with_line_maps(committed, tmp_path):
    repo = committed[0]
    rows = check_import(tmp_path, *committed)
    # lit blame and lit weave read the imported threads like recorded ones.
    proc = lit(rows["env"], repo, "blame", "hello.py", "--json")
    assert proc.returncode == 0, proc.stderr
    blamed = json.loads(proc.stdout)
    edit = next(s for s in rows["steps"] if s["tool_name"] == "Edit" and not s["is_error"] and s["kind"] == "tool_call"
                and "hello, world" in s["tool_input"])
    assert [(b["line"], b["kind"], b["tool"]) for b in blamed] == [
        (1, "step", "Write"), *[(n, "step", "Edit") for n in range(2, 7)]]
    assert blamed[1]["step"] == edit["id"] and blamed[1]["why"].startswith("That string is not in the file")
    proc = lit(rows["env"], repo, "weave", "HEAD~1", "-o", str(tmp_path / "page.html"))
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "page.html").read_text()
    assert "A module with one function" in page and mt.PROMPT.split(" with ")[0] in page


def test_notes_carry_the_line_maps_so_blame_works_without_the_db(committed, tmp_path):
    """Each bound commit gets its note in refs/notes/lit: a clone with the notes and no DB blames
    the imported session's lines the same."""
    repo, home, folder = committed
    env = lit_env(tmp_path, home)
    proc = lit(env, repo, "import", "claude-code", "--json")
    assert proc.returncode == 0, proc.stderr
    [result] = json.loads(proc.stdout)
    assert result["notes"] == 2
    db = store.connect(tmp_path / "lit.db")
    for thread in result["threads"][:2]:
        note = json.loads(git(repo, "notes", "--ref", "refs/notes/lit", "show", thread["commit"]))
        assert note["thread"] == thread["id"] and note["agent"].startswith("claude-code-import")
        rows = db.execute("SELECT path, line_start, line_end, step_id FROM line_map WHERE commit_sha = ?"
                          " ORDER BY path, line_start", [thread["commit"]]).fetchall()
        assert [[p, *r] for p, ranges in sorted(note["files"].items()) for r in ranges] == [list(r) for r in rows]
        assert {r[3] for r in rows if r[3]} <= set(note["steps"])
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    git(clone, "fetch", "-q", "origin", "refs/notes/lit:refs/notes/lit")
    proc = lit({**env, "LIT_DB": str(tmp_path / "no.db")}, clone, "blame", "NOTES.md", "--json")
    assert proc.returncode == 0, proc.stderr
    blamed = json.loads(proc.stdout)
    notes_thread = result["threads"][1]["id"]
    assert [(b["kind"], b["tool"], b["thread"]) for b in blamed] == [
        ("step", "Write", notes_thread), ("step", "Write", notes_thread), ("human", None, notes_thread)]


def test_a_secret_in_the_transcript_reaches_neither_the_db_nor_the_notes(committed, tmp_path):
    repo, home, folder = committed
    key = "sk-ant-api03-" + "Zq8" * 30 + "-AA"  # shaped like a real key
    path = next(folder.glob("*.jsonl"))
    text = path.read_text()
    assert text.count(json.dumps(mt.PROMPT)) >= 1
    path.write_text(text.replace(json.dumps(mt.PROMPT), json.dumps(f"{mt.PROMPT} The API key is {key}.")))
    proc = lit(lit_env(tmp_path, home), repo, "import", "claude-code")
    assert proc.returncode == 0, proc.stderr
    db = store.connect(tmp_path / "lit.db")
    prompt = db.execute("SELECT text FROM steps WHERE kind = 'prompt' ORDER BY created_at LIMIT 1").fetchone()[0]
    assert prompt.endswith("The API key is [REDACTED:anthropic-key].")
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("lit.db*"))
    assert key.encode() not in stored
    notes = subprocess.run(["git", "log", "-p", "refs/notes/lit"], cwd=repo, capture_output=True, text=True).stdout
    assert "REDACTED" in notes and key not in notes


def test_importing_twice_adds_nothing(committed, tmp_path):
    repo, home, folder = committed
    first = check_import(tmp_path, repo, home, folder)
    db = first["db"]
    tables = ("sessions", "threads", "steps", "exchanges", "line_map")
    counts = {t: db[t].count for t in tables}
    again = lit(first["env"], repo, "import", "claude-code", "--json")
    assert again.returncode == 0, again.stderr
    [result] = json.loads(again.stdout)
    assert result["imported"] is False and result["reason"] == "already imported"
    assert {t: db[t].count for t in tables} == counts
    # the same, given the file itself
    path = next(folder.glob("*.jsonl"))
    third = lit(first["env"], repo, "import", "claude-code", str(path))
    assert third.returncode == 0 and "already imported, nothing added" in third.stdout
    assert {t: db[t].count for t in tables} == counts


def test_a_session_lit_recorded_live_is_not_imported_again(committed, tmp_path):
    """`lit record -- claude` keeps Claude Code's session id (its x-claude-code-session-id header)
    on each exchange: the transcript of that session would only repeat it."""
    repo, home, folder = committed
    claude_session = next(folder.glob("*.jsonl")).stem
    db = store.connect(tmp_path / "lit.db")
    with db.conn:
        db["sessions"].insert({"id": "a0b1c2d3e4f5", "started_at": store.now(), "argv": '["claude"]'})
        db["exchanges"].insert({"id": "a0b1c2d3e4f5.1", "session_id": "a0b1c2d3e4f5", "seq": 1,
                                "client_session_id": claude_session})
    proc = lit(lit_env(tmp_path, home), repo, "import", "claude-code")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (f"lit import: linking commits in {repo}\n"
                           f"lit import: claude code session {claude_session}: recorded by lit record "
                           "(session a0b1c2d3e4f5), nothing added\n")
    assert db["sessions"].count == 1 and db["threads"].count == 0


def test_a_malformed_line_is_skipped_with_a_one_line_warning(committed, tmp_path):
    repo, home, folder = committed
    path = next(folder.glob("*.jsonl"))
    lines = path.read_text().splitlines(keepends=True)
    last = next(json.loads(line)["uuid"] for line in reversed(lines) if '"type":"assistant"' in line.replace(" ", ""))
    odd = json.dumps({"type": "assistant", "uuid": "0b9e6c1a-7d2f-4e8b-9a1c-5f3e2d1c0b9a", "parentUuid": last,
                      "message": "a message that is a string"})
    path.write_text("".join(lines[:3]) + '{"type": "user", "message": {"role": "user", "content": "cut of\n'
                    + "".join(lines[3:]) + odd + "\n")
    proc = lit(lit_env(tmp_path, home), repo, "import", "claude-code")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == (f"lit import: warning: {path}:4: not a JSON line, skipped\n"
                           f"lit import: warning: {path}:{len(lines) + 2}: assistant line of an unknown shape "
                           "('str' object has no attribute 'get'), skipped\n")
    assert "Traceback" not in proc.stderr
    db = store.connect(tmp_path / "lit.db")
    assert db["line_map"].count == 4 and db["threads"].count == 3


def test_a_session_that_grew_since_its_import_gets_only_the_new_steps(committed, tmp_path):
    """Imported while the subagent's result was the last line; the rest arrives later (a resumed
    session appends to the same file): the pending thread continues, and the result is the same
    as one import of the whole."""
    repo, home, folder = committed
    path = next(folder.glob("*.jsonl"))
    full = path.read_text()
    lines = full.splitlines(keepends=True)
    cut = next(n for n, line in enumerate(lines) if '"agentId"' in line and '"toolUseResult"' in line) + 1
    path.write_text("".join(lines[:cut]))
    notes_sha = git(repo, "rev-parse", "HEAD")
    git(repo, "reset", "-q", "--hard", "HEAD~1")  # the notes are not committed yet
    env = lit_env(tmp_path, home)
    first = lit(env, repo, "import", "claude-code", "--json")
    assert first.returncode == 0, first.stderr
    [result] = json.loads(first.stdout)
    assert [t["status"] for t in result["threads"]] == ["bound", "pending"]
    pending = result["threads"][1]
    path.write_text(full)
    git(repo, "reset", "-q", "--hard", notes_sha)
    rows = check_import(tmp_path, repo, home, folder, again=True)
    assert rows["threads"][1]["id"] == pending["id"]  # continued, not replaced
    assert len({s["id"] for s in rows["steps"]}) == len(rows["steps"])


@pytest.mark.parametrize("layout", ["inline", "beside"])
def test_older_subagent_layouts_give_the_same_threads(committed, tmp_path, layout):
    """Before subagents/agent-<id>.jsonl, Claude Code wrote them as sidechain lines in the session
    file (no agent id: found by the Agent call's prompt), or as agent-<id>.jsonl beside it."""
    repo, home, folder = committed
    path = next(folder.glob("*.jsonl"))
    sub_file = next((folder / path.stem / "subagents").glob("agent-*.jsonl"))
    sub_text = sub_file.read_text()
    shutil.rmtree(folder / path.stem)
    if layout == "inline":
        sidechain = [json.dumps({k: v for k, v in json.loads(line).items() if k != "agentId"}) + "\n"
                     for line in sub_text.splitlines()]
        lines = path.read_text().splitlines(keepends=True)
        at = next(n for n, line in enumerate(lines) if '"name": "Agent"' in line or '"name":"Agent"' in line) + 1
        path.write_text("".join(lines[:at] + sidechain + lines[at:]))
    else:
        (folder / sub_file.name).write_text(sub_text)
    check_import(tmp_path, repo, home, folder)


def test_edits_a_person_committed_after_the_session_bind_its_last_thread(committed, tmp_path):
    """The session ends with the subagent's NOTES.md written, not committed; a person commits it
    (and a line of their own) afterwards. Imported before that commit, the thread stays pending;
    imported after it, the thread is bound to it and the line map cites the subagent's Write."""
    repo, home, folder = committed
    path = next(folder.glob("*.jsonl"))
    lines = path.read_text().splitlines(keepends=True)
    cut = next(n for n, line in enumerate(lines) if "Add notes" in line)  # the Bash call that committed
    path.write_text("".join(lines[:cut]))
    notes_sha = git(repo, "rev-parse", "HEAD")
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    env = lit_env(tmp_path, home)
    before = lit(env, repo, "import", "claude-code", "--json")
    assert before.returncode == 0, before.stderr
    assert [t["status"] for t in json.loads(before.stdout)[0]["threads"]] == ["bound", "pending"]
    git(repo, "reset", "-q", "--hard", notes_sha)  # the person's commit
    after = lit(env, repo, "import", "claude-code")
    assert after.returncode == 0, after.stderr
    db = store.connect(tmp_path / "lit.db")
    threads = list(db.query("SELECT * FROM threads ORDER BY seq"))
    assert [(t["status"], t["commit_sha"]) for t in threads] == [
        ("bound", git(repo, "rev-parse", "HEAD~1")), ("bound", notes_sha)]
    assert after.stdout.endswith(f"thread {threads[1]['id']} -> commit {notes_sha[:7]}\n")
    write = next(s for s in store.thread_steps(db, threads[1]["id"]) if s["tool_name"] == "Write")
    assert [(r["path"], r["line_start"], r["line_end"], r["step_id"]) for r in db.query(
        "SELECT * FROM line_map WHERE commit_sha = ? ORDER BY line_start", [notes_sha])] == [
        ("NOTES.md", 1, 2, write["id"]), ("NOTES.md", 3, 3, None)]
    assert json.loads(git(repo, "notes", "--ref", "refs/notes/lit", "show", notes_sha))["thread"] == threads[1]["id"]
    again = lit(env, repo, "import", "claude-code")
    assert "already imported, nothing added" in again.stdout


def test_an_amended_commit_is_found_by_time_and_message(committed, tmp_path):
    """The SHA the transcript names is gone (amended after the session): the commit with the same
    author time and message is bound instead, and its line map still cites the edits."""
    repo, home, folder = committed
    old = git(repo, "rev-parse", "HEAD")
    env = {**os.environ, "GIT_COMMITTER_DATE": "2030-01-01T00:00:00Z"}
    subprocess.run(["git", "commit", "-q", "--amend", "--no-edit"], cwd=repo, env=env, check=True)
    subprocess.run(["git", "reflog", "expire", "--expire=now", "--all"], cwd=repo, check=True)
    subprocess.run(["git", "gc", "-q", "--prune=now"], cwd=repo, check=True)
    new = git(repo, "rev-parse", "HEAD")
    assert new != old
    proc = lit(lit_env(tmp_path, home), repo, "import", "claude-code")
    assert proc.returncode == 0, proc.stderr
    db = store.connect(tmp_path / "lit.db")
    bound = [r[0] for r in db.execute("SELECT commit_sha FROM threads WHERE status = 'bound' ORDER BY seq")]
    assert bound == [git(repo, "rev-parse", "HEAD~1"), new]
    assert db.execute("SELECT COUNT(*) FROM line_map WHERE commit_sha = ? AND step_id IS NOT NULL",
                      [new]).fetchone()[0] == 1


def test_outside_the_repository_the_session_is_imported_unbound(tmp_path):
    """A transcript whose repository is not on this machine: steps and exchanges, no commits."""
    home = tmp_path / "home"
    src = next((DATA / "session").glob("*.jsonl"))
    proc = lit(lit_env(tmp_path, home), tmp_path, "import", "claude-code", str(src.parent), "--json")
    assert proc.returncode == 0, proc.stderr
    [result] = json.loads(proc.stdout)
    assert result["imported"] and [t["status"] for t in result["threads"]] == ["pending"]
    entries = transcript_entries(src.parent)
    blocks = sum(len(e["message"]["content"]) if isinstance(e["message"]["content"], list) else 1
                 for e in entries if e.get("type") in ("user", "assistant"))
    assert result["steps"] == blocks == 25 and result["line_map_rows"] == 0


def test_no_sessions_is_one_line(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = lit_env(tmp_path, home)
    # A session started and left before any message: its file holds bookkeeping only.
    empty = tmp_path / "empty" / "0d8a6f7e-1b2c-4d3e-8f9a-0b1c2d3e4f5a.jsonl"
    empty.parent.mkdir()
    empty.write_text('{"type":"queue-operation","operation":"dequeue","timestamp":"2026-11-28T19:57:34.423Z",'
                     '"sessionId":"0d8a6f7e-1b2c-4d3e-8f9a-0b1c2d3e4f5a"}\n')
    proc = lit(env, tmp_path, "import", "claude-code", str(empty.parent))
    assert proc.returncode == 0 and proc.stdout == (
        "lit import: not in a git repository: sessions are imported without commits (--repo PATH)\n"
        "lit import: claude code session 0d8a6f7e-1b2c-4d3e-8f9a-0b1c2d3e4f5a: no messages, nothing added\n")
    # Several sessions at once end with a count.
    shutil.copytree(DATA / "session", empty.parent, dirs_exist_ok=True)
    proc = lit(env, tmp_path, "import", "claude-code", str(empty.parent))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == ("lit import: 2 claude code sessions: 1 imported, 0 commits linked, "
                                            "1 left as they were")
    proc = lit(env, tmp_path, "import", "claude-code")
    assert proc.returncode == 1 and proc.stderr.startswith("lit: no Claude Code sessions for ")
    assert proc.stderr.count("\n") == 1
    proc = lit(env, tmp_path, "import", "claude-code", str(tmp_path / "missing.jsonl"))
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "does not exist" in proc.stderr


@pytest.mark.slow
def test_a_live_claude_code_session_is_imported(tmp_path, claude_code):
    """The real CLI, offline, writes the transcript now: the importer follows the current format."""
    run = mt.run_claude(tmp_path / "live", claude_code)
    assert run.output["result"] == "Committed hello.py and NOTES.md."
    assert git(run.repo, "log", "--format=%s") == "Add notes\nAdd hello.py"
    check_import(tmp_path, run.repo, run.home, run.transcript.parent)
    words = ends_with_words(run.transcript.parent)  # the pending thread the resumed part continues
    requests = {e.get("requestId") for e in transcript_entries(run.transcript.parent)}

    # The session compacted, then resumed with a second prompt: only what it added is imported.
    mt.compact_claude(run, claude_code)
    assert mt.resume_claude(run, claude_code)["result"] == "Committed bye.py."
    proc = lit(lit_env(tmp_path, run.home), run.repo, "import", "claude-code")
    assert proc.returncode == 0, proc.stderr
    bye_sha = git(run.repo, "rev-parse", "HEAD")
    new_requests = {e.get("requestId") for e in transcript_entries(run.transcript.parent)
                    if e.get("type") == "assistant"} - requests
    assert proc.stdout.endswith(f"{len(new_requests)} exchanges; thread {threads_of(tmp_path)[2]} -> commit "
                                f"{bye_sha[:7]}\n")
    db = store.connect(tmp_path / "lit.db")
    assert db["sessions"].count == 1
    threads = list(db.query("SELECT * FROM threads ORDER BY seq"))
    assert [t["status"] for t in threads] == ["bound"] * 3 + ["pending"] * ends_with_words(run.transcript.parent)
    assert threads[2]["commit_sha"] == bye_sha and threads[2]["title"] == mt.RESUMED_PROMPT
    third = store.thread_steps(db, threads[2]["id"])
    # The compaction's summary, the /compact command and Claude Code's own filler are no prompts,
    # nor the model's words.
    compaction = [s for s in third if s["kind"] == "other"]
    # When Claude Code's transcript lost its last answer (see `words`), the resumed session first
    # gets Claude Code's filler ("No response requested."), then the summary: both `other`.
    summary = next(i for i, s in enumerate(compaction) if mt.COMPACT_SUMMARY in s["text"])
    assert len(compaction) >= 2 and all(s["text"] == "No response requested." for s in compaction[:summary])
    # What Claude Code adds to a user turn for the model (<system-reminder>) is context, as lit record keeps it.
    assert all(s["text"].lstrip().startswith("<") for s in third if s["kind"] == "context")
    third = [s for s in third if s["kind"] not in ("other", "context")]
    if words:  # the last words before the resume began the thread the resumed part continued
        assert third.pop(0)["kind"] == "text"
    assert [(s["kind"], s["tool_name"]) for s in third] == [
        ("prompt", None), ("text", None), ("tool_call", "Write"), ("tool_call", "Read"),
        ("tool_result", None), ("tool_result", None),  # both results of the parallel calls
        ("text", None), ("tool_call", "Write"), ("tool_result", None), ("tool_call", "Bash"), ("tool_result", None)]
    assert [s["tool_use_id"] for s in third[4:6]] == [s["tool_use_id"] for s in third[2:4]]
    assert third[0]["text"] == mt.RESUMED_PROMPT
    assert [(r["path"], r["line_start"], r["line_end"], r["step_id"]) for r in db.query(
        "SELECT * FROM line_map WHERE commit_sha = ? ORDER BY line_start", [bye_sha])] == [
        ("bye.py", 1, 1, third[2]["id"]), ("bye.py", 2, 2, third[7]["id"])]


def test_commit_messages_and_added_lines_are_read_as_git_and_claude_code_write_them(tmp_path):
    from lit.importers.commits import added_lines, commit_message

    heredoc = ("git add -A && git commit -m \"$(cat <<'EOF'\nFix the parser\n\nCo-Authored-By: Claude"
               " <noreply@anthropic.com>\nEOF\n)\"")
    assert commit_message(heredoc).splitlines()[0] == "Fix the parser"
    assert commit_message("git commit -qam 'Add hello'") == "Add hello"
    assert commit_message('git commit -m "Add hello" -m body') == "Add hello"
    repo = tmp_path / "r"
    mt.make_repo(repo)
    (repo / "a.txt").write_text("keep\n++ looks like a header\n+++ b/also\n")
    git(repo, "add", "a.txt")
    git(repo, "commit", "-qm", "a")
    assert added_lines(str(repo), git(repo, "rev-parse", "HEAD")) == [
        ("a.txt", 1, "keep"), ("a.txt", 2, "++ looks like a header"), ("a.txt", 3, "+++ b/also")]


def test_the_current_repository_is_linked_never_the_one_a_transcript_names(committed, tmp_path):
    """A transcript says which folder it ran in and which commits its Bash made; imported from
    another repository it links nothing there and writes nothing in the folder it names."""
    repo, home, folder = committed
    other = init_repo(tmp_path / "other", {"app.py": "x = 1\n"})
    env = lit_env(tmp_path, home)
    proc = lit(env, other, "import", "claude-code", str(folder))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == f"lit import: linking commits in {other}"
    db = store.connect(tmp_path / "lit.db")
    assert [r[0] for r in db.execute("SELECT status FROM threads")] == ["pending"]
    assert db.execute("SELECT repo_root FROM sessions").fetchone()[0] == str(other)
    for r in (repo, other):
        assert git(r, "notes", "--ref=lit", "list") == ""
    # Named with --repo, from anywhere, the session's own repository is linked.
    proc = lit(lit_env(tmp_path / "second", home), tmp_path, "import", "claude-code", str(folder), "--repo", str(repo))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == f"lit import: linking commits in {repo}" and "-> commit " in proc.stdout
    assert len(git(repo, "notes", "--ref=lit", "list").splitlines()) == 2
    proc = lit(env, tmp_path, "import", "claude-code", str(folder), "--repo", str(tmp_path / "nowhere"))
    assert proc.returncode == 1 and proc.stderr == f"lit: --repo {tmp_path / 'nowhere'}: not a git repository\n"


def test_a_fifo_named_like_a_transcript_is_skipped(committed, tmp_path):
    repo, home, folder = committed
    os.mkfifo(folder / "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0.jsonl")
    os.mkfifo(tmp_path / "pipe.jsonl")
    env = lit_env(tmp_path, home)
    for args in ((), (str(folder),)):  # found under ~/.claude/projects, or in a folder given
        proc = lit(env, repo, "import", "claude-code", *args)
        assert proc.returncode == 0, proc.stderr
    proc = lit(env, repo, "import", "claude-code", str(tmp_path / "pipe.jsonl"))
    assert proc.returncode == 1 and proc.stderr == f"lit: {tmp_path / 'pipe.jsonl'} is not a regular file: " \
        "pass a transcript (.jsonl) or a folder of them\n"
