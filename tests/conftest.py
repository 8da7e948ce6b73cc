"""Shared fixtures. Every test runs cut off from the machine it runs on (`_isolated`: its own HOME,
XDG dirs, git config, lit config and DB, no API keys), against servers on 127.0.0.1 that it starts
itself; `repo` is a fresh git repository."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lit.proxy import spool
from lit.proxy.exchange import Exchange
from lit.proxy.relay import Relay
from lit.scripted import ScriptedUpstream
from lit_fixtures import Agent, Story, build_story, init_repo
from real_clients import install_lock

from lit.git import hooks

# A suite started with SIGINT ignored (a non-interactive shell's `cmd &`, a CI runner's background
# job) would pass that on to every process a test starts, and the Ctrl-C that a test sends to
# `lit replay` as a person's terminal does would do nothing: the tests' processes take it as a
# person's shell would let them.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Shaped like a real key so a leak would be found by the same scans as a real one.
FAKE_KEY = "sk-ant-api03-" + "T3stK3y" * 13 + "-AAAA"
# Read before any test points HOME elsewhere: the caches of real agents (npm installs) live there.
REAL_HOME = Path(os.path.expanduser("~"))

# Variables of the user's shell that change what git, lit or an agent SDK does. Removed in every
# test; GIT_* also covers GIT_DIR, GIT_AUTHOR_*, GIT_CONFIG_COUNT/KEY/VALUE set by a caller.
UNSET_PREFIXES = ("LIT_", "GIT_", "XDG_", "CLAUDE_", "CODEX_", "ANTHROPIC_", "OPENAI_", "AWS_", "GEMINI_",
                  "GOOGLE_API", "MISTRAL_", "GROQ_", "LLM_")
# The tests' own settings, kept: a developer rewrites golden files or names an agent binary with them.
KEEP = ("LIT_UPDATE_GOLDEN", "LIT_CLAUDE_CODE", "LIT_CODEX", "LIT_AIDER", "LIT_LLM")
UNSET = ("NO_COLOR", "FORCE_COLOR", "CLICOLOR_FORCE", "EMAIL", "SSH_AUTH_SOCK", "HTTP_PROXY", "HTTPS_PROXY",
         "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory, monkeypatch) -> Path:
    """No test reads the user's home, git config, lit config, agent config, keys or DB, whatever the
    shell running pytest exports: a global `git config lit.assistedBy true` or a ~/.config/lit
    must not change a result. Returns the test's HOME."""
    for name in list(os.environ):
        if (name.startswith(UNSET_PREFIXES) or name in UNSET) and name not in KEEP:
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for name, sub in (("XDG_CONFIG_HOME", ".config"), ("XDG_DATA_HOME", ".local/share"),
                      ("XDG_CACHE_HOME", ".cache"), ("XDG_STATE_HOME", ".local/state")):
        monkeypatch.setenv(name, str(home / sub))
    # A developer's machine has an identity (a clone made in a test commits and writes notes with
    # it); nothing else of theirs.
    (home / ".gitconfig").write_text("[user]\n\tname = Test User\n\temail = test@example.com\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(home / ".claude"))
    monkeypatch.setenv("CODEX_HOME", str(home / ".codex"))
    monkeypatch.setenv("LIT_DB", str(tmp_path_factory.mktemp("litdb") / "lit.db"))
    return home


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An empty git repository (no commit yet) at tmp_path/repo: see lit_fixtures.init_repo."""
    return init_repo(tmp_path / "repo")


@pytest.fixture
def story(tmp_path, monkeypatch) -> Story:
    """lit_fixtures' story at tmp_path/repo, its DB at tmp_path/lit.db (LIT_DB), run from inside
    the repository, as a person runs blame, weave or show there."""
    db = tmp_path / "lit.db"
    monkeypatch.setenv("LIT_DB", str(db))
    monkeypatch.setenv("HOME", str(tmp_path))
    s = build_story(tmp_path / "repo", db_path=db)
    monkeypatch.chdir(s.repo)
    return s


@pytest.fixture
def hooks_folder() -> Iterator[Path]:
    """lit's session hooks, as `lit record` makes them for its child."""
    folder = hooks.make_session_hooks(None)
    yield folder
    hooks.remove_session_hooks(folder)


@pytest.fixture
def agent_in(tmp_path, hooks_folder):
    """agent_in(files) -> an Agent (lit_fixtures) recording in process in a new repository at
    tmp_path/repo whose first commit holds `files` (a README by default; None: no commit)."""
    def start(files: dict[str, str] | None = {"README.md": "# app\n"}) -> Agent:  # noqa: B006 - read only
        return Agent(init_repo(tmp_path / "repo", files), tmp_path / "lit.db", hooks_folder)
    return start


class Sink(spool.SpoolWriter):
    """A spool read back as the recorder process reads it, keeping the exchanges it makes (the
    relay's tests need no DB)."""

    session_id = "a0b1c2d3e4f5"

    def __init__(self) -> None:
        read_end, write_end = spool.pipe()
        super().__init__(write_end)
        self.requests: list[Exchange] = []
        self.responses: list[Exchange] = []
        assembler = spool.ExchangeAssembler(self.session_id, self.requests.append, self.responses.append)
        self._reader = threading.Thread(target=self._read, args=(read_end, assembler), daemon=True)
        self._reader.start()

    @staticmethod
    def _read(fd: int, assembler: spool.ExchangeAssembler) -> None:
        for record in spool.read_records(fd):
            assembler.feed(*record)
        os.close(fd)

    def close_spool(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass
        self._reader.join(5)


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.close_spool()


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
    with install_lock(CLAUDE_CODE_DIR):
        if claude.exists():
            return claude
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
