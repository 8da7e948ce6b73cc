"""The line map, line by line, for each way an agent and a person change files before a commit.

No relay here: a session, its thread and its steps are written with the store's functions, and the
snapshots are taken in the order the recorder takes them (tool calls run, then a `turn` snapshot
naming them), so each case runs in a second. The commits are real `git commit` runs through lit's
session hooks (the environment `lit record` gives its child).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from lit_fixtures import init_repo

from lit import store
from lit.git import hooks, linemap, link, notes, snapshot


def sh(cmd: list[str], cwd: Path, env: dict | None = None) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}).stdout


class Agent:
    """A recorded session as the recorder writes it: steps in the DB, a snapshot per turn."""

    def __init__(self, repo: Path, db_path: Path, hooks_folder: Path):
        self.repo, self.db_path = repo, db_path
        self.db = store.connect(db_path)
        self.session = store.new_id()
        self.db["sessions"].insert({"id": self.session, "started_at": store.now(), "repo_root": str(repo),
                                    "cwd": str(repo), "argv": "[]", "agent": "test-agent/1.0"})
        self.thread = store.open_thread(self.db, self.session, str(repo))
        snapshot.record_snapshot(self.db, repo, self.session, self.thread, "start")
        self.env = {"LIT_SESSION": self.session, "LIT_DB": str(db_path),
                    **hooks.session_env(os.environ, hooks_folder)}
        self.pending: list[str] = []
        self.prompt("do the work")

    def _step(self, kind: str, **fields) -> str:
        tid = store.current_thread(self.db, self.session)
        seq = store.next_step_seq(self.db, tid)
        sid = f"{tid}.{seq}"
        self.db["steps"].insert({"id": sid, "thread_id": tid, "session_id": self.session, "seq": seq,
                                 "created_at": store.now(), "kind": kind, **fields})
        return sid

    def prompt(self, text: str) -> str:
        return self._step("prompt", text=text)

    def tool(self, name: str, tool_input: dict, effect=None, why: str = "") -> str:
        """A tool call; `effect` is what the tool does to the working tree when it runs."""
        if why:
            self._step("thinking", text=why)
        use_id = "toolu_" + store.new_id()
        sid = self._step("tool_call", tool_name=name, tool_input=json.dumps(tool_input), tool_use_id=use_id)
        if effect:
            effect()
        self.pending.append(sid)
        return sid

    def turn(self) -> None:
        """The next request carries the tool results: the recorder snapshots, then records them."""
        tid = store.current_thread(self.db, self.session)
        snapshot.record_snapshot(self.db, self.repo, self.session, tid, "turn", self.pending)
        for sid in self.pending:
            use_id = self.db["steps"].get(sid)["tool_use_id"]
            self._step("tool_result", text="ok", tool_use_id=use_id)
        self.pending = []

    def write(self, path: str, text: str) -> str:
        return self.tool("Write", {"file_path": path, "content": text}, lambda: (self.repo / path).write_text(text))

    def edit(self, path: str, old: str, new: str) -> str:
        def effect():
            f = self.repo / path
            f.write_text(f.read_text().replace(old, new, 1))
        return self.tool("Edit", {"file_path": path, "old_string": old, "new_string": new}, effect)

    def bash(self, command: str) -> str:
        return self.tool("Bash", {"command": command}, lambda: sh(["sh", "-c", command], self.repo, self.env))

    def commit(self, message: str = "work", add: list[str] | None = None) -> str:
        """The agent's own `git commit` through its shell tool: the hooks run inside the tool call."""
        def effect():
            if add is not None:
                sh(["git", "add", "--", *add], self.repo, self.env)
            sh(["git", "commit", "-q", "-m", message], self.repo, self.env)
        self.tool("Bash", {"command": f"git commit -m {message!r}"}, effect)
        self.turn()
        return sh(["git", "rev-parse", "HEAD"], self.repo).strip()

    def end(self) -> None:
        """What the recorder does at exit: an end snapshot, the open thread left pending."""
        snapshot.record_snapshot(self.db, self.repo, self.session, store.current_thread(self.db, self.session), "end")
        with self.db.conn:
            self.db.execute("UPDATE threads SET status = 'pending', ended_at = ? WHERE session_id = ?"
                            " AND status = 'open'", [store.now(), self.session])

    def person_commits(self, add: list[str], message: str = "reviewed") -> str:
        """After the session, with `lit hooks install`: no LIT_SESSION, only the DB."""
        hooks.install(self.repo)
        env = {"LIT_DB": str(self.db_path)}
        sh(["git", "add", "--", *add], self.repo, env)
        sh(["git", "commit", "-q", "-m", message], self.repo, env)
        return sh(["git", "rev-parse", "HEAD"], self.repo).strip()


README = {"README.md": "# app\n"}


@pytest.fixture
def hooks_folder():
    folder = hooks.make_session_hooks(None)
    yield folder
    hooks.remove_session_hooks(folder)


@pytest.fixture
def agent_in(tmp_path, hooks_folder):
    def start(files: dict[str, str] | None = README) -> Agent:
        repo = init_repo(tmp_path / "repo", files)
        return Agent(repo, tmp_path / "lit.db", hooks_folder)
    return start


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
    note = notes.read(a.repo, head)
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
    assert notes.read(a.repo, head)["files"] == {"app.py": [[1, 1, write]]}
    nxt = store.current_thread(a.db, a.session)
    assert nxt != a.thread and a.db["threads"].get(nxt)["base_snapshot"] == snapshot.latest(a.repo, a.session)
    # The next commit is bound to the next thread; lines of the first commit are not in its diff.
    second = a.edit("app.py", "one\n", "one\ntwo\n")
    a.turn()
    head2 = a.commit(add=["app.py"])
    note2 = notes.read(a.repo, head2)
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
    note = notes.read(a.repo, "HEAD")
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
    note = notes.read(a.repo, a.commit(add=["app.py"]))
    assert per_line(note, "app.py") == {1: write, 2: second, 3: sed}
    assert note["steps"][sed]["input"] == {"command": "sed -i 's/c = 1/c = 9/' app.py"}


def test_two_tool_calls_in_one_response_each_gets_its_file(agent_in):
    a = agent_in()
    wa = a.write("a.py", "x = 1\n")
    wb = a.write("b.py", "y = 2\n")
    a.turn()  # one snapshot for both
    note = notes.read(a.repo, a.commit(add=["a.py", "b.py"]))
    assert per_line(note, "a.py") == {1: wa} and per_line(note, "b.py") == {1: wb}


def test_rename_then_edit_and_delete(agent_in):
    a = agent_in({"old.py": "one\ntwo\nthree\nfour\n", "gone.py": "bye\n"})
    a.bash("git mv old.py new.py && git rm -q gone.py")
    a.turn()
    edit = a.edit("new.py", "three", "THREE")
    a.turn()
    head = a.commit(add=["new.py"])
    note = notes.read(a.repo, head)
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
    note = notes.read(repo, a.person_commits(["app.py", "README.md"]))
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
    note = notes.read(a.repo, head)
    assert list(note["files"]) == ["app.py"] and per_line(note, "app.py") == {1: write, 2: write}
    assert "edited after staging" in (a.repo / "app.py").read_text()


def test_no_commit_yet_and_binary_files(agent_in):
    a = agent_in(None)
    write = a.write("app.py", "print('hi')\n")
    a.tool("Bash", {"command": "make logo.png"}, lambda: (a.repo / "logo.png").write_bytes(bytes(range(256))))
    a.turn()
    head = a.commit(add=["app.py", "logo.png"])
    note = notes.read(a.repo, head)
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
    assert notes.read(a.repo, head)["files"] == {"app.py": [[1, 1, write]]}
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
