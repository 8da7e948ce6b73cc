"""Snapshots on real repositories: what they capture, and that the user's git state is untouched."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from lit_fixtures import init_repo

from lit import store
from lit.git import snapshot


def sh(cmd: list[str], cwd: Path) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout


# An ignored folder and pattern, a file to change, one to rename.
FILES = {".gitignore": "build/\n*.log\n", "a.py": "a = 1\n", "old.txt": "old\n"}


def files_of(repo: Path, commit: str) -> set[str]:
    return set(sh(["git", "ls-tree", "-r", "--name-only", commit], repo).split())


def user_state(repo: Path) -> tuple:
    return (sh(["git", "status", "--porcelain=v2", "--branch"], repo), sh(["git", "diff", "--cached"], repo),
            sh(["git", "stash", "list"], repo), sh(["git", "ls-files", "--stage"], repo))


def test_captures_the_working_tree_and_leaves_the_users_git_alone(tmp_path):
    repo = init_repo(tmp_path / "repo", FILES)
    (repo / "a.py").write_text("stashed\n")
    sh(["git", "stash", "-q"], repo)
    (repo / "a.py").write_text("a = 2\n")
    sh(["git", "add", "a.py"], repo)  # staged
    (repo / "a.py").write_text("a = 3\n")  # and changed again, unstaged
    (repo / "new.py").write_text("untracked\n")
    (repo / "build").mkdir()
    (repo / "build" / "out.o").write_bytes(b"\x7fELF")
    (repo / "debug.log").write_text("ignored\n")
    (repo / "logo.png").write_bytes(bytes(range(256)))
    sh(["git", "mv", "old.txt", "renamed.txt"], repo)
    before = user_state(repo)

    commit, tree, new = snapshot.take(repo, "s1", reason="start")
    assert new and user_state(repo) == before
    assert files_of(repo, commit) == {".gitignore", "a.py", "new.py", "logo.png", "renamed.txt"}
    assert sh(["git", "show", f"{commit}:a.py"], repo) == "a = 3\n"
    blob = subprocess.run(["git", "show", f"{commit}:logo.png"], cwd=repo, capture_output=True).stdout
    assert blob == bytes(range(256))
    assert sh(["git", "rev-parse", "refs/lit/snapshots/s1"], repo).strip() == commit

    (repo / "new.py").unlink()
    before = user_state(repo)
    second, _, new = snapshot.take(repo, "s1", reason="turn", step_ids=["t.3", "t.4"])
    assert new and "new.py" not in files_of(repo, second)
    assert sh(["git", "rev-parse", second + "^"], repo).strip() == commit  # a chain
    assert "Lit-Steps: t.3 t.4" in sh(["git", "log", "-1", "--format=%B", second], repo)
    assert user_state(repo) == before
    # Nothing changed: no new commit.
    assert snapshot.take(repo, "s1", reason="turn") == (second, files_tree(repo, second), False)


def files_tree(repo: Path, commit: str) -> str:
    return sh(["git", "rev-parse", commit + "^{tree}"], repo).strip()


def test_a_file_edited_in_the_second_the_users_index_was_written_is_captured(tmp_path):
    """git compares file times in whole seconds and trusts an entry only if its file is older than
    the index: the private index, seeded from the user's, keeps the user's index's time, so a
    same-size edit in that second is read (a copy dated now once hid it: a flaky test found it)."""
    repo = init_repo(tmp_path / "repo", {"f.py": "x = 1\n"})
    sh(["git", "config", "core.trustctime", "false"], repo)  # only mtime, size and inode, as in that second
    then = time.time_ns() - 10 * 10**9
    os.utime(repo / "f.py", ns=(then, then))
    sh(["git", "add", "f.py"], repo)  # the index's entry: the file as of ten seconds ago
    (repo / "f.py").write_text("x = 2\n")  # the same size, the same inode...
    os.utime(repo / "f.py", ns=(then, then))  # ...and the same time
    os.utime(repo / ".git" / "index", ns=(then, then))  # the index written in that second too
    assert sh(["git", "diff-files", "--name-only"], repo) == "f.py\n"  # git sees it (and writes no index)
    tree = snapshot.write_tree(repo, "racy")
    assert sh(["git", "cat-file", "-p", f"{tree}:f.py"], repo) == "x = 2\n"


def test_from_a_subdirectory_with_no_commit_yet(repo):
    (repo / "pkg").mkdir()
    (repo / "pkg" / "m.py").write_text("x\n")
    (repo / "top.py").write_text("y\n")
    commit, _, _ = snapshot.take(repo / "pkg", "s2", reason="start")
    assert files_of(repo, commit) == {"pkg/m.py", "top.py"}
    assert sh(["git", "status", "--porcelain"], repo) == "?? pkg/\n?? top.py\n"


def test_in_a_linked_worktree(tmp_path):
    repo = init_repo(tmp_path / "repo", FILES)
    wt = tmp_path / "wt"
    sh(["git", "worktree", "add", "-q", str(wt), "-b", "feature"], repo)
    (wt / "feature.py").write_text("f\n")
    commit, _, _ = snapshot.take(wt, "s3", reason="start")
    assert "feature.py" in files_of(wt, commit)
    assert sh(["git", "status", "--porcelain"], repo) == ""
    # The private index lives in the worktree's own git dir; the ref is shared by the repository.
    assert (Path(sh(["git", "rev-parse", "--absolute-git-dir"], wt).strip()) / "lit" / "index-s3").exists()
    assert sh(["git", "rev-parse", "refs/lit/snapshots/s3"], repo).strip() == commit


def test_two_processes_snapshotting_at_once_keep_one_chain(tmp_path):
    """The recorder's thread and a hook process both take snapshots: the ref is compare-and-swapped."""
    repo = init_repo(tmp_path / "repo", FILES)
    snapshot.take(repo, "s4", reason="start")
    errors: list[Exception] = []

    def worker(n: int) -> None:
        for i in range(6):
            (repo / f"w{n}-{i}.txt").write_text(f"{n} {i}\n")
            try:
                snapshot.take(repo, "s4", reason="turn", step_ids=[f"t.{n}{i}"])
            except Exception as e:  # noqa: BLE001 - collected for the assertion
                errors.append(e)

    tip = at_once(worker, repo, "s4", errors)
    assert {f"w{n}-{i}.txt" for n in range(3) for i in range(6)} <= files_of(repo, tip)


def at_once(worker, repo: Path, session: str, errors: list[Exception]) -> str:
    """worker(0), worker(1) and worker(2) in three threads at once; the chain's tip, once checked to
    be one line of commits (one parent each) taken without an error."""
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    tip = snapshot.latest(repo, session)
    chain = sh(["git", "rev-list", "--parents", tip], repo).splitlines()
    assert all(len(line.split()) <= 2 for line in chain)  # linear: one parent each
    return tip


def test_lit_writing_a_turn_itself_and_git_in_a_hook_keep_one_chain(tmp_path):
    """The recorder's watched chain writes its commits and moves the ref itself (lit.git.treeedit)
    while hooks in the same session snapshot through git: git's own ref lock keeps them one chain."""
    repo = init_repo(tmp_path / "repo", {**FILES, "w0.txt": "0\n"})
    watched = snapshot.Chain(repo, "s5", watched=True)
    snapshot.take(repo, "s5", reason="start", chain=watched)
    errors: list[Exception] = []

    def worker(n: int) -> None:
        for i in range(8):
            try:
                if n == 0:  # the recorder: an edit in place, lit writes it
                    with open(repo / "w0.txt", "a") as f:
                        f.write(f"{i}\n")
                    snapshot.take(repo, "s5", reason="turn", chain=watched)
                else:  # a hook: a new file, git reads the tree
                    (repo / f"w{n}-{i}.txt").write_text(f"{n} {i}\n")
                    snapshot.take(repo, "s5", reason="turn")
            except Exception as e:  # noqa: BLE001 - collected for the assertion
                errors.append(e)

    tip = at_once(worker, repo, "s5", errors)
    watched.close()
    assert {f"w{n}-{i}.txt" for n in (1, 2) for i in range(8)} <= files_of(repo, tip)
    assert sh(["git", "cat-file", "-p", f"{tip}:w0.txt"], repo) == (repo / "w0.txt").read_text()
    sh(["git", "fsck", "--strict", "--no-dangling"], repo)


def test_record_snapshot_keeps_a_row(tmp_path):
    repo = init_repo(tmp_path / "repo", FILES)
    db = store.connect(tmp_path / "lit.db")
    session = store.new_id()
    db["sessions"].insert({"id": session, "started_at": store.now(), "repo_root": str(repo)})
    thread = store.open_thread(db, session, str(repo))
    start = snapshot.record_snapshot(db, repo, session, thread, "start")
    (repo / "a.py").write_text("a = 5\n")
    turn = snapshot.record_snapshot(db, repo, session, thread, "turn", [f"{thread}.2"])
    rows = list(db.query("SELECT seq, commit_sha, reason, step_ids, thread_id FROM snapshots ORDER BY seq"))
    assert [(r["seq"], r["commit_sha"], r["reason"], r["step_ids"]) for r in rows] == [
        (1, start, "start", "[]"), (2, turn, "turn", f'["{thread}.2"]')]
    assert db["threads"].get(thread)["base_snapshot"] == start
    assert snapshot.record_snapshot(db, None, session, thread, "turn") is None  # outside a repository
    snapshot.forget_index(repo, session)
    assert not (repo / ".git" / "lit" / f"index-{session}").exists()
    assert os.listdir(repo / ".git" / "lit") == []


def all_objects(repo: Path) -> bytes:
    return subprocess.run(["git", "cat-file", "--batch-all-objects", "--batch"], cwd=repo, capture_output=True,
                          check=True).stdout


def test_secret_stores_are_never_snapshotted_even_when_not_ignored(tmp_path):
    repo = init_repo(tmp_path / "repo", FILES)
    (repo / "config").mkdir()
    (repo / "config" / "app.key").write_text("committed by the user\n")  # tracked: left out all the same
    (repo / "kept.log").write_text("tracked though *.log is ignored\n")
    sh(["git", "add", "-f", "config/app.key", "kept.log"], repo)
    sh(["git", "commit", "-q", "-m", "key"], repo)
    (repo / "config" / "app.key").write_text("key-only-0\n")
    stores = {".env": "SECRET_KEY=env-only-1", ".env.local": "TOKEN=env-only-2", "id_ed25519": "ssh-only-3",
              "deploy/id_rsa": "ssh-only-4", "certs/server.pem": "pem-only-5", "certs/tls.key": "key-only-6",
              ".netrc": "machine x password netrc-only-7", "infra/prod.tfvars": "tf-only-8"}
    for name, text in stores.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text + "\n")
    (repo / ".env.example").write_text("SECRET_KEY=\n")  # a template: code, kept
    (repo / "id_utils.py").write_text("x = 1\n")  # not a key
    commit, _, _ = snapshot.take(repo, "s1", reason="start")
    (repo / ".env").write_text("SECRET_KEY=env-only-9\n")
    (repo / ".env.example").write_text("SECRET_KEY=\nDEBUG=\n")
    commit, _, new = snapshot.take(repo, "s1", reason="turn")
    assert new and files_of(repo, commit) == {".gitignore", "a.py", "old.txt", ".env.example", "id_utils.py",
                                              "kept.log"}
    assert sh(["git", "show", f"{commit}:.env.example"], repo) == "SECRET_KEY=\nDEBUG=\n"
    objects = all_objects(repo)
    assert [t for t in [*stores.values(), "env-only-9", "key-only-0"] if t.encode() in objects] == []


def test_snapshots_are_pruned_once_the_note_is_written(tmp_path):
    """A bound thread's snapshots go: the chain restarts at its tip for the next thread, and the ref
    goes when the session is over with nothing left to bind."""
    repo = init_repo(tmp_path / "repo", FILES)
    db = store.connect(tmp_path / "lit.db")
    session = store.new_id()
    db["sessions"].insert({"id": session, "started_at": store.now(), "repo_root": str(repo)})
    first = store.open_thread(db, session, str(repo))
    snapshot.record_snapshot(db, repo, session, first, "start")
    (repo / "a.py").write_text("a = 'draft'\n")
    snapshot.record_snapshot(db, repo, session, first, "turn", [f"{first}.2"])
    (repo / "a.py").write_text("a = 2\n")
    tip = snapshot.record_snapshot(db, repo, session, first, "turn", [f"{first}.3"])
    chain = sh(["git", "rev-list", snapshot.snapshot_ref(session)], repo).split()
    assert len(chain) == 3

    db.execute("UPDATE threads SET status = 'bound' WHERE id = ?", [first])
    second = store.open_thread(db, session, str(repo), base_snapshot=tip)
    snapshot.prune(db, repo, session)
    root = snapshot.latest(repo, session)
    assert sh(["git", "rev-list", snapshot.snapshot_ref(session)], repo).split() == [root]
    assert files_tree(repo, root) == files_tree(repo, tip) and db["threads"].get(second)["base_snapshot"] == root
    (repo / "a.py").write_text("a = 3\n")
    turn = snapshot.record_snapshot(db, repo, session, second, "turn", [f"{second}.2"])
    assert sh(["git", "rev-list", snapshot.snapshot_ref(session)], repo).split() == [turn, root]
    snapshot.prune(db, repo, session)  # the open thread has a snapshot of its own: its chain stays
    assert snapshot.latest(repo, session) == turn

    db.execute("UPDATE threads SET status = 'bound' WHERE id = ?", [second])
    snapshot.prune(db, repo, session)  # bound, but the session goes on: a next thread may come
    assert snapshot.latest(repo, session) is not None
    db["sessions"].update(session, {"ended_at": store.now()})
    snapshot.prune(db, repo, session)
    assert snapshot.latest(repo, session) is None
    assert sh(["git", "for-each-ref", "refs/lit/"], repo) == ""


def git_commands(trace: Path) -> list[str]:
    """The git commands a GIT_TRACE file shows were run (`add`, `write-tree`, `log`...)."""
    out = []
    for line in trace.read_text().splitlines():
        if "trace: built-in: git " in line:
            words = line.split("trace: built-in: git ", 1)[1].split()
            out.append(next(w for w in words if not w.startswith("-") and "=" not in w))
    return out


def test_a_turn_in_which_nothing_changed_runs_only_git_add_and_makes_no_commit(tmp_path, monkeypatch):
    repo = init_repo(tmp_path / "repo", FILES)
    chain = snapshot.Chain(repo, "s5")
    start, _, _ = snapshot.take(repo, "s5", reason="start", chain=chain)
    (repo / "a.py").write_text("a = 2\n")
    turn, tree, new = snapshot.take(repo, "s5", reason="turn", step_ids=["t.2"], chain=chain)
    assert new
    # git rewrites an index written in the same second as a file it lists changed ("racy git"),
    # until one written in a later second: the first turn after a change may still write-tree.
    time.sleep(1.1)
    assert snapshot.take(repo, "s5", reason="turn", chain=chain) == (turn, tree, False)
    trace = tmp_path / "trace"
    monkeypatch.setenv("GIT_TRACE", str(trace))
    assert snapshot.take(repo, "s5", reason="turn", step_ids=["t.3"], chain=chain) == (turn, tree, False)
    assert git_commands(trace) == ["add"]  # the tip read from its ref file; the index as add left it
    trace.unlink()
    (repo / "b.py").write_text("b = 1\n")
    third, _, new = snapshot.take(repo, "s5", reason="turn", step_ids=["t.4"], chain=chain)
    assert new and git_commands(trace) == ["add", "write-tree", "commit-tree", "update-ref"]
    assert files_of(repo, third) == files_of(repo, turn) | {"b.py"}
    assert sh(["git", "rev-list", "--count", third], repo).strip() == "3"  # start, turn, third
    assert start in sh(["git", "rev-list", third], repo).split()


def test_a_snapshot_another_process_took_is_the_parent_of_the_next(tmp_path):
    """A hook (another process, another Chain) moves the ref: the recorder's chain notices, never
    skips a change back to the tree it saw last, and never forks the chain."""
    repo = init_repo(tmp_path / "repo", FILES)
    recorder = snapshot.Chain(repo, "s6")
    snapshot.take(repo, "s6", reason="start", chain=recorder)
    seen, tree, _ = snapshot.take(repo, "s6", reason="turn", chain=recorder)
    (repo / "a.py").write_text("a = 2\n")
    hook, _, new = snapshot.take(repo, "s6", reason="commit")  # a hook process: no chain of its own
    assert new
    (repo / "a.py").write_text(FILES["a.py"])  # back to the tree the recorder's chain saw last
    back, back_tree, new = snapshot.take(repo, "s6", reason="turn", step_ids=["t.5"], chain=recorder)
    assert new and back_tree == tree
    assert sh(["git", "rev-parse", back + "^"], repo).strip() == hook


# --- a turn that changed nothing runs no git (lit.git.watch) -----------------------------------------


def git_shim(tmp_path: Path) -> Path:
    """A `git` first on PATH that logs each command, then runs the real one."""
    real = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True, check=True).stdout.strip()
    shim_dir = tmp_path / "shim"
    shim_dir.mkdir()
    log = tmp_path / "git.log"
    shim = shim_dir / "git"
    shim.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{real}" "$@"\n')
    shim.chmod(0o755)
    return log


def added(ran: list[str]) -> bool:
    return any(" add -A " in f" {r} " for r in ran)


def test_a_turn_that_changed_nothing_runs_no_git_and_any_change_is_seen(tmp_path, monkeypatch):
    repo = init_repo(tmp_path / "repo", {**FILES, "pkg/mod.py": "x = 1\n"})
    (repo / "build" / "out").mkdir(parents=True)
    watched = snapshot.Chain(repo, "watched", watched=True)
    first = watched.write_tree()
    assert watched.watch is not None  # Linux: inotify
    log = git_shim(tmp_path)
    monkeypatch.setenv("PATH", f"{log.parent / 'shim'}{os.pathsep}{os.environ['PATH']}")

    def turn() -> tuple[str, list[str]]:
        """The watched chain's tree, the git commands it ran, and the tree a full `git add -A` gives."""
        log.write_text("")
        tree = watched.write_tree()
        ran = log.read_text().splitlines()
        assert tree == snapshot.Chain(repo, "truth").write_tree()  # exactly what git reads
        return tree, ran

    assert turn() == (first, [])  # nothing changed: no git
    (repo / "build" / "out" / "bin").write_text("ignored\n")  # in an ignored directory: not even watched
    assert turn() == (first, [])
    (repo / "run.log").write_text("ignored\n")  # a new file where others are not ignored: git says if it is
    tree, ran = turn()
    assert tree == first and not added(ran) and any("check-ignore" in r for r in ran)
    assert turn() == (first, [])
    changes = [
        lambda: (repo / "a.py").write_text("a = 2\n"),                      # an edit
        lambda: (repo / "pkg" / "deep" / "new").mkdir(parents=True),        # new directories...
        lambda: (repo / "pkg" / "deep" / "new" / "n.py").write_text("n\n"),  # ...and a file in one
        lambda: (repo / "fresh" / "x.log").mkdir(parents=True),             # a directory holding only ignored...
        lambda: (repo / "fresh" / "f.py").write_text("f\n"),               # ...is not ignored: a file there counts
        lambda: ((repo / ".git" / "info").mkdir(exist_ok=True), (repo / ".git" / "info" / "exclude").write_text(
            "later.txt\n"), (repo / "later.txt").write_text("x\n")),      # excluded by the repository...
        lambda: (repo / ".git" / "info" / "exclude").write_text(""),       # ...then not: no file changed
        lambda: (repo / "pkg" / "deep" / "new" / "n.py").write_text("m\n"),
        lambda: (repo / "pkg" / "mod.py").chmod(0o755),                     # the executable bit
        lambda: (repo / "old.txt").rename(repo / "pkg" / "new.txt"),         # a move
        lambda: (repo / "pkg" / "deep").rename(repo / "moved"),               # a directory moved
        lambda: (repo / "moved" / "new" / "n.py").write_text("o\n"),        # and written in after
        lambda: (repo / "moved" / "new" / "n.py").unlink(),                  # a deletion
        lambda: (repo / ".gitignore").write_text("*.log\n"),                # build/ is no longer ignored
        lambda: (repo / "build" / "out" / "bin").write_text("now seen\n"),  # so a change there counts
    ]
    # Files changed in place (written, chmod, removed, renamed into a known directory) are lit's to
    # write (lit.git.treeedit); directories, rule files and files in new directories are git's.
    written_by_lit = (changes[0], changes[7], changes[8], changes[9], changes[11], changes[12], changes[14])
    for change in changes:
        before = watched.tree
        change()
        tree, ran = turn()
        # An empty directory is no tree; an excluded file is not in it.
        assert tree != before or change in (changes[1], changes[3], changes[5])
        assert added(ran) != (change in written_by_lit), (changes.index(change), ran)
        assert not any("write-tree" in r for r in ran) or change not in written_by_lit
        assert turn() == (tree, [])  # and once seen, nothing again
    watched.close()


def test_a_turn_that_edited_files_runs_no_git_and_its_snapshot_is_the_one_git_would_make(tmp_path, monkeypatch):
    """The agent's usual turn (files edited, one removed, one made executable): lit writes the blobs,
    the trees and the chain's commit itself, byte for byte what git would have written."""
    repo = init_repo(tmp_path / "repo", {**FILES, "pkg/mod.py": "x = 1\n", "pkg/sub/deep.py": "d\n"})
    watched = snapshot.Chain(repo, "watched", watched=True)
    snapshot.take(repo, "watched", reason="start", chain=watched)
    (repo / "a.py").write_text("a = 2\n")
    snapshot.take(repo, "watched", reason="turn", chain=watched)  # the first edit reads the tree once (ls-tree)
    log = git_shim(tmp_path)
    monkeypatch.setenv("PATH", f"{log.parent / 'shim'}{os.pathsep}{os.environ['PATH']}")
    ref = snapshot.snapshot_ref("watched")
    for edit in (lambda: (repo / "pkg" / "mod.py").write_text("x = 2\n"),
                 lambda: (repo / "pkg" / "sub" / "deep.py").unlink(),  # its directory goes with it
                 lambda: (repo / "a.py").chmod(0o755),
                 lambda: (repo / "a.py").write_text("a = 3\n" * 1000)):
        parent = sh(["git", "rev-parse", ref], repo).strip()
        edit()
        log.write_text("")
        commit, tree, new = snapshot.take(repo, "watched", reason="turn", chain=watched)
        assert new and log.read_text() == ""  # no git process at all
        assert sh(["git", "rev-parse", ref], repo).strip() == commit
        assert sh(["git", "rev-parse", commit + "^", commit + "^{tree}"], repo).split() == [parent, tree]
        assert tree == snapshot.Chain(repo, "truth").write_tree()
    monkeypatch.undo()
    sh(["git", "fsck", "--strict", "--no-dangling"], repo)  # every object lit wrote is well formed
    assert "pkg/sub" not in sh(["git", "ls-tree", "-r", "--name-only", ref], repo)
    watched.close()


def test_new_files_are_taken_or_left_out_by_git_s_rules_without_starting_git(tmp_path, monkeypatch):
    """A turn that made files asks the ignore check lit keeps running (git check-ignore --stdin): the
    rules' last match decides, secret stores stay out, and no git process starts for it."""
    repo = init_repo(tmp_path / "repo", {".gitignore": "*.log\n!keep.log\n", "src/a.py": "a\n"})
    watched = snapshot.Chain(repo, "watched", watched=True)
    watched.write_tree()
    (repo / "first.txt").write_text("starts the check\n")
    watched.write_tree()
    log = git_shim(tmp_path)
    monkeypatch.setenv("PATH", f"{log.parent / 'shim'}{os.pathsep}{os.environ['PATH']}")
    made = {"src/b.py": True, "src/run.log": False, "keep.log": True, "src/.env": False, "id_rsa": False,
            ".env.example": True, "src/notes.txt": True}
    for path in made:
        (repo / path).write_text(f"{path}\n")
    log.write_text("")
    tree = watched.write_tree()
    assert log.read_text() == ""
    listed = set(sh(["git", "ls-tree", "-r", "--name-only", tree], repo).split())
    assert {p for p, kept in made.items() if kept} <= listed
    assert not {p for p, kept in made.items() if not kept} & listed
    monkeypatch.undo()
    assert tree == snapshot.Chain(repo, "truth").write_tree()
    process = watched._edit._ignores.proc  # noqa: SLF001 - the check's process, to see it stop
    watched.close()
    assert process.poll() is not None


def test_a_file_lit_wrote_into_the_chain_stays_in_it_once_ignored_as_git_keeps_a_tracked_file(tmp_path):
    """git keeps a file it has taken even when a rule later ignores it; a file lit took itself
    (a new file, written without git) is kept the same way, by the recorder and by a hook."""
    repo = init_repo(tmp_path / "repo", {"src/a.py": "a\n"})
    watched = snapshot.Chain(repo, "watched", watched=True)
    watched.write_tree()
    (repo / "src" / "out.tmp").write_text("made by the agent\n")
    assert "src/out.tmp" in files_of(repo, watched.write_tree())  # written by lit
    (repo / ".gitignore").write_text("*.tmp\n")
    (repo / "src" / "later.tmp").write_text("ignored from the start\n")
    tree = watched.write_tree()  # a rule changed: git reads the tree
    assert "src/out.tmp" in files_of(repo, tree) and "src/later.tmp" not in files_of(repo, tree)
    (repo / "src" / "a.py").write_text("b\n")
    watched.write_tree()
    (repo / "src" / "out2.tmp").write_text("x\n")
    (repo / "src" / "keep.py").write_text("k\n")
    watched.write_tree()
    hook = snapshot.write_tree(repo, "watched")  # a hook's snapshot, git on the same private index
    assert {"src/out.tmp", "src/keep.py"} <= files_of(repo, hook) and "src/out2.tmp" not in files_of(repo, hook)
    assert hook == watched.write_tree()
    watched.close()


def test_file_names_git_quotes_are_written_as_git_writes_them(tmp_path):
    """Names with a tab, a newline, a quote, a leading dash, spaces, non-ASCII and bytes that are
    not UTF-8: made, edited and removed by lit itself, each tree the one git gives."""
    repo = init_repo(tmp_path / "repo", {"src/a.py": "a\n"})
    watched = snapshot.Chain(repo, "watched", watched=True)
    watched.write_tree()
    (repo / "src" / "warm.py").write_text("w\n")
    watched.write_tree()
    names = [b"tab\there.py", b"new\nline.py", b'quote".py', b"-dash.py", b"sp ace.py", "\u00e9t\u00e9.py".encode(),
             b"latin\xe9.py", b"back\\slash.py"]
    src = os.fsencode(repo / "src")
    for name in names:
        with open(os.path.join(src, name), "w") as f:
            f.write("made\n")
    for step in ("made", "edited", "removed"):
        if step == "edited":
            for name in names:
                with open(os.path.join(src, name), "a") as f:
                    f.write("more\n")
        elif step == "removed":
            for name in names[::2]:
                os.unlink(os.path.join(src, name))
        tree = watched.write_tree()
        assert watched._edit is not None, step  # noqa: SLF001 - lit wrote it, git did not
        assert tree == snapshot.Chain(repo, "truth").write_tree(), step
    watched.close()


def test_content_git_would_convert_is_left_to_git(tmp_path, monkeypatch):
    """A .gitattributes that normalizes line ends: git's blob is not the file's bytes, so git reads
    the tree (and the snapshot is the one git makes)."""
    repo = init_repo(tmp_path / "repo", {".gitattributes": "*.txt text eol=lf\n", "notes.txt": "one\n"})
    watched = snapshot.Chain(repo, "watched", watched=True)
    watched.write_tree()
    log = git_shim(tmp_path)
    monkeypatch.setenv("PATH", f"{log.parent / 'shim'}{os.pathsep}{os.environ['PATH']}")
    (repo / "notes.txt").write_bytes(b"one\r\ntwo\r\n")
    tree = watched.write_tree()
    assert added(log.read_text().splitlines())
    assert tree == snapshot.Chain(repo, "truth").write_tree()
    assert sh(["git", "cat-file", "-p", f"{tree}:notes.txt"], repo) == "one\ntwo\n"
    watched.close()


# Seeds that once found a bug: 1, a directory taken as ignored for what it held; 2, a file lit
# wrote into a tree and the index did not hold, dropped by git once a rule ignored it.
@pytest.mark.parametrize("seed", [1, 2])
def test_the_watched_tree_is_the_tree_git_reads_after_any_sequence_of_changes(tmp_path, seed):
    """Random file work (seeded: the same every run), a watched turn after each step: its tree is
    always the one a full `git add -A` gives, whatever the kernel reported and in what order."""
    import random
    import shutil

    rng = random.Random(seed)
    repo = init_repo(tmp_path / "repo", {".gitignore": "ignored/\n*.tmp\n", "src/a.py": "a\n"})
    watched = snapshot.Chain(repo, "watched", watched=True)
    watched.write_tree()
    assert watched.watch is not None

    def walk() -> list[tuple[Path, list[str], list[str]]]:
        out = []
        for top, subdirs, names in os.walk(repo):  # symbolic links are not followed
            subdirs[:] = sorted(d for d in subdirs if d != ".git" and not os.path.islink(os.path.join(top, d)))
            out.append((Path(top), subdirs, sorted(n for n in names if not os.path.islink(os.path.join(top, n)))))
        return out

    def dirs() -> list[Path]:
        return [top for top, _, _ in walk()]

    def files() -> list[Path]:
        return [top / n for top, _, names in walk() for n in names]

    def name() -> str:
        return rng.choice(["a", "b", "c", "ignored", "deep"]) + rng.choice(["", ".py", ".tmp", "2"])

    def step() -> None:
        kind = rng.choice(["write", "write", "append", "delete", "mkdir", "rmtree", "move", "move", "chmod",
                           "link", "gitignore"])
        here = rng.choice(dirs())
        existing = files()
        target = here / name()
        if kind == "write" and not os.path.lexists(target) or kind == "write" and target.is_file():
            target.write_text(f"{rng.random()}\n")
        elif kind == "append" and existing:
            with open(rng.choice(existing), "a") as f:
                f.write("more\n")
        elif kind == "delete" and existing:
            rng.choice(existing).unlink()
        elif kind == "mkdir" and not os.path.lexists(target):
            (target / name()).mkdir(parents=True)
        elif kind == "rmtree" and here != repo:
            shutil.rmtree(here)
        elif kind == "move":
            source = rng.choice(existing + dirs()[1:]) if existing or len(dirs()) > 1 else None
            target = rng.choice(dirs()) / name()
            if source and not os.path.lexists(target) and not str(target).startswith(str(source) + os.sep):
                source.rename(target)
        elif kind == "chmod" and existing:
            path = rng.choice(existing)
            path.chmod(path.stat().st_mode ^ 0o100)
        elif kind == "link" and not os.path.lexists(here / "link"):
            (here / "link").symlink_to(name())
        elif kind == "gitignore":
            (repo / ".gitignore").write_text(rng.choice(["ignored/\n*.tmp\n", "*.tmp\n", "ignored/\ndeep/\n"]))

    for _ in range(150):
        step()
        assert watched.write_tree() == snapshot.Chain(repo, "truth").write_tree()
    watched.close()


def test_a_repository_with_submodules_is_not_watched(tmp_path):
    """A commit inside a submodule changes the tree (its gitlink) without any file of the working
    tree changing: such a repository asks git every turn."""
    repo = init_repo(tmp_path / "repo", FILES)
    watched = snapshot.Chain(repo, "watched", watched=True)
    watched.write_tree()
    assert watched.watch is not None and watched.watch.changes() == set()
    (repo / ".gitmodules").write_text('[submodule "lib"]\n\tpath = lib\n\turl = ../lib\n')
    assert watched.watch.changes() is None and watched.watch.changes() is None  # from now on, always
    again = snapshot.Chain(repo, "again", watched=True)
    again.write_tree()
    assert again.watch is None
