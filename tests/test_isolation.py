"""The suite is cut off from the machine it runs on: a developer's global git config, lit config,
DB, agent settings and keys change no result (conftest.py's `_isolated`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import REAL_HOME

from lit import config, store

TESTS = Path(__file__).resolve().parent


def git_config(repo: Path, key: str, env: dict | None = None) -> str:
    return subprocess.run(["git", "config", "--get", key], cwd=repo, capture_output=True, text=True,
                          env=env).stdout.strip()


def test_a_test_sees_nothing_of_the_machine(repo, _isolated, tmp_path_factory):
    assert Path.home() == _isolated != REAL_HOME
    # The repository's own config, and a global one holding only an identity; no system file.
    origins = subprocess.run(["git", "config", "--list", "--show-origin"], cwd=repo, capture_output=True,
                             text=True, check=True).stdout.splitlines()
    outside = [line for line in origins if not line.startswith("file:.git/config")]
    assert outside == [f"file:{_isolated}/.gitconfig\tuser.name=Test User",
                       f"file:{_isolated}/.gitconfig\tuser.email=test@example.com"]
    assert git_config(repo, "lit.assistedBy") == ""
    assert config.load_config() == {}
    db = store.resolve_db_path()
    assert db.is_relative_to(tmp_path_factory.getbasetemp()) and not db.exists()
    assert os.environ["CLAUDE_CONFIG_DIR"].startswith(str(_isolated))
    assert not [k for k in os.environ if k.endswith(("_API_KEY", "_BASE_URL", "_AUTH_TOKEN"))]


def poisoned_machine(tmp_path: Path) -> dict[str, str]:
    """The environment of a developer who followed the README (global `lit.assistedBy`), with a lit
    config, a DB, keys, a base URL and git settings that would change what the tests see."""
    home = tmp_path / "poisoned-home"
    (home / ".config" / "lit").mkdir(parents=True)
    (home / ".gitconfig").write_text("[lit]\n\tassistedBy = true\n[user]\n\tname = Poisoned\n"
                                     "[commit]\n\tgpgsign = true\n[core]\n\thooksPath = /nonexistent/hooks\n"
                                     "[init]\n\tdefaultBranch = trunk\n")
    (home / ".config" / "lit" / "config.toml").write_text('[git]\nassisted_by = true\n[redact]\npatterns = ["def"]\n')
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM")}
    return {**env, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
            "LIT_DB": str(home / "poisoned.db"), "ANTHROPIC_API_KEY": "sk-ant-api03-" + "P0ison" * 15 + "-AA",
            "ANTHROPIC_BASE_URL": "http://127.0.0.1:9", "OPENAI_API_KEY": "sk-proj-" + "P0ison" * 8,
            "GIT_AUTHOR_NAME": "Poisoned", "LIT_SESSION": "0123456789ab"}


def test_a_developers_global_settings_change_no_result(tmp_path, repo):
    env = poisoned_machine(tmp_path)
    # The poison works: outside the suite's isolation, git and lit see it.
    assert git_config(repo, "lit.assistedBy", env) == "true"
    probe = subprocess.run([sys.executable, "-c", "from lit import config; print(config.load_config())"],
                           env=env, capture_output=True, text=True)
    assert "assisted_by" in probe.stdout
    # The same tests, run by pytest on that machine: the one above, and the linking tests that a
    # global lit.assistedBy used to fail.
    tests = [f"{TESTS / 'test_isolation.py'}::test_a_test_sees_nothing_of_the_machine",
             f"{TESTS / 'test_git_linemap.py'}::test_the_agents_commit_binds_and_opens_the_next_thread",
             f"{TESTS / 'test_git_linemap.py'}::test_a_commit_without_the_agents_changes_gets_no_trailer"]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", "-x", *tests],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "3 passed" in proc.stdout
    assert not (Path(env["HOME"]) / "poisoned.db").exists()
