"""Content blocks as steps: the one mapping from a message's blocks (the Messages API's shape, which
the OpenAI parsers produce too) to the columns of a step, shared by the recorder and the importers."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from lit.redact import redact_obj

# A block an agent adds to a user turn for the model (Codex's <environment_context>, Claude Code's
# <system-reminder>, AGENTS.md instructions): context, not what the user typed.
CONTEXT_BLOCK = re.compile(r"\s*<(?P<tag>[A-Za-z]+(?:[_-][A-Za-z]+)+|INSTRUCTIONS)(?:\s[^>]*)?>.*</(?P=tag)>\s*",
                           re.DOTALL)
CONTEXT_PREFIXES = ("# AGENTS.md instructions for ",)


def from_block(block: Any) -> dict:
    """The step columns (kind, text, tool_name, tool_input, tool_use_id, raw) of one block of an
    answer; a block of a type lit does not know is kept whole as `other`."""
    if not isinstance(block, dict):
        return {"kind": "other", "raw": json.dumps(block)}
    btype = block.get("type")
    if btype == "thinking":
        return {"kind": "thinking", "text": block.get("thinking", ""),
                "raw": json.dumps({"type": "thinking", "signature": block.get("signature")})}
    if btype == "redacted_thinking":
        return {"kind": "thinking", "text": None, "raw": json.dumps(block)}
    if btype == "text":
        return {"kind": "text", "text": block.get("text", ""),
                "raw": raw_if_more(block, {"type", "text", "citations"}) if block.get("citations") else None}
    if btype in ("tool_use", "server_tool_use", "mcp_tool_use", "custom_tool_use"):
        return {"kind": "tool_call", "tool_name": block.get("name"), "tool_input": block.get("input", {}),
                "tool_use_id": block.get("id"),
                "raw": json.dumps(block) if btype != "tool_use" else None}
    if btype and btype.endswith("_tool_result"):
        return {"kind": "tool_result", "tool_use_id": block.get("tool_use_id"),
                "text": result_text(block.get("content")), "raw": json.dumps(block)}
    return {"kind": "other", "raw": json.dumps(block)}


def result_text(content: Any) -> str:
    """A tool result's (or a message's) content as text; blocks that are not text as `[type]`."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for b in content:
            if isinstance(b, dict) and b.get("type") == "text":
                parts.append(b.get("text", ""))
            elif isinstance(b, dict):
                parts.append(f"[{b.get('type', 'block')}]")
        return "\n".join(parts)
    return "" if content is None else json.dumps(content)


def raw_if_more(block: dict, known: set[str]) -> str | None:
    """The block as JSON when it carries keys beyond the columns a step has (`known`)."""
    extra = {k: v for k, v in block.items() if k not in known}
    return json.dumps(block, ensure_ascii=False) if extra else None


def is_context(text: str) -> bool:
    """A whole text that is a context block an agent added (see CONTEXT_BLOCK)."""
    return bool(CONTEXT_BLOCK.fullmatch(text)) or text.lstrip().startswith(CONTEXT_PREFIXES)


def first_line(text: str, width: int = 120) -> str:
    """A thread's title: the first non-blank line of its prompt, cut to `width`."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"


def redacted_raw(raw: str, redact: Callable[[Any], Any] = redact_obj) -> str:
    """A step's `raw` (a block kept whole) redacted, but for a thinking block's signature (Anthropic's
    signature, Codex's encrypted reasoning): the model's own opaque bytes, sent back as they came,
    that no one typed. `redact`: the recorder's, which scans each distinct text once."""
    try:
        block = json.loads(raw)
    except (ValueError, RecursionError):
        return redact(raw)
    if not isinstance(block, dict) or not isinstance(block.get("signature"), str):
        return redact(raw)
    signature = block.pop("signature")
    return json.dumps({**redact(block), "signature": signature}, ensure_ascii=False)
