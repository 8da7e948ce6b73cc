"""What `lit serve` tells Datasette about lit's DB: titles, what each table and column means, default
sorts and facets, full-text search, and canned queries (the questions people ask of threads).

Kept as Python rather than a JSON file so the column descriptions sit next to the queries that use
them and a test can check that every column of store.py's schema is described.
"""

from __future__ import annotations

from typing import Any

DB_NAME = "lit"

TABLES: dict[str, dict[str, Any]] = {
    "sessions": {
        "description": "One `lit record` run: the command, where it ran, and how it ended.",
        "sort_desc": "started_at",
        "facets": ["repo_root", "agent"],
        "columns": {
            "id": "Session id (12 hex characters).",
            "started_at": "When `lit record` started (Unix time, shown in UTC).",
            "ended_at": "When it finished (Unix time, shown in UTC); empty while it runs or if it was killed.",
            "argv": "The command that lit ran (JSON list).",
            "cwd": "The folder it ran in.",
            "repo_root": "The git repository it ran in; empty outside one.",
            "head_start": "HEAD when the session started.",
            "head_end": "HEAD when it ended.",
            "exit_code": "The agent's exit code.",
            "agent": "The client, from its user-agent (e.g. claude-cli/2.1.197).",
            "upstream": "The API the relay forwarded to.",
            "port": "The relay's port on 127.0.0.1.",
            "pid": "lit's process id.",
            "exchanges_unrecorded": "Calls relayed but not recorded (counted, never shown to the agent).",
            "notes": "What lit said at exit about what it could not record.",
        },
    },
    "exchanges": {
        "description": "One HTTP call through the relay: request, response, timing and token usage.",
        "sort_desc": "started_at",
        "facets": ["model", "role", "status"],
        "columns": {
            "id": "Exchange id: <session id>.<seq>.",
            "session_id": "The session it belongs to.",
            "seq": "Order within the session, from 1.",
            "started_at": "When the request arrived (Unix time, shown in UTC).",
            "method": "HTTP method.",
            "path": "Request path, without the query string.",
            "query": "The query string.",
            "protocol": "anthropic, openai-chat or openai-responses; empty when not recognised.",
            "status": "HTTP status the upstream answered.",
            "streamed": "1 for a server-sent-events stream.",
            "complete": "0 while in flight or when the call was cut off.",
            "error": "Relay error: upstream unreachable, connection reset, client gone.",
            "parse_error": "What could not be parsed (the raw body is then kept in blobs).",
            "ttfb_ms": "Time to the first byte of the response, in ms.",
            "duration_ms": "Time to the end of the response, in ms.",
            "request_headers": "Hash (in blobs) of the request headers, secrets removed.",
            "request_headers_call": "The request headers that change per call (Content-Length, retry count...).",
            "response_headers": "Response headers worth keeping (JSON).",
            "request_bytes": "Size of the request body.",
            "response_bytes": "Size of the response body as relayed.",
            "request_blob": "Raw request body (in blobs), only when it could not be parsed.",
            "response_blob": "Raw response body (in blobs), only when it could not be parsed.",
            "params": "Request parameters: max_tokens, thinking, temperature, tool_choice... (JSON).",
            "model": "The model asked for.",
            "system_hash": "The system prompt, by hash in blobs.",
            "tools_hash": "The tool definitions, by hash in blobs.",
            "message_key": "The request's last message (messages.key).",
            "response_key": "The response message (messages.key).",
            "conversation_id": "The conversation: exchanges whose messages extend one another.",
            "role": "main (the agent's loop), subagent, or side (titles, checks, probes).",
            "thread_id": "The thread this call's steps belong to.",
            "stop_reason": "Why the model stopped (end_turn, tool_use, max_tokens...).",
            "input_tokens": "Input tokens billed.",
            "output_tokens": "Output tokens billed.",
            "cache_creation_input_tokens": "Input tokens written to the prompt cache.",
            "cache_read_input_tokens": "Input tokens read from the prompt cache.",
            "client_session_id": "The client's own session id (x-claude-code-session-id).",
            "request_id": "The upstream's request-id header.",
        },
    },
    "messages": {
        "description": "Each message once, keyed by the hash of its content and its parent's key, "
        "so conversations are chains sharing their prefixes.",
        "columns": {
            "key": "sha256 of the parent's key and the message's canonical JSON.",
            "parent_key": "The message before it in the conversation.",
            "depth": "Position in the chain, from 0.",
            "role": "user, assistant or system.",
            "content": "zlib-compressed JSON; blocks a step holds whole are stored as references.",
            "created_at": "When it was first seen (Unix time, shown in UTC).",
        },
    },
    "blobs": {
        "description": "System prompts, tool definitions and unparseable bodies, once by content hash.",
        "facets": ["kind"],
        "columns": {
            "hash": "sha256 of the content (first 128 bits).",
            "kind": "What the content is: system, tools, headers, request, response...",
            "size": "Size in bytes.",
            "content": "The bytes.",
        },
    },
    "threads": {
        "description": "The steps that lead to one commit: from the session start (or its previous "
        "commit) to the commit that binds it. Open the title for the thread page.",
        "sort_desc": "started_at",
        "facets": ["status", "repo_root"],
        "label_column": "title",
        "columns": {
            "id": "Thread id (12 hex characters).",
            "session_id": "The session it happened in.",
            "seq": "Order within the session, from 1.",
            "started_at": "When it opened (Unix time, shown in UTC).",
            "ended_at": "When the session ended with it unbound (Unix time, shown in UTC).",
            "status": "open (recording), pending (session over, no commit yet), bound (a commit binds it) "
            "or closed (only the agent's closing words, with no commit before them to join).",
            "commit_sha": "The commit that binds it.",
            "bound_at": "When the commit bound it (Unix time, shown in UTC).",
            "repo_root": "The git repository.",
            "title": "Its first prompt, on one line.",
            "base_snapshot": "The snapshot commit the thread starts from.",
        },
    },
    "steps": {
        "description": "A thread, step by step: prompts, thinking, text, tool calls and tool results. "
        "Search finds prompts, thinking, text and tool names; text renders as markdown.",
        "sort": "created_at",  # one sort column only in Datasette; within a thread this is seq order
        "facets": ["kind", "tool_name", "model"],
        "fts_table": "steps_fts",
        "columns": {
            "id": "Step id: <thread id>.<seq>.",
            "thread_id": "The thread.",
            "session_id": "The session.",
            "seq": "Order within the thread, from 1.",
            "exchange_id": "The exchange it came from.",
            "conversation_id": "The conversation it came from (main or a subagent's).",
            "parent_step_id": "For a subagent's steps: the tool call that started the subagent.",
            "created_at": "When it was recorded (Unix time, shown in UTC).",
            "kind": "prompt, thinking, text, tool_call, tool_result or other.",
            "text": "The prompt, reasoning, answer or tool result (markdown). A tool result over 1 kB is "
            "stored zlib-compressed and shown here as text; in SQL, lit_text(text) reads it.",
            "tool_name": "For a tool call: the tool (Read, Edit, Bash...).",
            "tool_input": "For a tool call: its input (JSON).",
            "tool_use_id": "Pairs a tool call with its result.",
            "is_error": "For a tool result: 1 when the tool failed.",
            "model": "The model that wrote it (responses only).",
            "raw": "The block as JSON when it carries more (signatures, unknown types).",
        },
    },
    "snapshots": {
        "description": "The working tree captured at turn boundaries, as commits on refs/lit/snapshots/<session>.",
        "sort_desc": "taken_at",
        "facets": ["reason"],
        "columns": {
            "id": "Row id.",
            "session_id": "The session.",
            "thread_id": "The thread open at the time.",
            "seq": "Order within the session.",
            "commit_sha": "The snapshot commit.",
            "tree_sha": "Its tree.",
            "reason": "start, turn, commit or end.",
            "step_ids": "The tool calls whose effects it captures (JSON list).",
            "taken_at": "When (Unix time, shown in UTC).",
            "duration_ms": "How long the snapshot took, in ms.",
        },
    },
    "line_map": {
        "description": "For a bound commit: which step wrote each added or changed line (empty step: a person).",
        "facets": ["path"],
        "columns": {
            "commit_sha": "The commit.",
            "path": "The file (new side of the diff).",
            "line_start": "First line of the range.",
            "line_end": "Last line of the range (inclusive).",
            "step_id": "The step that wrote these lines; empty when a person did.",
            "thread_id": "The thread of that step.",
        },
    },
    "_lit_migrations": {"hidden": True},
}

# Each a question people ask; parameters are Datasette's :named parameters (a form on the page).
QUERIES: dict[str, dict[str, str]] = {
    "threads_by_commit": {
        "title": "Threads by commit",
        "description": "The threads a commit binds (a SHA prefix works).",
        "sql": """select t.id as thread_id, t.commit_sha, t.status, t.title, t.repo_root,
  datetime(t.started_at, 'unixepoch') as started,
  (select count(*) from steps s where s.thread_id = t.id) as steps
from threads t
where t.commit_sha like :commit || '%' and length(:commit) >= 4
order by t.started_at""",
    },
    "line_map_of_commit": {
        "title": "Line map of a commit",
        "description": "Each added or changed line range of a commit and the step that wrote it "
        "(empty: a person).",
        "sql": """select m.commit_sha, m.path, m.line_start, m.line_end, m.step_id, m.thread_id,
  s.kind, s.tool_name
from line_map m left join steps s on s.id = m.step_id
where m.commit_sha like :commit || '%' and length(:commit) >= 4
order by m.path, m.line_start""",
    },
    "failed_tool_calls": {
        "title": "Failed tool calls",
        "description": "Tool results marked as errors, and commands whose result says they failed (a "
        "non-zero exit code, failing tests), next to the call that caused them.",
        "sql": """select r.id as step_id, r.thread_id, c.tool_name, c.tool_input, lit_text(r.text) as error,
  datetime(r.created_at, 'unixepoch') as at
from steps r left join steps c on c.tool_use_id = r.tool_use_id and +c.kind = 'tool_call'
where r.kind = 'tool_result' and lit_failed_run(lit_text(r.text), r.is_error, c.tool_input)
order by r.created_at desc""",
    },
    "usage_per_model_per_day": {
        "title": "Tokens and time per model per day",
        "description": "Calls, tokens and time spent waiting, per model and day (UTC).",
        "sql": """select date(started_at, 'unixepoch') as day, model, count(*) as calls,
  sum(input_tokens) as input_tokens, sum(output_tokens) as output_tokens,
  sum(cache_read_input_tokens) as cache_read_input_tokens,
  sum(cache_creation_input_tokens) as cache_creation_input_tokens,
  round(sum(duration_ms) / 1000.0, 1) as seconds
from exchanges
where model is not null
group by day, model
order by day desc, model""",
    },
    "prompts_touching_file": {
        "title": "Prompts that touched a file",
        "description": "The prompts of threads whose tool calls mention the path, or whose commit "
        "changed it.",
        "sql": """with touched as (
  select thread_id from steps
  where kind = 'tool_call' and instr(tool_input, :path) > 0
  union
  select thread_id from line_map where path = :path or path like '%/' || :path
)
select p.id as step_id, p.thread_id, t.commit_sha, datetime(p.created_at, 'unixepoch') as at,
  p.text as prompt
from steps p join touched on touched.thread_id = p.thread_id join threads t on t.id = p.thread_id
where p.kind = 'prompt' and length(:path) > 0
order by p.created_at desc""",
    },
}


def metadata() -> dict[str, Any]:
    """Datasette metadata for lit's DB, served under the database name DB_NAME."""
    return {
        "title": "lit",
        "description": "Threads recorded by lit: what was asked, the reasoning, the tools that ran, "
        "and the commits they led to.",
        "databases": {
            DB_NAME: {
                "description": "lit's DB. Threads and commits have pages: /-/lit/thread/ID and /-/lit/commit/SHA.",
                "tables": TABLES,
                "queries": QUERIES,
            }
        },
    }
