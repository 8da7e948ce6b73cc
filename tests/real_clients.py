"""Real OpenAI-protocol agents nobody here wrote (Codex CLI, aider, llm), installed pinned into a
cache folder outside the repo on first use, as conftest.py does for Claude Code; and what each needs
to run offline against a scripted upstream on 127.0.0.1 (no update checks, no analytics)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REAL_HOME = Path(os.path.expanduser("~"))
CACHE = REAL_HOME / ".cache" / "lit-tests"
CODEX_VERSION = "0.169.0"
AIDER_VERSION = "0.86.*"
LLM_VERSION = "0.36.*"
FAKE_OPENAI_KEY = "sk-proj-" + "F4keOpenAIKey" * 4


@contextmanager
def install_lock(folder: Path) -> Iterator[None]:
    """One install into `folder` at a time, across the processes that run tests (pytest-xdist's
    workers, two checkouts' runs): the others wait for it, then find it installed. A half-made
    install has its command already in place, so the lock is taken before looking for it."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _install_npm(package: str, folder: Path, command: str) -> Path:
    exe = folder / "node_modules" / ".bin" / command
    with install_lock(folder):
        if exe.exists():
            return exe
        npm = shutil.which("npm")
        if not npm:
            pytest.fail(f"npm is needed to install {package} for the tests (install Node.js and npm)")
        proc = subprocess.run([npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund", package],
                              capture_output=True, text=True, timeout=900)
        if proc.returncode != 0 or not exe.exists():
            pytest.fail(f"npm install of {package} failed: {proc.stderr.strip()[-1000:]}")
    return exe


def _install_venv(requirement: str, folder: Path, command: str) -> Path:
    exe = folder / "bin" / command
    with install_lock(folder):
        if exe.exists():
            return exe
        for args in ([sys.executable, "-m", "venv", str(folder)],
                     [str(folder / "bin" / "python"), "-m", "pip", "install", "-q", requirement]):
            proc = subprocess.run(args, capture_output=True, text=True, timeout=1800)
            if proc.returncode != 0:
                shutil.rmtree(folder, ignore_errors=True)  # a half-made venv would be taken as installed
                pytest.fail(f"installing {requirement} failed: {proc.stderr.strip()[-1000:]}")
    return exe


@pytest.fixture(scope="session")
def codex_cli() -> Path:
    """Codex CLI from npm; $LIT_CODEX names another `codex`."""
    if os.environ.get("LIT_CODEX"):
        return Path(os.environ["LIT_CODEX"])
    return _install_npm(f"@openai/codex@{CODEX_VERSION}", CACHE / "codex", "codex")


@pytest.fixture(scope="session")
def aider_cli() -> Path:
    """aider from PyPI in its own venv (it pins many packages); $LIT_AIDER names another `aider`."""
    if os.environ.get("LIT_AIDER"):
        return Path(os.environ["LIT_AIDER"])
    return _install_venv(f"aider-chat=={AIDER_VERSION}", CACHE / "aider", "aider")


@pytest.fixture(scope="session")
def llm_cli() -> Path:
    """Simon Willison's llm from PyPI in its own venv; $LIT_LLM names another `llm`."""
    if os.environ.get("LIT_LLM"):
        return Path(os.environ["LIT_LLM"])
    return _install_venv(f"llm=={LLM_VERSION}", CACHE / "llm", "llm")


def record_claude(claude: Path, tmp_path: Path, upstream_url: str, prompt: str,
                  timeout: float = 120) -> subprocess.CompletedProcess:
    """`lit record -- claude -p PROMPT` in a new repository tmp_path/project, with its own HOME and
    DB (tmp_path/lit.db), offline."""
    from conftest import FAKE_KEY
    from lit_fixtures import init_repo

    repo, home = tmp_path / "project", tmp_path / "home"
    init_repo(repo)
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_", "LIT_"))}
    env.update({"HOME": str(home), "IS_SANDBOX": "1", "ANTHROPIC_API_KEY": FAKE_KEY,
                "LIT_DB": str(tmp_path / "lit.db"), "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                "DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1", "DISABLE_AUTOUPDATER": "1",
                "GIT_CONFIG_NOSYSTEM": "1"})
    return subprocess.run(
        [sys.executable, "-m", "lit", "record", "--upstream", upstream_url, "--", str(claude),
         "-p", prompt, "--permission-mode", "bypassPermissions", "--output-format", "json"],
        cwd=repo, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


def offline_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of `lit record` in a test: its own HOME and DB, a made-up key, no base URL of
    the shell's, and nothing that lets a client call home."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANTHROPIC_", "OPENAI_", "CLAUDE_", "LIT_", "CODEX_", "AIDER_", "LLM_"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update({"HOME": str(home), "LIT_DB": str(tmp_path / "lit.db"), "OPENAI_API_KEY": FAKE_OPENAI_KEY,
                "GIT_CONFIG_NOSYSTEM": "1", "NO_COLOR": "1", "TERM": "dumb",
                # Codex: its config and session logs in this HOME.
                "CODEX_HOME": str(home / ".codex"),
                # aider (through litellm): no fetch of litellm's model price map at import.
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                # llm: its keys, logs DB and plugins in this HOME.
                "LLM_USER_PATH": str(home / "llm")})
    env.update(extra)
    return env


def codex_config(home: Path) -> None:
    """Codex's config for an offline run: no update check, no analytics, no feedback upload."""
    folder = home / ".codex"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text("check_for_update_on_startup = false\n\n[analytics]\nenabled = false\n\n"
                                        "[feedback]\nenabled = false\n")


def aider_price_cache(home: Path, models: dict[str, dict]) -> None:
    """aider reads model prices and context sizes from a cache of litellm's JSON, and fetches it
    when the cache is missing or older than a day: seed it so it never does."""
    folder = home / ".aider" / "caches"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_prices_and_context_window.json").write_text(json.dumps(models))
