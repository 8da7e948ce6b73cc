"""Shared fixtures: every test runs without the user's keys, base URL or DB, against servers on
127.0.0.1 that it starts itself."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lit.proxy.exchange import Exchange
from lit.proxy.relay import Relay
from lit.scripted import ScriptedUpstream

# Shaped like a real key so a leak would be found by the same scans as a real one.
FAKE_KEY = "sk-ant-api03-" + "T3stK3y" * 13 + "-AAAA"
# Where the real home was, before tests point HOME elsewhere: caches of tools (npm) live there.
REAL_HOME = Path(os.path.expanduser("~"))


@pytest.fixture(autouse=True)
def _no_user_environment(tmp_path_factory, monkeypatch) -> None:
    """No test may reach the user's API, key or DB, whatever the shell running pytest exports."""
    for name in ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_BASE_URL",
                 "OPENAI_API_KEY", "LIT_SESSION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LIT_DB", str(tmp_path_factory.mktemp("litdb") / "lit.db"))


class Sink:
    """The recorder's interface, keeping what it is handed (the relay's tests need no DB)."""

    session_id = "a0b1c2d3e4f5"

    def __init__(self) -> None:
        self.requests: list[Exchange] = []
        self.responses: list[Exchange] = []

    def request(self, exchange: Exchange) -> None:
        self.requests.append(exchange)

    def response(self, exchange: Exchange) -> None:
        self.responses.append(exchange)


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def upstream() -> Iterator[ScriptedUpstream]:
    """A scripted Messages API server; set `.replies` in the test."""
    with ScriptedUpstream([]) as up:
        yield up


@pytest.fixture
def relay(upstream: ScriptedUpstream, sink: Sink) -> Iterator[Relay]:
    """lit's relay in front of `upstream`, handing exchanges to `sink`."""
    with Relay(upstream.url, sink) as r:
        yield r


CLAUDE_CODE_VERSION = "2.1.197"
CLAUDE_CODE_DIR = REAL_HOME / ".cache" / "lit-tests" / "claude-code"


@pytest.fixture(scope="session")
def claude_code() -> Path:
    """The real Claude Code CLI, installed from npm into a cache folder outside the repo when it is
    not there yet (so a fresh machine gets it); $LIT_CLAUDE_CODE names another `claude`."""
    if os.environ.get("LIT_CLAUDE_CODE"):
        return Path(os.environ["LIT_CLAUDE_CODE"])
    claude = CLAUDE_CODE_DIR / "node_modules" / ".bin" / "claude"
    if not claude.exists():
        import shutil
        import subprocess

        npm = shutil.which("npm")
        if not npm:
            pytest.fail("npm is needed to install Claude Code for the tests (install Node.js and npm), "
                        f"or set LIT_CLAUDE_CODE to a `claude` of version {CLAUDE_CODE_VERSION}")
        proc = subprocess.run([npm, "install", "--prefix", str(CLAUDE_CODE_DIR), "--no-audit", "--no-fund",
                               f"@anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}"],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0 or not claude.exists():
            pytest.fail(f"npm install of @anthropic-ai/claude-code@{CLAUDE_CODE_VERSION} failed: "
                        f"{proc.stderr.strip()[-1000:]}")
    return claude
