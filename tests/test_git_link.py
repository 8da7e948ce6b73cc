"""One thread, one commit: an agent edits files and commits in a real repository; the commit gets its
trailer and note, and the line map says line by line which step wrote what.

The first test is the whole path: the real anthropic SDK (examples/agent.py) under `lit record`
against a scripted model. The others record in process (lit_fixtures.Agent: the rows the recorder
writes and the snapshots it takes, with real `git commit` runs through lit's session hooks), so each
git case takes a second instead of an agent's start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from lit_fixtures import Agent, init_repo, lit_in_process

from lit import store
from lit.git import hooks, notes
from lit.scripted import ScriptedUpstream, text_message, tool_message

AGENT = Path(__file__).resolve().parent.parent / "examples" / "agent.py"
README = {"README.md": "# app\n"}
KEY = "sk-ant-api03-" + "L1nkT3st" * 11 + "-AAAA"


def sh(cmd: list[str], cwd: Path, **kw) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True, **kw).stdout


def lit(args: list[str], cwd: Path, db: Path) -> subprocess.CompletedProcess:
    return lit_in_process(args, cwd, env={**os.environ, "LIT_DB": str(db)})


def step_of(db_path: Path, tool_use_input_fragment: str) -> str:
    db = store.connect(db_path)
    for row in db.query("SELECT id, tool_input FROM steps WHERE kind = 'tool_call' ORDER BY created_at"):
        if tool_use_input_fragment in (row["tool_input"] or ""):
            return row["id"]
    raise AssertionError(f"no tool call with {tool_use_input_fragment!r}")


def per_line(note: dict, path: str) -> dict[int, str | None]:
    return {n: step for start, end, step in note["files"][path] for n in range(start, end + 1)}


WRITE = tool_message("write_file", {"path": "app.py", "content": "def main():\n    return run()\n"},
                     thinking="A main() that delegates keeps the entry point thin.")
EDIT = tool_message("edit_file", {"path": "app.py", "old_string": "def main():\n",
                                  "new_string": "def main():\n    setup()\n    log('start')\n"},
                    thinking="main() must set up and log before it runs.")


def test_the_agents_commit_gets_trailer_note_and_line_map(tmp_path):
    """The whole path, once: an SDK agent under `lit record`."""
    repo = init_repo(tmp_path / "repo", README)
    db = tmp_path / "lit.db"
    commit = tool_message("run_shell", {"command": "git add app.py && git commit -q -m 'Add app'"},
                          thinking="Tests pass; commit.")
    with ScriptedUpstream([WRITE, EDIT, commit, text_message("Committed.")]) as up:
        proc = subprocess.run(
            [sys.executable, "-m", "lit", "record", "--upstream", up.url, "--", sys.executable, str(AGENT),
             "do the work"], cwd=repo, capture_output=True, text=True, timeout=90,
            env={**os.environ, "LIT_DB": str(db), "ANTHROPIC_API_KEY": KEY})
    assert proc.returncode == 0, proc.stderr

    message = sh(["git", "log", "-1", "--format=%B"], repo)
    thread = message.split("Lit-Thread: ")[1].strip()
    note = notes.read(repo, sh(["git", "rev-parse", "HEAD"], repo).strip()).to_json()
    assert note["thread"] == thread and note["version"] == 1
    write, edit = step_of(db, '"content"'), step_of(db, '"old_string"')
    # DESIGN.md's hand-checked case: lines 1 and 4 from the Write, 2-3 from the Edit.
    assert per_line(note, "app.py") == {1: write, 2: edit, 3: edit, 4: write}
    assert note["steps"][edit]["why"] == "main() must set up and log before it runs."
    assert note["prompts"][0]["text"] == "do the work"
    row = store.connect(db)["threads"].get(thread)
    assert row["status"] == "bound" and row["commit_sha"] == note["commit"]
    # The line map is in the DB too, for Datasette and for blame without notes.
    rows = list(store.connect(db).query("SELECT path, line_start, line_end, step_id FROM line_map"))
    assert {(r["line_start"], r["line_end"], r["step_id"]) for r in rows} == {
        (1, 1, write), (2, 3, edit), (4, 4, write)}


def write_then_edit(a: Agent) -> tuple[str, str]:
    """DESIGN.md's hand-checked case in process: a Write of 2 lines, an Edit inserting 2 after line 1."""
    write = a.write("app.py", "def main():\n    return run()\n")
    a.turn()
    edit = a.edit("app.py", "def main():\n", "def main():\n    setup()\n    log('start')\n")
    a.turn()
    return write, edit


def test_a_person_commits_after_the_session_with_hooks_installed(agent_in):
    a = agent_in()
    write, edit = write_then_edit(a)
    a.end()
    assert lit(["hooks", "install"], a.repo, a.db_path).returncode == 0
    with open(a.repo / "app.py", "a") as f:
        f.write("# reviewed by hand\n")
    env = {**os.environ, "LIT_DB": str(a.db_path)}
    sh(["git", "add", "app.py"], a.repo, env=env)
    sh(["git", "commit", "-q", "-m", "Add app"], a.repo, env=env)

    note = notes.read(a.repo, "HEAD").to_json()
    assert per_line(note, "app.py") == {1: write, 2: edit, 3: edit, 4: write, 5: None}
    assert "Lit-Thread: " + note["thread"] in sh(["git", "log", "-1", "--format=%B"], a.repo)
    # Installing twice changes nothing; uninstalling leaves no lit hook behind.
    assert lit(["hooks", "install"], a.repo, a.db_path).returncode == 0
    assert sh(["git", "config", "--get-all", "notes.rewriteRef"], a.repo).split() == ["refs/notes/lit"]
    assert lit(["hooks", "uninstall"], a.repo, a.db_path).returncode == 0
    assert not hooks.installed(a.repo)


def test_a_file_the_shell_writes_in_the_committing_call_is_the_agents(agent_in):
    a = agent_in()
    a.tool("Read", {"file_path": "README.md"}, why="Look first.")
    a.turn()
    call = a.bash("echo notes > NOTES.txt && git add NOTES.txt && git commit -q -m 'Notes'")
    a.turn()
    # The commit came from a tool call, and what it commits the shell wrote in that same call: that
    # call is the step, so the commit is the agent's.
    assert f"Lit-Thread: {a.thread}" in sh(["git", "log", "-1", "--format=%B"], a.repo)
    assert notes.read(a.repo, "HEAD").to_json()["files"] == {"NOTES.txt": [[1, 1, call]]}


def test_a_user_hook_that_rejects_still_rejects(agent_in):
    a = agent_in()
    hook = a.repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'pre-commit: no commits on Fridays' >&2\nexit 1\n")
    hook.chmod(0o755)
    a.write("app.py", "x = 1\n")
    a.turn()
    refused = a.sh("sh", "-c", "git add app.py && git commit -q -m 'Add app'", check=False)
    assert refused.returncode != 0 and "no commits on Fridays" in refused.stderr
    assert sh(["git", "log", "--format=%s"], a.repo).split("\n")[0] == "init"
    assert notes.read(a.repo, "HEAD") is None
    assert a.db["threads"].get(a.thread)["status"] == "open"  # still waiting for its commit


def test_user_git_config_entries_are_kept_and_hooks_path_honoured(tmp_path, hooks_folder):
    repo = init_repo(tmp_path / "repo", README)
    custom = repo / "githooks"
    custom.mkdir()
    (custom / "commit-msg").write_text("#!/bin/sh\necho 'Signed-off-by: Hook <h@example.com>' >> \"$1\"\n")
    (custom / "commit-msg").chmod(0o755)
    sh(["git", "config", "core.hooksPath", "githooks"], repo)
    user_env = {**os.environ, "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "user.signingkey",
                "GIT_CONFIG_VALUE_0": "ABC123"}
    a = Agent(repo, tmp_path / "lit.db", hooks_folder, env=user_env)
    a.write("app.py", "x = 1\n")
    a.turn()
    a.commit(add=["app.py"])
    body = sh(["git", "log", "-1", "--format=%B"], repo)
    assert "Signed-off-by: Hook" in body and f"Lit-Thread: {a.thread}" in body
    assert a.sh("git", "config", "user.signingkey").stdout.strip() == "ABC123"


def test_amend_and_rebase_keep_the_note(agent_in):
    a = agent_in()
    a.write("app.py", "x = 1\n")
    a.turn()
    a.commit(add=["app.py"])
    repo = a.repo
    sh(["git", "config", "notes.rewriteRef", "refs/notes/lit"], repo)
    sh(["git", "commit", "-q", "--amend", "-m", "Add app (amended)\n\nLit-Thread: " + a.thread], repo)
    assert notes.read(repo, "HEAD").to_json()["thread"] == a.thread
    sh(["git", "checkout", "-q", "-b", "side", "HEAD~1"], repo)
    (repo / "other.txt").write_text("x\n")
    sh(["git", "add", "other.txt"], repo)
    sh(["git", "commit", "-q", "-m", "other"], repo)
    sh(["git", "checkout", "-q", "main"], repo)
    sh(["git", "rebase", "-q", "side"], repo)
    assert notes.read(repo, "HEAD").to_json()["thread"] == a.thread


@pytest.mark.parametrize("layout", ["subdirectory", "no-commit-yet", "worktree", "binary-and-rename"])
def test_layouts(tmp_path, hooks_folder, layout):
    main = init_repo(tmp_path / "repo", README if layout != "no-commit-yet" else None)
    cwd, path = main, "app.py"
    if layout == "subdirectory":
        (main / "pkg").mkdir()
        cwd, path = main / "pkg", "pkg/app.py"
    elif layout == "worktree":
        sh(["git", "worktree", "add", "-q", str(tmp_path / "wt"), "-b", "feature"], main)
        cwd = tmp_path / "wt"
    elif layout == "binary-and-rename":
        (main / "logo.bin").write_bytes(bytes(range(256)))
        (main / "old.py").write_text("x = 1\n")
        sh(["git", "add", "."], main)
        sh(["git", "commit", "-q", "-m", "assets"], main)
    a = Agent(cwd, tmp_path / "lit.db", hooks_folder)
    write = a.write("app.py", "def main():\n    return run()\n")
    if layout == "binary-and-rename":
        a.bash("git mv old.py new.py && printf '\\x00\\x01' >> logo.bin")
    a.turn()
    a.bash("git add -A && git commit -q -m work")
    a.turn()
    head = sh(["git", "rev-parse", "HEAD"], cwd).strip()
    note = notes.read(cwd, head).to_json()
    assert note is not None, sh(["git", "log", "--format=%B", "-1"], cwd)
    assert per_line(note, path) == {1: write, 2: write}
    if layout == "binary-and-rename":
        assert "new.py" not in note["files"]  # a pure rename adds no line
        changed = sh(["git", "show", "--format=", "--name-status", "-M", head], cwd).split("\n")
        assert "M\tlogo.bin" in changed and "R100\told.py\tnew.py" in changed
    if layout == "worktree":
        assert sh(["git", "status", "--porcelain"], main) == ""  # the main worktree untouched


def test_sync_shares_notes_and_never_clobbers_a_teammates(tmp_path):
    remote = tmp_path / "remote.git"
    sh(["git", "init", "-q", "--bare", "-b", "main", str(remote)], tmp_path)
    alice = init_repo(tmp_path / "alice", README)
    sh(["git", "remote", "add", "origin", str(remote)], alice)
    sh(["git", "push", "-q", "origin", "main"], alice)
    sh(["git", "clone", "-q", str(remote), str(tmp_path / "bob")], tmp_path)
    bob = tmp_path / "bob"
    head = sh(["git", "rev-parse", "HEAD"], alice).strip()
    mine = {"version": 1, "thread": "aaaaaaaaaaaa", "commit": head, "prompts": [], "steps": {"aaaaaaaaaaaa.1": {}},
            "files": {"README.md": [[1, 1, None]]}}
    theirs = {"version": 1, "thread": "bbbbbbbbbbbb", "commit": head, "prompts": [], "steps": {"bbbbbbbbbbbb.3": {}},
              "files": {"README.md": [[1, 1, "bbbbbbbbbbbb.3"]]}}
    notes.write_json(alice, head, mine)
    notes.write_json(bob, head, theirs)
    (bob / "b.txt").write_text("b\n")
    sh(["git", "add", "b.txt"], bob)
    sh(["git", "-c", "user.email=b@example.com", "-c", "user.name=Bob", "commit", "-q", "-m", "b"], bob)
    sh(["git", "push", "-q", "origin", "main"], bob)
    notes.write_json(bob, sh(["git", "rev-parse", "HEAD"], bob).strip(), {**theirs, "thread": "cccccccccccc"})

    assert lit(["sync", "origin"], bob, tmp_path / "lit.db").returncode == 0
    out = lit(["sync", "origin"], alice, tmp_path / "lit.db")
    assert out.returncode == 0, out.stderr
    assert "merged with yours" in out.stdout
    merged = notes.read(alice, head).to_json()
    assert merged["thread"] == "aaaaaaaaaaaa" and merged["merged_threads"] == ["bbbbbbbbbbbb"]
    assert merged["files"]["README.md"] == [[1, 1, "bbbbbbbbbbbb.3"]]
    sh(["git", "fetch", "-q", "origin", "main"], alice)
    assert notes.read(alice, "origin/main").to_json()["thread"] == "cccccccccccc"
    assert lit(["sync", "nowhere"], alice, tmp_path / "lit.db").stderr.strip().startswith("lit: no remote named")




def test_relink_restores_the_note_after_a_squash_merge(agent_in):
    a = agent_in()
    repo = a.repo
    sh(["git", "checkout", "-q", "-b", "feature"], repo)
    write, edit = write_then_edit(a)
    a.commit("Add app", add=["app.py"])
    a.end()
    thread = notes.read(repo, "HEAD").to_json()["thread"]
    sh(["git", "checkout", "-q", "main"], repo)
    sh(["git", "merge", "-q", "--squash", "feature"], repo)
    sh(["git", "commit", "-q", "-m", f"Add app (#12)\n\nLit-Thread: {thread}"], repo)
    assert notes.read(repo, "HEAD") is None
    out = lit(["relink", "HEAD"], repo, a.db_path)
    assert out.returncode == 0 and "relinked" in out.stdout, out.stderr
    assert per_line(notes.read(repo, "HEAD").to_json(), "app.py") == {1: write, 2: edit, 3: edit, 4: write}
    # From a note alone (no DB): a clone that lost the squash commit's note copies the thread's.
    notes_only = lit(["relink", "HEAD"], repo, repo.parent / "absent.db")
    assert "every commit" in notes_only.stdout


SLOW_AGENT = '''
import subprocess, sys
import anthropic

client = anthropic.Anthropic(max_retries=0)
tools = [{"name": name, "description": name, "input_schema": {"type": "object"}}
         for name in ("write_file", "read_log", "run_shell")]
messages = [{"role": "user", "content": sys.argv[1]}]
while True:
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=1000, tools=tools, messages=messages) as s:
        reply = s.get_final_message()
    messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in reply.content]})
    if reply.stop_reason != "tool_use":
        break
    results = []
    for b in reply.content:
        if b.type == "tool_use":
            if b.name == "write_file":
                with open(b.input["path"], "w") as f:
                    f.write(b.input["content"])
                out = "written"
            elif b.name == "read_log":  # a long log: the next request is large, and slow to record
                out = "".join(f"{i} GET /api/items/{i * 7919 % 100003} 200 {i % 977} ms\\n" for i in range(400_000))
            else:
                out = subprocess.run(b.input["command"], shell=True, capture_output=True, text=True).stdout
            results.append({"type": "tool_result", "tool_use_id": b.id, "content": out})
    messages.append({"role": "user", "content": results})
'''


@pytest.mark.slow
def test_the_commit_binds_the_thread_only_once_the_recorder_has_written_its_last_step(tmp_path):
    """The agent commits right after a large request: the recorder process is still writing it
    (and the answer that asked for the commit) when git runs the hooks. The hooks ask the session
    to catch up first, so the commit's own tool call is in its thread and its line map."""
    repo = init_repo(tmp_path / "repo", README)
    (tmp_path / "agent.py").write_text(SLOW_AGENT)
    db = tmp_path / "lit.db"
    commit = "echo 'VERSION = 1' > version.py && git add app.py version.py && git commit -q -m 'Add app'"
    script = [tool_message("write_file", {"path": "app.py", "content": "print('hi')\n"}, thinking="Write it."),
              tool_message("read_log", {}, thinking="Check the server log before committing."),
              tool_message("run_shell", {"command": commit}, thinking="The log is clean: commit."),
              text_message("Committed.")]
    with ScriptedUpstream(script) as up:
        proc = subprocess.run(
            [sys.executable, "-m", "lit", "record", "--upstream", up.url, "--", sys.executable,
             str(tmp_path / "agent.py"), "add app.py"], cwd=repo, capture_output=True, text=True, timeout=120,
            env={**os.environ, "LIT_DB": str(db), "ANTHROPIC_API_KEY": KEY})
    assert proc.returncode == 0, proc.stderr
    assert len(up.requests[2]["body"]) > 10_000_000  # the request the recorder is slow to write

    note = notes.read(repo, "HEAD").to_json()
    write, shell = step_of(db, '"content"'), step_of(db, "version.py")
    assert per_line(note, "app.py") == {1: write}
    assert per_line(note, "version.py") == {1: shell}  # the commit's own call wrote it
    assert note["steps"][shell]["why"] == "The log is clean: commit."
    rows = store.connect(db).execute("SELECT s.kind, s.created_at <= t.bound_at FROM steps s JOIN threads t"
                                     " ON t.id = s.thread_id WHERE t.id = ? ORDER BY s.seq",
                                     [note["thread"]]).fetchall()
    # Every step up to the commit's call was written before the thread was bound.
    assert [kind for kind, _ in rows[:9]] == ["prompt", "thinking", "tool_call", "tool_result", "thinking",
                                              "tool_call", "tool_result", "thinking", "tool_call"]
    assert all(before for _, before in rows[:9])
