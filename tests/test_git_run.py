"""lit.git.run, the one way lit runs git: its argv rules, errors and the path unquoting every
reader of git's output shares."""

from __future__ import annotations

import pytest
from lit_fixtures import commit_files, init_repo

from lit.git.run import GitError, cat_file_batch, git, rev, unquote


def test_unquote_reads_what_git_quotes(tmp_path):
    repo = init_repo(tmp_path / "r")
    names = ["tab\there.py", "café.py", 'quote"d.py', "back\\slash.py", "plain.py"]
    commit_files(repo, {n: "x\n" for n in names}, "odd names")
    listed = git(["ls-tree", "--name-only", "HEAD"], repo).splitlines()  # quoted as git quotes them
    assert any(line.startswith('"') for line in listed)
    assert sorted(unquote(line) for line in listed) == sorted(names)


def test_cat_file_batch_skips_what_is_missing_even_with_spaces(tmp_path):
    repo = init_repo(tmp_path / "r")
    sha = commit_files(repo, {"a b.txt": "one\n", "c.txt": "two\n"}, "files")
    got = cat_file_batch([f"{sha}:no such file.txt", f"{sha}:a b.txt", f"{sha}:gone", f"{sha}:c.txt"], repo)
    assert got == {f"{sha}:a b.txt": b"one\n", f"{sha}:c.txt": b"two\n"}


def test_errors_are_one_line_in_git_s_words(tmp_path):
    repo = init_repo(tmp_path / "r")
    with pytest.raises(GitError, match=r"^git rev-parse failed: .*") as e:
        git(["rev-parse", "--verify", "nothing-here"], repo)
    assert "\n" not in str(e.value)
    with pytest.raises(GitError, match="no such directory"):
        git(["status"], tmp_path / "absent")
    assert rev(repo, "HEAD") is None and rev(repo, "--all") is None  # no commit yet; never an option
