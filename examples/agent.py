"""A small coding agent on the anthropic SDK: the example that lit records, replays and demos.

    python examples/agent.py "add a --count flag to wordcount.py and test it"

It works in the current directory (the repository it is asked to change) with four tools:
read_file, write_file, edit_file (replace one exact string) and run_shell. It streams every
call (so a recording holds the server-sent events as a real agent would send them), asks for
extended thinking when the model has it, and loops until the model stops asking for tools.

The API key and the server come from the environment, as for any SDK client:
ANTHROPIC_API_KEY, and ANTHROPIC_BASE_URL (lit record points it at lit's relay). The model is
--model, else $LIT_AGENT_MODEL, else claude-sonnet-4-6.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import anthropic

ROOT = Path.cwd()
OUTPUT_LIMIT = 20_000  # characters of a tool result sent back; keeps a runaway `cat` affordable

SYSTEM = (
    "You are a careful coding agent working in the repository at {root}. Read before you edit, "
    "keep changes small, run the tests after each change, and commit with git when the work is "
    "done and the tests pass. Paths are relative to the repository root."
)

TOOLS = [
    {"name": "read_file", "description": "Read a text file and return its content.",
     "input_schema": {"type": "object", "properties": {"path": {"type": "string"}},
                      "required": ["path"]}},
    {"name": "write_file", "description": "Create or overwrite a file with the given content.",
     "input_schema": {"type": "object", "properties": {"path": {"type": "string"},
                                                       "content": {"type": "string"}},
                      "required": ["path", "content"]}},
    {"name": "edit_file",
     "description": "Replace exactly one occurrence of old_string with new_string in a file.",
     "input_schema": {"type": "object", "properties": {"path": {"type": "string"},
                                                       "old_string": {"type": "string"},
                                                       "new_string": {"type": "string"}},
                      "required": ["path", "old_string", "new_string"]}},
    {"name": "run_shell",
     "description": "Run a shell command in the repository root; returns its exit code and output.",
     "input_schema": {"type": "object", "properties": {"command": {"type": "string"},
                                                       "timeout": {"type": "integer"}},
                      "required": ["command"]}},
]


class ToolError(Exception):
    """A failed tool call: its message goes back to the model as an error result."""


def resolve(path: str) -> Path:
    full = (ROOT / path).resolve()
    if not full.is_relative_to(ROOT.resolve()):
        raise ToolError(f"{path} is outside the repository")
    return full


def read_file(path: str) -> str:
    try:
        return resolve(path).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ToolError(f"cannot read {path}: {e}") from e


def write_file(path: str, content: str) -> str:
    target = resolve(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content)
    return f"wrote {path} ({len(content.splitlines())} lines)"


def edit_file(path: str, old_string: str, new_string: str) -> str:
    text = read_file(path)
    count = text.count(old_string)
    if count != 1:  # ambiguous or missing: the model must quote more context, not guess
        raise ToolError(f"old_string occurs {count} times in {path}; it must occur exactly once")
    resolve(path).write_text(text.replace(old_string, new_string, 1))
    return f"edited {path}"


def run_shell(command: str, timeout: int = 120) -> str:
    # Its own process group, so a timeout kills the command's children too (a bare `sh -c` kill
    # leaves them holding the output pipe open until they finish).
    proc = subprocess.Popen(command, shell=True, cwd=ROOT, stdin=subprocess.DEVNULL, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise ToolError(f"timed out after {timeout} s: {command}") from None
    return f"exit code {proc.returncode}\n{output[-OUTPUT_LIMIT:]}"


HANDLERS = {"read_file": read_file, "write_file": write_file, "edit_file": edit_file,
            "run_shell": run_shell}


def run_tool(name: str, tool_input: dict) -> tuple[str, bool]:
    """(result text, is_error): every failure is reported to the model, never raised."""
    try:
        return HANDLERS[name](**tool_input)[:OUTPUT_LIMIT], False
    except KeyError:
        return f"unknown tool {name}", True
    except (ToolError, TypeError) as e:
        return str(e), True


def thinking_for(model: str) -> dict | None:
    """Extended thinking for the models that have it (Claude 3.7 and the Claude 4 family)."""
    if re.search(r"claude-(3-7|(opus|sonnet|haiku)-([4-9]|\d\d))", model):
        return {"type": "enabled", "budget_tokens": 4000}
    return None


def run(prompt: str, model: str, max_turns: int = 30) -> int:
    client = anthropic.Anthropic()  # ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL from the environment
    messages: list[dict] = [{"role": "user", "content": prompt}]
    extra = {"thinking": t} if (t := thinking_for(model)) else {}
    for _ in range(max_turns):
        with client.messages.stream(model=model, max_tokens=16000, system=SYSTEM.format(root=ROOT),
                                    tools=TOOLS, messages=messages, **extra) as stream:
            for event in stream:
                if event.type == "text":
                    print(event.text, end="", flush=True)
            message = stream.get_final_message()
        if any(b.type == "text" for b in message.content):
            print()
        # The assistant turn goes back verbatim: thinking blocks keep their signatures.
        messages.append({"role": "assistant",
                         "content": [b.to_dict(exclude_none=True) for b in message.content]})
        if message.stop_reason != "tool_use":
            return 0
        results = []
        for block in message.content:
            if block.type != "tool_use":
                continue
            print(f"> {block.name} {summary(block.input)}", file=sys.stderr)
            output, is_error = run_tool(block.name, dict(block.input))
            result = {"type": "tool_result", "tool_use_id": block.id, "content": output}
            if is_error:
                result["is_error"] = True
            results.append(result)
        messages.append({"role": "user", "content": results})
    print(f"agent: stopped after {max_turns} turns", file=sys.stderr)
    return 1


def summary(tool_input: dict) -> str:
    first = tool_input.get("path") or tool_input.get("command") or ""
    return str(first).splitlines()[0][:80] if first else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A small coding agent (lit's example).")
    parser.add_argument("prompt", help="what to do, in plain words")
    parser.add_argument("--model", default=os.environ.get("LIT_AGENT_MODEL", "claude-sonnet-4-6"))
    parser.add_argument("--max-turns", type=int, default=30)
    args = parser.parse_args(argv)
    try:
        return run(args.prompt, args.model, args.max_turns)
    except anthropic.APIError as e:
        print(f"agent: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
