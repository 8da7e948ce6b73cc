"""One thread, one commit: an agent (the real anthropic SDK in examples/agent.py) runs under
`lit record` against a scripted model in a real repository, edits files and commits; the commit
gets its trailer and note, and the line map says line by line which step wrote what."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lit_fixtures import init_repo

from lit import store
from lit.git import hooks, notes
from lit.scripted import ScriptedUpstream, text_message, tool_message

AGENT = Path(__file__).resolve().parent.parent / "examples" / "agent.py"
README = {"README.md": "# app\n"}
KEY = "sk-ant-api03-" + "L1nkT3st" * 11 + "-AAAA"


def sh(cmd: list[str], cwd: Path, **kw) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True, **kw).stdout


def run_agent(cwd: Path, replies: list, db: Path, prompt: str = "do the work", env: dict | None = None):
    with ScriptedUpstream(replies) as up:
        proc = subprocess.run(
            [sys.executable, "-m", "lit", "record", "--upstream", up.url, "--", sys.executable, str(AGENT), prompt],
            cwd=cwd, capture_output=True, text=True, timeout=90,
            env={**os.environ, "LIT_DB": str(db), "ANTHROPIC_API_KEY": KEY, **(env or {})})
    assert proc.returncode == 0, proc.stderr
    return proc


def step_of(db_path: Path, tool_use_input_fragment: str) -> str:
    db = store.connect(db_path)
    for row in db.query("SELECT id, tool_input FROM steps WHERE kind = 'tool_call' ORDER BY created_at"):
        if tool_use_input_fragment in (row["tool_input"] or ""):
            return row["id"]
    raise AssertionError(f"no tool call with {tool_use_input_fragment!r}")


def per_line(note: dict, path: str) -> dict[int, str | None]:
    out = {}
    for start, end, step in note["files"][path]:
        for n in range(start, end + 1):
            out[n] = step
    return out


WRITE = tool_message("write_file", {"path": "app.py", "content": "def main():\n    return run()\n"},
                     thinking="A main() that delegates keeps the entry point thin.")
EDIT = tool_message("edit_file", {"path": "app.py", "old_string": "def main():\n",
                                  "new_string": "def main():\n    setup()\n    log('start')\n"},
                    thinking="main() must set up and log before it runs.")


def test_the_agents_commit_gets_trailer_note_and_line_map(tmp_path):
    repo = init_repo(tmp_path / "repo", README)
    db = tmp_path / "lit.db"
    commit = tool_message("run_shell", {"command": "git add app.py && git commit -q -m 'Add app'"},
                          thinking="Tests pass; commit.")
    run_agent(repo, [WRITE, EDIT, commit, text_message("Committed.")], db)

    message = sh(["git", "log", "-1", "--format=%B"], repo)
    thread = message.split("Lit-Thread: ")[1].strip()
    note = notes.read(repo, sh(["git", "rev-parse", "HEAD"], repo).strip())
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


def test_a_person_commits_after_the_session_with_hooks_installed(tmp_path):
    repo = init_repo(tmp_path / "repo", README)
    db = tmp_path / "lit.db"
    run_agent(repo, [WRITE, EDIT, text_message("Ready for review.")], db)
    assert "Lit-Thread" not in sh(["git", "log", "-1", "--format=%B"], repo)

    env = {**os.environ, "LIT_DB": str(db)}
    subprocess.run([sys.executable, "-m", "lit", "hooks", "install"], cwd=repo, env=env, check=True,
                   capture_output=True)
    with open(repo / "app.py", "a") as f:
        f.write("# reviewed by hand\n")
    sh(["git", "add", "app.py"], repo, env=env)
    sh(["git", "commit", "-q", "-m", "Add app"], repo, env=env)

    note = notes.read(repo, "HEAD")
    write, edit = step_of(db, '"content"'), step_of(db, '"old_string"')
    assert per_line(note, "app.py") == {1: write, 2: edit, 3: edit, 4: write, 5: None}
    assert "Lit-Thread: " + note["thread"] in sh(["git", "log", "-1", "--format=%B"], repo)
    # Installing twice changes nothing; uninstalling leaves no lit hook behind.
    subprocess.run([sys.executable, "-m", "lit", "hooks", "install"], cwd=repo, env=env, check=True,
                   capture_output=True)
    assert sh(["git", "config", "--get-all", "notes.rewriteRef"], repo).split() == ["refs/notes/lit"]
    subprocess.run([sys.executable, "-m", "lit", "hooks", "uninstall"], cwd=repo, env=env, check=True,
                   capture_output=True)
    assert not hooks.installed(repo)


def test_a_commit_without_agent_changes_gets_no_trailer(tmp_path):
    repo = init_repo(tmp_path / "repo", README)
    db = tmp_path / "lit.db"
    read = tool_message("read_file", {"path": "README.md"}, thinking="Look first.")
    person = tool_message("run_shell", {"command": "echo notes > NOTES.txt && git add NOTES.txt && "
                                                   "git commit -q -m 'Notes'"})
    run_agent(repo, [read, person, text_message("ok")], db)
    # The commit came from a tool call, but what it commits the shell wrote in that same call: that
    # call is the step, so the commit is the agent's.
    assert "Lit-Thread" in sh(["git", "log", "-1", "--format=%B"], repo)

    repo2 = init_repo(tmp_path / "repo2", README)
    run_agent(repo2, [read, text_message("Nothing to change.")], db)
    (repo2 / "TODO").write_text("by hand\n")
    sh(["git", "add", "TODO"], repo2)
    sh(["git", "commit", "-q", "-m", "todo"], repo2)
    assert "Lit-Thread" not in sh(["git", "log", "-1", "--format=%B"], repo2)


def test_a_user_hook_that_rejects_still_rejects(tmp_path):
    repo = init_repo(tmp_path / "repo", README)
    db = tmp_path / "lit.db"
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'pre-commit: no commits on Fridays' >&2\nexit 1\n")
    hook.chmod(0o755)
    commit = tool_message("run_shell", {"command": "git add app.py && git commit -q -m 'Add app'"})
    run_agent(repo, [WRITE, commit, text_message("The hook refused.")], db)
    assert sh(["git", "log", "--format=%s"], repo).split("\n")[0] == "init"
    result = json.loads(store.connect(db).execute(
        "SELECT json_object('text', text, 'err', is_error) FROM steps WHERE kind = 'tool_result'"
        " ORDER BY created_at DESC LIMIT 1").fetchone()[0])
    assert "no commits on Fridays" in result["text"]


def test_user_git_config_entries_are_kept_and_hooks_path_honoured(tmp_path):
    repo = init_repo(tmp_path / "repo", README)
    db = tmp_path / "lit.db"
    custom = repo / "githooks"
    custom.mkdir()
    (custom / "commit-msg").write_text("#!/bin/sh\necho 'Signed-off-by: Hook <h@example.com>' >> \"$1\"\n")
    (custom / "commit-msg").chmod(0o755)
    sh(["git", "config", "core.hooksPath", "githooks"], repo)
    commit = tool_message("run_shell", {"command": "git add app.py && git commit -q -m 'Add app' && "
                                                   "git config user.signingkey"})
    env = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "user.signingkey", "GIT_CONFIG_VALUE_0": "ABC123"}
    run_agent(repo, [WRITE, commit, text_message("ok")], db, env=env)
    body = sh(["git", "log", "-1", "--format=%B"], repo)
    assert "Signed-off-by: Hook" in body and "Lit-Thread:" in body
    last = store.connect(db).execute("SELECT text FROM steps WHERE kind = 'tool_result' ORDER BY created_at DESC"
                                     " LIMIT 1").fetchone()[0]
    assert "ABC123" in last


def test_amend_and_rebase_keep_the_note(tmp_path):
    repo = init_repo(tmp_path / "repo", README)
    db = tmp_path / "lit.db"
    commit = tool_message("run_shell", {"command": "git add app.py && git commit -q -m 'Add app'"})
    run_agent(repo, [WRITE, commit, text_message("ok")], db)
    sh(["git", "config", "notes.rewriteRef", "refs/notes/lit"], repo)
    thread = notes.read(repo, "HEAD")["thread"]
    sh(["git", "commit", "-q", "--amend", "-m", "Add app (amended)\n\nLit-Thread: " + thread], repo)
    assert notes.read(repo, "HEAD")["thread"] == thread
    sh(["git", "checkout", "-q", "-b", "side", "HEAD~1"], repo)
    (repo / "other.txt").write_text("x\n")
    sh(["git", "add", "other.txt"], repo)
    sh(["git", "commit", "-q", "-m", "other"], repo)
    sh(["git", "checkout", "-q", "main"], repo)
    sh(["git", "rebase", "-q", "side"], repo)
    assert notes.read(repo, "HEAD")["thread"] == thread


@pytest.mark.parametrize("layout", ["subdirectory", "no-commit-yet", "worktree", "binary-and-rename"])
def test_layouts(tmp_path, layout):
    db = tmp_path / "lit.db"
    main = init_repo(tmp_path / "repo", README if layout != "no-commit-yet" else None)
    cwd, path = main, "app.py"
    replies = [WRITE]
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
        replies.append(tool_message("run_shell",
                                    {"command": "git mv old.py new.py && printf '\\x00\\x01' >> logo.bin"}))
    replies += [tool_message("run_shell", {"command": "git add -A && git commit -q -m work"}), text_message("ok")]
    run_agent(cwd, replies, db)
    head = sh(["git", "rev-parse", "HEAD"], cwd).strip()
    note = notes.read(cwd, head)
    assert note is not None, sh(["git", "log", "--format=%B", "-1"], cwd)
    write = step_of(db, '"content"')
    assert per_line(note, path) == {1: write, 2: write}
    if layout == "binary-and-rename":
        assert "new.py" not in note["files"]  # a pure rename adds no line
    if layout == "worktree":
        assert sh(["git", "status", "--porcelain"], main) == ""  # the main worktree untouched


def lit(args: list[str], cwd: Path, db: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lit", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "LIT_DB": str(db)}, timeout=60)


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
    notes.write(alice, head, mine)
    notes.write(bob, head, theirs)
    (bob / "b.txt").write_text("b\n")
    sh(["git", "add", "b.txt"], bob)
    sh(["git", "-c", "user.email=b@example.com", "-c", "user.name=Bob", "commit", "-q", "-m", "b"], bob)
    sh(["git", "push", "-q", "origin", "main"], bob)
    notes.write(bob, sh(["git", "rev-parse", "HEAD"], bob).strip(), {**theirs, "thread": "cccccccccccc"})

    assert lit(["sync", "origin"], bob, tmp_path / "lit.db").returncode == 0
    out = lit(["sync", "origin"], alice, tmp_path / "lit.db")
    assert out.returncode == 0, out.stderr
    assert "merged with yours" in out.stdout
    merged = notes.read(alice, head)
    assert merged["thread"] == "aaaaaaaaaaaa" and merged["merged_threads"] == ["bbbbbbbbbbbb"]
    assert merged["files"]["README.md"] == [[1, 1, "bbbbbbbbbbbb.3"]]
    sh(["git", "fetch", "-q", "origin", "main"], alice)
    assert notes.read(alice, "origin/main")["thread"] == "cccccccccccc"
    assert lit(["sync", "nowhere"], alice, tmp_path / "lit.db").stderr.strip().startswith("lit: no remote named")


def test_relink_restores_the_note_after_a_squash_merge(tmp_path):
    repo = init_repo(tmp_path / "repo", README)
    db = tmp_path / "lit.db"
    sh(["git", "checkout", "-q", "-b", "feature"], repo)
    commit = tool_message("run_shell", {"command": "git add app.py && git commit -q -m 'Add app'"})
    run_agent(repo, [WRITE, EDIT, commit, text_message("ok")], db)
    thread = notes.read(repo, "HEAD")["thread"]
    sh(["git", "checkout", "-q", "main"], repo)
    sh(["git", "merge", "-q", "--squash", "feature"], repo)
    sh(["git", "commit", "-q", "-m", f"Add app (#12)\n\nLit-Thread: {thread}"], repo)
    assert notes.read(repo, "HEAD") is None
    out = lit(["relink", "HEAD"], repo, db)
    assert out.returncode == 0 and "relinked" in out.stdout, out.stderr
    note = notes.read(repo, "HEAD")
    write, edit = step_of(db, '"content"'), step_of(db, '"old_string"')
    assert per_line(note, "app.py") == {1: write, 2: edit, 3: edit, 4: write}
    # From a note alone (no DB): a clone that lost the squash commit's note copies the thread's.
    notes_only = lit(["relink", "HEAD"], repo, tmp_path / "absent.db")
    assert "every commit" in notes_only.stdout
