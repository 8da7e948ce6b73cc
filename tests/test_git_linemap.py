"""The line map, line by line, for each way an agent and a person change files before a commit.

No relay here: a session, its thread and its steps are written with the store's functions, and the
snapshots are taken in the order the recorder takes them (tool calls run, then a `turn` snapshot
naming them), so each case runs in a second. The commits are real `git commit` runs through lit's
session hooks (the environment `lit record` gives its child).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


from lit_fixtures import Agent, init_repo

from lit import store
from lit.git import linemap, link, notes, snapshot


def sh(cmd: list[str], cwd: Path, env: dict | None = None) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}).stdout


def per_line(note: dict, path: str) -> dict[int, str | None]:
    return {n: step for start, end, step in note["files"][path] for n in range(start, end + 1)}


def test_designs_hand_checked_example(agent_in):
    """DESIGN.md: Write 2 lines, Edit inserting 2 after line 1, a person appends one and commits."""
    a = agent_in()
    write = a.write("app.py", "def main():\n    return run()\n")
    a.turn()
    edit = a.edit("app.py", "def main():\n", "def main():\n    setup()\n    log('start')\n")
    a.turn()
    a.end()
    with open(a.repo / "app.py", "a") as f:
        f.write("# reviewed\n")
    head = a.person_commits(["app.py"])
    note = notes.read(a.repo, head).to_json()
    assert note["files"]["app.py"] == [[1, 1, write], [2, 3, edit], [4, 4, write], [5, 5, None]]
    assert sh(["git", "log", "-1", "--format=%(trailers:key=Lit-Thread,valueonly)"], a.repo).strip() == a.thread
    assert set(note["steps"]) == {write, edit} and note["prompts"][0]["text"] == "do the work"
    thread = a.db["threads"].get(a.thread)
    assert thread["status"] == "bound" and thread["commit_sha"] == head


def test_the_agents_commit_binds_and_opens_the_next_thread(agent_in):
    a = agent_in()
    write = a.write("app.py", "one\n")
    a.turn()
    head = a.commit(add=["app.py"])
    assert notes.read(a.repo, head).to_json()["files"] == {"app.py": [[1, 1, write]]}
    nxt = store.current_thread(a.db, a.session)
    assert nxt != a.thread and a.db["threads"].get(nxt)["base_snapshot"] == snapshot.latest(a.repo, a.session)
    # The next commit is bound to the next thread; lines of the first commit are not in its diff.
    second = a.edit("app.py", "one\n", "one\ntwo\n")
    a.turn()
    head2 = a.commit(add=["app.py"])
    note2 = notes.read(a.repo, head2).to_json()
    assert note2["thread"] == nxt and note2["files"] == {"app.py": [[2, 2, second]]}


def test_in_a_session_changes_made_while_the_commit_runs_go_to_that_tool_call(agent_in):
    """`sed ... && git commit -a` in one shell call: the hook snapshots before the commit is made,
    so what that same call changed is the call's, not a person's."""
    a = agent_in()
    write = a.write("app.py", "a = 1\nb = 1\n")
    a.turn()
    a.commit(add=["app.py"])
    call = a.bash("sed -i 's/b = 1/b = 2/' app.py && git commit -qam tweak")
    a.turn()
    note = notes.read(a.repo, "HEAD").to_json()
    assert note["files"] == {"app.py": [[2, 2, call]]} and write not in note["steps"]


def test_several_steps_on_one_line_the_last_wins_and_sed_through_bash(agent_in):
    a = agent_in()
    write = a.write("app.py", "a = 1\nb = 1\nc = 1\n")
    a.turn()
    a.edit("app.py", "b = 1", "b = 2")
    a.turn()
    second = a.edit("app.py", "b = 2", "b = 3")
    a.turn()
    sed = a.bash("sed -i 's/c = 1/c = 9/' app.py")
    a.turn()
    note = notes.read(a.repo, a.commit(add=["app.py"])).to_json()
    assert per_line(note, "app.py") == {1: write, 2: second, 3: sed}
    assert note["steps"][sed]["input"] == {"command": "sed -i 's/c = 1/c = 9/' app.py"}


def test_two_tool_calls_in_one_response_each_gets_its_file(agent_in):
    a = agent_in()
    wa = a.write("a.py", "x = 1\n")
    wb = a.write("b.py", "y = 2\n")
    a.turn()  # one snapshot for both
    note = notes.read(a.repo, a.commit(add=["a.py", "b.py"])).to_json()
    assert per_line(note, "a.py") == {1: wa} and per_line(note, "b.py") == {1: wb}


def test_rename_then_edit_and_delete(agent_in):
    a = agent_in({"old.py": "one\ntwo\nthree\nfour\n", "gone.py": "bye\n"})
    a.bash("git mv old.py new.py && git rm -q gone.py")
    a.turn()
    edit = a.edit("new.py", "three", "THREE")
    a.turn()
    head = a.commit(add=["new.py"])
    note = notes.read(a.repo, head).to_json()
    # The rename is followed: only the edited line is new; a deleted file has no new-side lines.
    assert note["files"] == {"new.py": [[3, 3, edit]]}


def test_a_persons_edit_of_an_agent_line_and_pre_session_edits_are_human(tmp_path, hooks_folder):
    repo = init_repo(tmp_path / "repo", {"README.md": "# app\n"})
    with open(repo / "README.md", "a") as f:
        f.write("edited before the session\n")
    a = Agent(repo, tmp_path / "lit.db", hooks_folder)
    write = a.write("app.py", "one\ntwo\nthree\n")
    a.turn()
    a.end()
    (repo / "app.py").write_text("one\nTWO\nthree\n")  # a person, after the session
    note = notes.read(repo, a.person_commits(["app.py", "README.md"])).to_json()
    assert per_line(note, "app.py") == {1: write, 2: None, 3: write}
    assert per_line(note, "README.md") == {2: None}


def test_only_what_is_staged_is_mapped(agent_in):
    a = agent_in()
    write = a.write("app.py", "one\ntwo\n")
    a.write("other.py", "not staged\n")
    a.turn()
    sh(["git", "add", "app.py"], a.repo)
    a.edit("app.py", "two", "two, edited after staging")  # in the working tree, not in the commit
    a.turn()
    head = a.commit(add=[])
    note = notes.read(a.repo, head).to_json()
    assert list(note["files"]) == ["app.py"] and per_line(note, "app.py") == {1: write, 2: write}
    assert "edited after staging" in (a.repo / "app.py").read_text()


def test_no_commit_yet_and_binary_files(agent_in):
    a = agent_in(None)
    write = a.write("app.py", "print('hi')\n")
    a.tool("Bash", {"command": "make logo.png"}, lambda: (a.repo / "logo.png").write_bytes(bytes(range(256))))
    a.turn()
    head = a.commit(add=["app.py", "logo.png"])
    note = notes.read(a.repo, head).to_json()
    assert note["files"] == {"app.py": [[1, 1, write]]}  # a binary file has no lines
    assert sh(["git", "show", "--format=", "--name-only", head], a.repo).split() == ["app.py", "logo.png"]


def test_a_commit_without_the_agents_changes_gets_no_trailer(agent_in):
    a = agent_in()
    write = a.write("app.py", "x\n")
    a.turn()
    a.end()
    (a.repo / "TODO").write_text("by hand\n")
    a.person_commits(["TODO"])
    assert "Lit-Thread" not in sh(["git", "log", "-1", "--format=%B"], a.repo)
    assert notes.read(a.repo, "HEAD") is None
    assert a.db["threads"].get(a.thread)["status"] == "pending"
    # The agent's file, committed next, binds the pending thread.
    head = a.person_commits(["app.py"])
    assert notes.read(a.repo, head).to_json()["files"] == {"app.py": [[1, 1, write]]}
    assert a.db["threads"].get(a.thread)["commit_sha"] == head


def test_line_map_rows_match_the_note_and_compute_is_callable_alone(agent_in):
    a = agent_in()
    write = a.write("app.py", "one\ntwo\n")
    a.turn()
    head = a.commit(add=["app.py"])
    rows = list(a.db.query("SELECT path, line_start, line_end, step_id, thread_id FROM line_map WHERE commit_sha = ?",
                           [head]))
    assert rows == [{"path": "app.py", "line_start": 1, "line_end": 2, "step_id": write, "thread_id": a.thread}]
    # Once the note is written the session's chain restarts at its tip (snapshot.prune); the
    # snapshot commits themselves are still in the object store until git gc.
    assert subprocess.run(["git", "rev-parse", "--verify", "-q", snapshot.latest(a.repo, a.session) + "^"],
                          cwd=a.repo).returncode != 0
    tip = a.db.execute("SELECT commit_sha FROM snapshots WHERE thread_id = ? ORDER BY seq DESC LIMIT 1",
                       [a.thread]).fetchone()[0]
    lm = linemap.compute(a.repo, head, tip, linemap.step_chooser(a.db))
    assert lm.files == {"app.py": [[1, 2, write]]} and lm.lines() == 2
    # Without a snapshot chain every changed line is a person's.
    assert linemap.compute(a.repo, head, None, linemap.step_chooser(a.db)).files == {"app.py": [[1, 2, None]]}


def test_assisted_by_trailer_only_when_asked(agent_in):
    a = agent_in()
    a.write("app.py", "x\n")
    a.turn()
    sh(["git", "config", "lit.assistedBy", "true"], a.repo)
    a.commit(add=["app.py"])
    body = sh(["git", "log", "-1", "--format=%B"], a.repo)
    assert "Assisted-by: test-agent/1.0" in body and f"Lit-Thread: {a.thread}" in body
    assert link.trailer_threads(str(a.repo), "HEAD") == [a.thread]
