"""What lit knows of the agents it records by name: how to point one at the relay when it reads no
base URL from its environment, and what to call it when its User-Agent names only an SDK.

Most agents need nothing here: `lit record` sets ANTHROPIC_BASE_URL and OPENAI_BASE_URL, which
Claude Code, aider, llm and the SDKs read. Codex reads neither (it goes to its provider's own URL),
so lit adds one `-c` argument to its command line, which overrides its config for that run only;
the user's ~/.codex/config.toml, login and session logs stay as they are.
"""

from __future__ import annotations

import os
import re

# Commands that run another program: the agent is the program they run.
LAUNCHERS = {"python", "python3", "node", "npx", "uv", "uvx", "pipx", "env", "bun", "deno"}
# User-Agents of client libraries, which say which SDK made the call but not which agent did.
SDK_AGENTS = re.compile(r"^(Async)?(OpenAI|Anthropic)/|^(python-httpx|python-requests|aiohttp|litellm|node-fetch"
                        r"|undici|axios|Go-http-client|curl)\b", re.IGNORECASE)


def command_name(argv: list[str]) -> str | None:
    """The agent a command line runs: `codex` for `codex exec ...`, `agent.py` for `python agent.py`."""
    args = list(argv)
    while args and (os.path.basename(args[0]) in LAUNCHERS or re.fullmatch(r"python3\.\d+", os.path.basename(args[0]))):
        args = args[1:]
        while args and (args[0].startswith("-") or "=" in args[0]):  # python -u, python -m, env NAME=value
            args = args[1:]
    return os.path.basename(args[0]) or None if args else None


def relay_arguments(argv: list[str], openai_base_url: str) -> list[str]:
    """The command line to run: argv, plus what a known agent needs to send its calls to the relay.

    Codex (0.169) ignores OPENAI_BASE_URL; `-c openai_base_url=...` points its built-in OpenAI
    provider at the relay for this run (a global option, so it goes right after the command)."""
    if argv and command_name(argv[:1]) in ("codex", "codex.js"):
        return [argv[0], "-c", f'openai_base_url="{openai_base_url}"', *argv[1:]]
    return list(argv)


def agent_name(user_agent: str, argv: list[str]) -> str | None:
    """The session's agent: its User-Agent when that names it (claude-cli/2.1.197, codex_exec/0.169.0),
    else the command that was recorded and the SDK it used (`aider (OpenAI/Python 2.20.0)`)."""
    if user_agent and not SDK_AGENTS.search(user_agent):
        return user_agent
    command = command_name(argv)
    if command and user_agent:
        return f"{command} ({user_agent})"
    return command or user_agent or None
