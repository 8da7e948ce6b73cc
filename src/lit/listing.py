"""What `lit sessions`, `lit threads` and `lit show` print: plain functions over the DB that return
data (for --json) and render it for a terminal."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import time

import sqlite_utils

from lit import store
from lit import threads as threads_module
from lit.render import tool_summary
from lit.terminal import safe


def sessions(db: sqlite_utils.Database, limit: int = 20) -> list[dict]:
    rows = list(db.query(
        """SELECT s.id, s.started_at, s.ended_at, s.argv, s.cwd, s.repo_root, s.agent, s.exit_code,
                  s.exchanges_unrecorded, s.pid,
                  (SELECT COUNT(*) FROM exchanges e WHERE e.session_id = s.id) AS exchanges,
                  (SELECT COUNT(*) FROM threads t WHERE t.session_id = s.id) AS threads,
                  (SELECT COUNT(*) FROM steps st JOIN threads t ON st.thread_id = t.id
                    WHERE t.session_id = s.id) AS steps
           FROM sessions s ORDER BY s.started_at DESC LIMIT ?""", [limit]))
    for r in rows:
        r["state"] = session_state(r)
    return rows


def session_state(row: dict) -> str:
    """ended; running (its lit is alive); or interrupted: lit was killed before it could close the
    session (what it recorded until then is all there)."""
    if row.get("ended_at"):
        return "ended"
    pid = row.get("pid")
    if pid:
        try:
            os.kill(pid, 0)
            return "running"
        except PermissionError:
            return "running"
        except OSError:
            pass
    return "interrupted"


def threads(db: sqlite_utils.Database, *, repo: str | None = None, limit: int = 20) -> list[dict]:
    where, params = "", []
    if repo:
        where, params = "WHERE t.repo_root = ?", [repo]
    return list(db.query(
        f"""SELECT t.id, t.session_id, t.started_at, t.status, t.commit_sha, t.title, t.repo_root,
                   (SELECT COUNT(*) FROM steps st WHERE st.thread_id = t.id) AS steps,
                   (SELECT COUNT(*) FROM steps st WHERE st.thread_id = t.id AND st.kind = 'tool_call')
                     AS tool_calls,
                   (SELECT group_concat(DISTINCT e.model) FROM exchanges e WHERE e.thread_id = t.id)
                     AS models
            FROM threads t {where} ORDER BY t.started_at DESC LIMIT ?""", [*params, limit]))


def thread_detail(db: sqlite_utils.Database, ref: str, cwd: str | os.PathLike | None = None) -> dict:
    """A thread (any reference lit.threads.resolve takes) with its steps and usage, from the DB."""
    thread = threads_module.db_thread(db, ref, cwd)
    usage = db.execute(
        """SELECT COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),
                  COALESCE(SUM(cache_read_input_tokens), 0), COALESCE(SUM(cache_creation_input_tokens), 0),
                  COUNT(*), group_concat(DISTINCT model)
           FROM exchanges WHERE thread_id = ?""", [thread["id"]]).fetchone()
    steps = store.thread_steps(db, thread["id"])
    for s in steps:
        if s.get("tool_input"):
            try:
                s["tool_input"] = json.loads(s["tool_input"])
            except ValueError:
                pass
    return {
        **thread,
        "usage": {"input_tokens": usage[0], "output_tokens": usage[1], "cache_read_input_tokens": usage[2],
                  "cache_creation_input_tokens": usage[3]},
        "exchanges": usage[4],
        "models": sorted(filter(None, (usage[5] or "").split(","))),
        "steps": steps,
    }


# --- rendering ----------------------------------------------------------------------------------


def ago(ts: float | None) -> str:
    if not ts:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def table(rows: list[list[str]], headers: list[str], *, cut: bool = True) -> str:
    """Columns for a terminal; every cell made safe for it (cells come from the DB)."""
    rows = [[safe(str(c)) for c in row] for row in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    term = shutil.get_terminal_size((120, 20)).columns if cut else None
    lines = []
    for row in [headers, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row, widths, strict=False)]
        lines.append("  ".join(cells).rstrip()[:term])
    return "\n".join(lines)


def render_sessions(rows: list[dict]) -> str:
    if not rows:
        return "No sessions recorded yet. Record one with: lit record -- claude"
    body = []
    for r in rows:
        exit_code = str(r["exit_code"]) if r["exit_code"] is not None else r.get("state", "")
        body.append([r["id"], ago(r["started_at"]), exit_code if exit_code != "ended" else "",
                     str(r["exchanges"]), str(r["threads"]), str(r["steps"]),
                     os.path.basename(r["repo_root"] or "") or "-"])
    headers = ["SESSION", "STARTED", "EXIT", "EXCHANGES", "THREADS", "STEPS", "REPO", "COMMAND"]
    # The command as it was typed, cut in the middle to fit: its start says what ran, its end
    # what it was asked.
    room = shutil.get_terminal_size((120, 20)).columns - sum(
        max(len(x) for x in col) + 2 for col in zip(headers, *body, strict=False))
    for row, r in zip(body, rows, strict=True):
        row.append(shorten_middle(safe(shlex.join(json.loads(r["argv"] or "[]"))), max(room, 24)))
    return table(body, headers, cut=False)  # already fitted; on a narrow screen it wraps, whole


def shorten_middle(text: str, width: int) -> str:
    """`text` on one line, cut in the middle with "…" when longer than `width`."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    head = width // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


def render_threads(rows: list[dict]) -> str:
    if not rows:
        return "No threads yet. Record a session with: lit record -- claude"
    body = [[r["id"], ago(r["started_at"]), r["status"], (r["commit_sha"] or "")[:7] or "-", str(r["steps"]),
             str(r["tool_calls"]), r["models"] or "-", r["title"] or ""] for r in rows]
    return table(body, ["THREAD", "STARTED", "STATUS", "COMMIT", "STEPS", "TOOLS", "MODELS", "FIRST PROMPT"])


KIND_LABEL = {"prompt": "PROMPT", "thinking": "thinking", "text": "says", "tool_call": "tool",
              "tool_result": "result", "other": "other"}


def render_thread(detail: dict, *, color: bool = False, width: int | None = None) -> str:
    width = width or shutil.get_terminal_size((100, 20)).columns
    bold = (lambda s: f"\x1b[1m{s}\x1b[0m") if color else (lambda s: s)
    dim = (lambda s: f"\x1b[2m{s}\x1b[0m") if color else (lambda s: s)
    red = (lambda s: f"\x1b[31m{s}\x1b[0m") if color else (lambda s: s)
    u = detail["usage"]
    # Every string below comes from the DB (a prompt, a tool's output, a model's words): safe().
    head = [
        bold(f"thread {safe(detail['id'])}") + f"  ({safe(detail['status'])}"
        + (f", commit {safe(detail['commit_sha'][:12])}" if detail.get("commit_sha") else "") + ")",
        f"session {safe(detail['session_id'])}  started {ago(detail['started_at'])}"
        f"  models {safe(', '.join(detail['models'])) or '-'}",
        f"{detail['exchanges']} exchange{'s' * (detail['exchanges'] != 1)}, "
        f"{u['input_tokens']} input + {u['output_tokens']} output tokens"
        f" ({u['cache_read_input_tokens']} cache read)",
        "",
    ]
    out = head
    for s in detail["steps"]:
        label = KIND_LABEL.get(s["kind"], safe(s["kind"]))
        indent = "    " if s.get("parent_step_id") else ""
        sid = dim(safe(s["id"]))
        if s["kind"] == "tool_call":
            summary = safe(tool_summary(s.get("tool_input"), detail.get("repo_root")))
            out.append(f"{indent}{sid} {bold(label)} {safe(s.get('tool_name'))}: {summary}")
        elif s["kind"] == "tool_result":
            text = _clip(safe(s.get("text")), width - 30)
            mark = red("error ") if s.get("is_error") else ""
            out.append(f"{indent}{sid} {label}: {mark}{text}")
        elif s["kind"] == "prompt":
            if out[-1]:
                out.append("")
            out.append(f"{indent}{sid} {bold(label)}")
            out.extend(indent + "  " + line for line in safe(s.get("text")).splitlines())
        elif s["kind"] in ("thinking", "text", "context"):
            text = safe(s.get("text")) or "(redacted)"
            shown = dim(_clip(text, width - 30)) if s["kind"] != "text" else _clip(text, width - 26)
            out.append(f"{indent}{sid} {label}: {shown}")
        else:
            out.append(f"{indent}{sid} {label}: {_clip(safe(s.get('raw')), width - 30)}")
    return "\n".join(out)


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    n = max(n, 20)
    return text if len(text) <= n else text[: n - 1] + "…"
