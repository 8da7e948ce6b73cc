"""lit's git hooks: the user's own hooks keep working (and keep refusing), install is idempotent,
uninstall puts back exactly what was there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lit.git import hooks


def sh(cmd: list[str], cwd: Path, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, check=check, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def user_hook(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    hook = folder / name
    hook.write_text("#!/bin/sh\n" + body + "\n")
    hook.chmod(0o755)
    return hook


def commit(repo: Path, name: str, env: dict | None = None) -> subprocess.CompletedProcess:
    (repo / name).write_text(name + "\n")
    sh(["git", "add", name], repo, env)
    return sh(["git", "commit", "-q", "-m", f"add {name}"], repo, env, check=False)


@pytest.fixture
def session(tmp_path):
    folder = hooks.make_session_hooks(None)
    env = {"LIT_DB": str(tmp_path / "lit.db"), "LIT_SESSION": "000000000000", "GIT_CONFIG_COUNT": "1",
           "GIT_CONFIG_KEY_0": "user.signingkey", "GIT_CONFIG_VALUE_0": "ABC123"}
    env.update(hooks.session_env(env, folder))
    yield folder, env
    hooks.remove_session_hooks(folder)


def test_session_hooks_run_the_users_hooks_and_keep_their_refusals(tmp_path, session, repo):
    folder, env = session
    user = repo / ".git" / "hooks"
    user_hook(user, "pre-commit", 'grep -q forbidden "$(git diff --cached --name-only)" 2>/dev/null && '
                                  '{ echo "pre-commit: forbidden" >&2; exit 1; }; exit 0')
    user_hook(user, "commit-msg", 'grep -q WIP "$1" && { echo "commit-msg: no WIP" >&2; exit 1; }; exit 0')
    user_hook(user, "post-commit", 'echo ran >> .git/post-commit-ran')

    refused = commit(repo, "forbidden", env)
    assert refused.returncode != 0 and "pre-commit: forbidden" in refused.stderr
    (repo / "forbidden").unlink()
    sh(["git", "rm", "-q", "--cached", "forbidden"], repo)
    (repo / "ok.txt").write_text("ok\n")
    sh(["git", "add", "ok.txt"], repo, env)
    wip = sh(["git", "commit", "-q", "-m", "WIP"], repo, env, check=False)
    assert wip.returncode != 0 and "commit-msg: no WIP" in wip.stderr
    assert commit(repo, "fine.txt", env).returncode == 0
    assert (repo / ".git" / "post-commit-ran").read_text() == "ran\n"
    # The user's own GIT_CONFIG_* entry is kept beside lit's.
    assert sh(["git", "config", "user.signingkey"], repo, env).stdout.strip() == "ABC123"
    assert sh(["git", "config", "core.hooksPath"], repo, env).stdout.strip() == str(folder)
    assert sh(["git", "config", "notes.rewriteRef"], repo, env).stdout.strip() == "refs/notes/lit"


def test_the_users_hooks_path_is_found_under_lits_override(tmp_path, session, monkeypatch, repo):
    folder, env = session
    sh(["git", "config", "core.hooksPath", "githooks"], repo)
    user_hook(repo / "githooks", "pre-commit", 'echo "husky says no" >&2; exit 1')
    refused = commit(repo, "a.txt", env)
    assert refused.returncode != 0 and "husky says no" in refused.stderr
    for key, value in env.items():  # as inside the child of lit record
        monkeypatch.setenv(key, value)
    assert hooks.user_hooks_dir(repo) == repo / "githooks"


def test_install_is_idempotent_and_uninstall_restores_exactly(tmp_path, repo):
    user = repo / ".git" / "hooks"
    mine = user_hook(user, "post-commit", "echo mine >> .git/mine")
    mine.chmod(0o750)
    before = (mine.read_bytes(), mine.stat().st_mode)
    env = {"LIT_DB": str(tmp_path / "lit.db")}

    assert hooks.install(repo) == list(hooks.LIT_HOOKS)
    assert hooks.install(repo) == list(hooks.LIT_HOOKS)  # twice: the same
    assert hooks.installed(repo)
    assert (user / "post-commit.lit-chained").read_bytes() == before[0]
    assert sh(["git", "config", "--get-all", "notes.rewriteRef"], repo).stdout.split() == ["refs/notes/lit"]
    assert commit(repo, "a.txt", env).returncode == 0
    assert (repo / ".git" / "mine").read_text() == "mine\n"  # the chained hook still runs

    hooks.uninstall(repo)
    assert not hooks.installed(repo)
    assert (mine.read_bytes(), mine.stat().st_mode) == before
    assert not (user / "prepare-commit-msg").exists() and not (user / "post-commit.lit-chained").exists()
    assert sh(["git", "config", "--get-all", "notes.rewriteRef"], repo, check=False).stdout == ""
    # The notes ref install made (so that amend says nothing) holds no note: it goes too.
    assert sh(["git", "rev-parse", "-q", "--verify", "refs/notes/lit"], repo, check=False).stdout == ""


def test_uninstall_keeps_a_rewrite_ref_the_user_had_set(tmp_path, repo):
    sh(["git", "config", "notes.rewriteRef", "refs/notes/lit"], repo)
    hooks.install(repo)
    hooks.uninstall(repo)
    assert sh(["git", "config", "--get-all", "notes.rewriteRef"], repo).stdout.split() == ["refs/notes/lit"]


def test_session_hook_scripts_carry_no_path_of_this_machine_in_the_repo():
    # Generated at run time (so the python path is right), never committed.
    assert not list((Path(hooks.__file__).parent).glob("*-commit*"))
    text = hooks.session_script("post-commit")
    assert "-m lit.git.hookrun post-commit" in text


def _trailer(repo: Path, rev: str = "HEAD") -> str:
    return sh(["git", "log", "-1", "--format=%(trailers:key=Lit-Thread,valueonly)", rev], repo).stdout.strip()


@pytest.mark.parametrize("how", ["installed", "session"])
def test_a_new_message_keeps_the_lit_thread_trailer(tmp_path, session, repo, how):
    """`git commit --amend -m "new words"` and a reword in `git rebase -i` write a new message; the
    commit they replace had a Lit-Thread trailer, and the new one keeps it (real git, lit's hooks)."""
    env = session[1] if how == "session" else {"LIT_DB": str(tmp_path / "lit.db")}
    if how == "installed":
        hooks.install(repo)
    (repo / "a.txt").write_text("a\n")
    sh(["git", "add", "a.txt"], repo, env)
    sh(["git", "commit", "-q", "-m", "Add a\n\nLit-Thread: 0123456789ab"], repo, env)
    (repo / "b.txt").write_text("b\n")
    sh(["git", "add", "b.txt"], repo, env)
    sh(["git", "commit", "-q", "-m", "Add b\n\nLit-Thread: ba9876543210"], repo, env)

    sh(["git", "commit", "-q", "--amend", "-m", "new words"], repo, env)
    assert sh(["git", "log", "-1", "--format=%s"], repo).stdout.strip() == "new words"
    assert _trailer(repo) == "ba9876543210"

    # a reword of the first commit whose editor writes a whole new message
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\necho "Add the letter a" > "$1"\n')
    editor.chmod(0o755)
    sh(["git", "rebase", "-q", "-i", "--root"], repo,
       {**env, "GIT_SEQUENCE_EDITOR": "sed -i 1s/^pick/reword/", "GIT_EDITOR": str(editor)})
    assert sh(["git", "log", "--format=%s", "HEAD~1", "-1"], repo).stdout.strip() == "Add the letter a"
    assert _trailer(repo, "HEAD~1") == "0123456789ab"
    assert _trailer(repo) == "ba9876543210"  # picked again, not given the other's trailer

    # a commit that rewrites nothing gets no trailer it was not given
    (repo / "c.txt").write_text("c\n")
    sh(["git", "add", "c.txt"], repo, env)
    sh(["git", "commit", "-q", "-m", "Add c"], repo, env)
    assert _trailer(repo) == ""


def test_a_commit_that_gives_lit_nothing_to_do_does_not_load_its_linking_code(tmp_path, repo):
    """Three hooks run on every commit: without a session, a pending thread or a trailer, each is a
    Python start and one read (lit.git.hookrun), not lit's linking code and sqlite-utils."""
    from lit import store

    store.connect(tmp_path / "lit.db").conn.close()  # a DB with no pending thread
    env = {"LIT_DB": str(tmp_path / "lit.db"), "PYTHONPROFILEIMPORTTIME": "1"}
    sh(["git", "config", "user.email", "dev@example.com"], repo)
    sh(["git", "config", "user.name", "Dev"], repo)
    sh([sys.executable, "-m", "lit", "hooks", "install"], repo, env)

    plain = commit(repo, "plain.txt", env)
    assert plain.returncode == 0, plain.stderr
    started = [line for line in plain.stderr.splitlines() if line.rstrip().endswith("| lit.paths")]
    assert len(started) == 3  # prepare-commit-msg, commit-msg, post-commit (lit.git.hookrun reads lit.paths)
    assert " lit.git.link" not in plain.stderr and " sqlite_utils" not in plain.stderr

    (repo / "traced.txt").write_text("traced\n")
    sh(["git", "add", "traced.txt"], repo)
    traced = sh(["git", "commit", "-q", "-m", "traced", "--trailer", "Lit-Thread: 0123456789ab"], repo, env)
    assert " lit.git.link" in traced.stderr  # post-commit: a trailer to bind, so the real work


@pytest.mark.parametrize("how", ["install", "session"])
def test_amend_and_rebase_say_nothing_of_a_notes_ref_before_the_first_note(tmp_path, repo, how):
    """lit points notes.rewriteRef at refs/notes/lit; until a first note exists git would warn
    "notes ref refs/notes/lit is invalid" on every amend and rebase. lit makes the ref (holding no
    note) when it sets the config."""
    sh(["git", "config", "user.email", "dev@example.com"], repo)
    sh(["git", "config", "user.name", "Dev"], repo)
    env = {"LIT_DB": str(tmp_path / "lit.db")}
    folder = None
    if how == "install":
        sh([sys.executable, "-m", "lit", "hooks", "install"], repo, env)
    else:
        folder = hooks.make_session_hooks(str(repo))
        env.update(hooks.session_env(env, folder))
    assert commit(repo, "one.txt", env).returncode == 0
    (repo / "one.txt").write_text("amended\n")
    sh(["git", "add", "one.txt"], repo)
    amended = sh(["git", "commit", "-q", "--amend", "-m", "amended"], repo, env)
    assert amended.stderr == ""
    assert sh(["git", "notes", "--ref", "lit", "list"], repo).stdout == ""  # a ref, and no note in it
    hooks.remove_session_hooks(folder)
    sh(["git", "notes", "--ref", "lit", "add", "-m", "a note", "HEAD"], repo)
    hooks.uninstall(repo)
    assert "a note" in sh(["git", "notes", "--ref", "lit", "show", "HEAD"], repo).stdout  # notes are never dropped
