"""A tiny coding agent on the openai SDK: the same loop as agent.py, for OpenAI-compatible APIs.

    python examples/openai_agent.py "add a hello script and commit it"
    python examples/openai_agent.py --api responses --no-stream "..."

Under `lit record -- python examples/openai_agent.py ...` its calls go through lit's relay
(OPENAI_BASE_URL) and are recorded as the same steps as an Anthropic agent's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from openai import OpenAI

ROOT = Path.cwd()
TOOLS = {
    "write_file": ("Write a file (creating folders).", {"path": "string", "content": "string"}),
    "run_shell": ("Run a shell command in the repository; returns its output and exit code.", {"command": "string"}),
}


def run_tool(name: str, args: dict) -> tuple[str, bool]:
    if name == "write_file":
        path = ROOT / args["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(args["content"])
        return f"wrote {args['path']}", False
    if name == "run_shell":
        p = subprocess.run(args["command"], shell=True, cwd=ROOT, capture_output=True, text=True, timeout=60)
        return f"exit {p.returncode}\n{p.stdout}{p.stderr}", p.returncode != 0
    return f"unknown tool {name}", True


def schema(props: dict) -> dict:
    return {"type": "object", "properties": {k: {"type": v} for k, v in props.items()}, "required": list(props)}


def chat_loop(client: OpenAI, model: str, prompt: str, stream: bool, max_turns: int) -> int:
    tools = [{"type": "function", "function": {"name": n, "description": d, "parameters": schema(p)}}
             for n, (d, p) in TOOLS.items()]
    messages: list[dict] = [{"role": "system", "content": "You are a careful coding agent."},
                            {"role": "user", "content": prompt}]
    for _ in range(max_turns):
        if stream:
            text, calls = [], {}
            for chunk in client.chat.completions.create(model=model, messages=messages, tools=tools, stream=True):
                for choice in chunk.choices:
                    text.append(choice.delta.content or "")
                    for tc in choice.delta.tool_calls or []:
                        slot = calls.setdefault(tc.index, {"id": tc.id, "name": "", "arguments": ""})
                        slot["id"] = tc.id or slot["id"]
                        slot["name"] += tc.function.name or "" if tc.function else ""
                        slot["arguments"] += tc.function.arguments or "" if tc.function else ""
            content, tool_calls = "".join(text), [calls[i] for i in sorted(calls)]
        else:
            msg = client.chat.completions.create(model=model, messages=messages, tools=tools).choices[0].message
            content = msg.content or ""
            tool_calls = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
                          for c in msg.tool_calls or []]
        messages.append({"role": "assistant", "content": content or None, "tool_calls": [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in tool_calls] or None})
        if content:
            print(content)
        if not tool_calls:
            return 0
        for c in tool_calls:
            out, _ = run_tool(c["name"], json.loads(c["arguments"] or "{}"))
            print(f"> {c['name']}", file=sys.stderr)
            messages.append({"role": "tool", "tool_call_id": c["id"], "content": out})
    return 1


def responses_loop(client: OpenAI, model: str, prompt: str, stream: bool, max_turns: int) -> int:
    tools = [{"type": "function", "name": n, "description": d, "parameters": schema(p)} for n, (d, p) in TOOLS.items()]
    items: list = [{"role": "user", "content": prompt}]
    for _ in range(max_turns):
        if stream:
            with client.responses.stream(model=model, input=items, tools=tools) as s:
                response = s.get_final_response()
        else:
            response = client.responses.create(model=model, input=items, tools=tools)
        calls = [o for o in response.output if o.type == "function_call"]
        items += [o.model_dump(exclude_none=True) for o in response.output if o.type != "reasoning"]
        if response.output_text:
            print(response.output_text)
        if not calls:
            return 0
        for c in calls:
            out, _ = run_tool(c.name, json.loads(c.arguments or "{}"))
            items.append({"type": "function_call_output", "call_id": c.call_id, "output": out})
    return 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("prompt")
    ap.add_argument("--model", default=os.environ.get("OPENAI_MODEL", "gpt-5"))
    ap.add_argument("--api", choices=["chat", "responses"], default="chat")
    ap.add_argument("--no-stream", action="store_true")
    ap.add_argument("--max-turns", type=int, default=20)
    args = ap.parse_args()
    client = OpenAI()
    loop = chat_loop if args.api == "chat" else responses_loop
    return loop(client, args.model, args.prompt, not args.no_stream, args.max_turns)


if __name__ == "__main__":
    sys.exit(main())
