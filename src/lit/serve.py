"""`lit serve`: Datasette over lit's DB, read-only, with lit's pages and plugins.

    ds = make_datasette("~/.local/share/lit/lit.db")   # what tests use: await ds.client.get("/lit/threads")
    serve(db_path, port=8001)                           # what `lit serve` runs, until Ctrl-C

The DB is opened the way Datasette opens a mutable file (`mode=ro`, which sees a recorder's
live WAL writes; `immutable=1` would not), except where SQLite cannot make the WAL's
shared-memory file beside it (a read-only filesystem): there nobody can be writing it, and it is
served immutable (store.open_read_only decides). Every connection Datasette makes to it, its
write connection included, is set `PRAGMA query_only` by plugins/lit_pages.py: nothing served
can change the DB.

The front page (`/`), the thread and commit pages are built here from plain SQL over a sqlite3 connection, so the
plugin views stay thin and these functions can be tested without a server.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sqlite3
import sys
import threading
import time
import webbrowser
from pathlib import Path
from typing import Any

from datasette.app import Datasette

from lit import loopback, store
from lit.datasette_metadata import DB_NAME, metadata
from lit.errors import LitError
from lit.paths import plugins_dir, templates_dir
from lit.render import markdown, tool_summary
from lit.threads import note_steps, resolve
from lit.threads import rows as _rows

PLUGIN_CONFIG = {"database": DB_NAME}


def make_datasette(db_path: str | Path, *, settings: dict[str, Any] | None = None) -> Datasette:
    """A Datasette over lit's DB at `db_path`, named "lit" whatever the file is called, with lit's
    metadata, templates and plugins. The DB must exist (see `check_db`)."""
    path = str(Path(db_path).expanduser().resolve())
    meta = metadata()
    meta["plugins"] = {"lit": dict(PLUGIN_CONFIG)}
    conn, immutable = store.open_read_only(Path(path))
    conn.close()
    ds = Datasette(
        files=[] if immutable else [path],
        immutables=[path] if immutable else [],
        metadata=meta,
        template_dir=str(templates_dir()),
        plugins_dir=str(plugins_dir()),
        # Facet suggestions run a query per column over every row: seconds on 100,000 steps, for
        # suggestions the metadata's facets already make.
        settings={"sql_time_limit_ms": 3000, "suggest_facets": False, **(settings or {})},
    )
    # Named "lit" so URLs, metadata and canned queries do not depend on the file's name.
    (name, database), = [(n, d) for n, d in ds.databases.items() if d.path == path]
    if name != DB_NAME:
        ds.remove_database(name)
        ds.add_database(database, name=DB_NAME)
    return ds


def check_db(db_path: str | Path | None) -> Path:
    """The DB `lit serve` will show (store.resolve_db_path), brought up to this lit's schema when
    it can be written (its indexes make the pages fast); LitError in one line when there is none,
    when it is a folder, or when the file is not lit's (lit must not add its tables to someone
    else's SQLite file)."""
    path = store.resolve_db_path(db_path)
    store.read(path).conn.close()
    return path


def quiet_errors() -> None:
    """Take out Datasette's default error handler, which prints every error (a 404 too) with its
    traceback and local variables; plugins/lit_pages.py answers errors instead, with one line on
    stderr for a server error. For the `lit serve` process only: the plugin manager is global."""
    from datasette.plugins import pm

    default = pm.get_plugin("datasette.handle_exception")
    if default is not None:
        pm.unregister(default)


def serve(db_path: str | Path, *, host: str = "127.0.0.1", port: int = 8001, open_browser: bool = False,
          echo=print) -> None:
    """Serve until interrupted. Port 0 picks a free port; the URL is printed once listening."""
    import uvicorn

    quiet_errors()
    ds = make_datasette(db_path)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise LitError(f"cannot listen on {host}:{port}: {e.strerror} (try --port 0 for a free port)") from e
    sock.listen(128)
    bound = sock.getsockname()[1]
    url = f"http://[{host}]:{bound}/" if ":" in host else f"http://{host}:{bound}/"
    if not loopback.is_loopback(host):  # asked for on purpose: said once
        print(f"lit serve: listening on {host}: any machine that reaches it can read every thread",
              file=sys.stderr)
    app = loopback.guard(ds.app(), bound, host)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))

    async def main() -> None:
        await ds.invoke_startup()
        await ds.refresh_schemas()
        if open_browser:
            def show() -> None:
                if not webbrowser.open(url):
                    print(f"lit serve: could not open a browser (set $BROWSER to one); open {url}",
                          file=sys.stderr, flush=True)
            threading.Thread(target=show, daemon=True).start()
        echo(f"lit serve: {url} (read-only; Ctrl-C to stop)")
        await server.serve(sockets=[sock])

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


_FTS_TOKEN = re.compile(r"[^\W_]+\*?")  # what FTS5's unicode61 tokenizer calls a word


def escape_fts(query: str) -> str:
    """A search box's text as an FTS5 query for steps_fts: every word must match, a trailing *
    matches a prefix. steps_fts is built with detail=column (store.py), which refuses phrases, and
    Datasette quotes each term, so `file_path` became the phrase "file path" and an error; here
    it is two words. (`_searchmode=raw` still takes FTS5 syntax as typed.)"""
    terms = [f'"{t[:-1]}"*' if t.endswith("*") else f'"{t}"' for t in _FTS_TOKEN.findall(query or "")]
    return " ".join(terms) or '""'


# --- the pages' data ------------------------------------------------------------------------------


def format_time(ts: float | None) -> str:
    """Unix time as people read it on a page (UTC, so pages agree whoever serves them)."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts)) if ts else "-"


def woven_page(db_path: str | Path, sha: str, repo_root: str | None) -> str | None:
    """`lit weave`'s page for a commit, when its repository is on this machine (the diff comes
    from git); None otherwise, and the commit page shows the line map from the DB alone."""
    if not repo_root or not Path(repo_root, ".git").exists():
        return None
    from lit import weave

    try:
        chapters = weave.resolve(sha, cwd=repo_root, db_path=str(db_path))
    except LitError:
        return None
    if not chapters or chapters[0].commit != sha:
        return None
    return weave.render_page(chapters, title=f"lit weave {sha[:12]}")


def _parse_json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


# A thread page holds every step; a 2 MB file read by a tool should not make it a 2 MB page.
# Longer inputs and results are cut, and the page links to the step's row for the whole text.
PAGE_TEXT_LIMIT = 20_000


def _cut(text: str) -> tuple[str, bool]:
    return (text[:PAGE_TEXT_LIMIT], True) if len(text) > PAGE_TEXT_LIMIT else (text, False)


def thread_page(conn: sqlite3.Connection, ref: str) -> dict | None:
    """Everything the thread page shows, or None when no thread matches `ref` (id or id prefix).

    Tool calls carry their result (paired by tool_use_id) so the page folds them together; results
    with no call in the thread are shown on their own."""
    try:
        found = resolve(ref, db=conn, in_repo=False)
    except LitError:
        return None
    thread = _rows(conn, "SELECT * FROM threads WHERE id = ?", [found.thread])[0]
    tid = thread["id"]
    steps = store.thread_steps(conn, tid)
    calls = {s["tool_use_id"]: s for s in steps if s["kind"] == "tool_call" and s["tool_use_id"]}
    items = []
    for s in steps:
        if s["kind"] in ("tool_result", "other"):
            s["text"], s["text_cut"] = _cut(s["text"] or s["raw"] or "")
        if s["kind"] == "tool_result" and s["tool_use_id"] in calls:
            calls[s["tool_use_id"]]["result"] = s
            continue
        if s["kind"] == "tool_call":
            s["input"] = _parse_json(s["tool_input"])
            s["summary"] = tool_summary(s["input"], thread["repo_root"])
            s["input_text"], s["input_cut"] = _cut(
                json.dumps(s["input"], indent=2, ensure_ascii=False)
                if not isinstance(s["input"], str | None) else s["input"] or "")
        if s["kind"] in ("prompt", "thinking", "text"):
            s["html"] = markdown(s["text"])
        items.append(s)
    usage = _rows(conn, """SELECT COUNT(*) AS calls, group_concat(DISTINCT model) AS models,
        COALESCE(SUM(input_tokens), 0) AS input_tokens, COALESCE(SUM(output_tokens), 0) AS output_tokens,
        COALESCE(SUM(cache_read_input_tokens), 0) AS cache_read_input_tokens,
        COALESCE(SUM(cache_creation_input_tokens), 0) AS cache_creation_input_tokens,
        ROUND(COALESCE(SUM(duration_ms), 0) / 1000.0, 1) AS seconds
        FROM exchanges WHERE thread_id = ?""", [tid])[0]
    session = _rows(conn, "SELECT * FROM sessions WHERE id = ?", [thread["session_id"]])
    siblings = _rows(conn, "SELECT id, seq, title, commit_sha FROM threads WHERE session_id = ? AND seq IN (?, ?)",
                     [thread["session_id"], (thread["seq"] or 0) - 1, (thread["seq"] or 0) + 1])
    return {
        "thread": thread,
        "items": items,
        "steps": len(steps),
        "usage": usage,
        "session": session[0] if session else None,
        "previous": next((t for t in siblings if t["seq"] == (thread["seq"] or 0) - 1), None),
        "next": next((t for t in siblings if t["seq"] == (thread["seq"] or 0) + 1), None),
    }


def commit_page(conn: sqlite3.Connection, sha: str) -> dict | None:
    """What the commit page shows: the threads the commit binds, its line map by file with the
    step that wrote each range, and those steps. None when the DB knows no such commit."""
    if len(sha) < 4:
        return None
    threads = _rows(conn, "SELECT * FROM threads WHERE commit_sha LIKE ? ORDER BY started_at", [sha + "%"])
    ranges = _rows(conn, """SELECT m.*, s.seq, s.kind, s.tool_name, s.tool_input
        FROM line_map m LEFT JOIN steps s ON s.id = m.step_id
        WHERE m.commit_sha LIKE ? ORDER BY m.path, m.line_start""", [sha + "%"])
    if not threads and not ranges:
        return None
    shas = {t["commit_sha"] for t in threads} | {r["commit_sha"] for r in ranges}
    if len(shas) > 1:
        return {"ambiguous": sorted(shas), "sha": sha}
    full = shas.pop()
    files: dict[str, list[dict]] = {}
    for r in ranges:
        r["summary"] = tool_summary(_parse_json(r["tool_input"]))
        files.setdefault(r["path"], []).append(r)
    cited = sorted({r["step_id"] for r in ranges if r["step_id"]})
    steps = []
    whys: dict[str, dict] = {}  # thread id -> step id -> Step (lit.threads.note_steps: the why)
    for step_id in cited:
        rows = [store.plain_step(s) for s in _rows(conn, "SELECT * FROM steps WHERE id = ?", [step_id])]
        if rows:
            s = rows[0]
            if s["thread_id"] not in whys:
                whys[s["thread_id"]] = note_steps(store.thread_steps(conn, s["thread_id"]))[1]
            s["input"] = _parse_json(s["tool_input"])
            s["summary"] = tool_summary(s["input"])
            known = whys[s["thread_id"]].get(step_id)
            s["why"] = markdown(known.why if known else "")
            steps.append(s)
    prompts = []
    for t in threads:
        prompts += _rows(conn, "SELECT * FROM steps WHERE thread_id = ? AND kind = 'prompt' ORDER BY seq", [t["id"]])
    for p in prompts:
        p["html"] = markdown(p["text"])
    repo_root = next((t["repo_root"] for t in threads if t["repo_root"]), None)
    return {"sha": full, "threads": threads, "files": files, "repo_root": repo_root,
            "woven": bool(repo_root and Path(repo_root, ".git").exists()), "steps": steps, "prompts": prompts,
            "human_lines": sum(r["line_end"] - r["line_start"] + 1 for r in ranges if not r["step_id"]),
            "agent_lines": sum(r["line_end"] - r["line_start"] + 1 for r in ranges if r["step_id"])}


# --- the front page ---------------------------------------------------------------------------------

FRONT_THREADS = 25


def front_page(conn: sqlite3.Connection, tables: list[str]) -> dict:
    """What `lit serve` opens on: the newest threads (first prompt, repository, status, commit,
    models, when), the repositories with their thread counts, and lit's tables with their rows."""
    threads = _rows(conn, """SELECT t.id, t.title, t.repo_root, t.status, t.commit_sha, t.started_at,
          (SELECT COUNT(*) FROM steps s WHERE s.thread_id = t.id) AS steps,
          (SELECT group_concat(DISTINCT s.model) FROM steps s WHERE s.thread_id = t.id) AS models
        FROM threads t ORDER BY t.started_at DESC LIMIT ?""", [FRONT_THREADS])
    for t in threads:
        t["repository"] = Path(t["repo_root"]).name if t["repo_root"] else None
        t["models"] = ", ".join(sorted(set((t["models"] or "").split(",")) - {""}))
    repositories = _rows(conn, """SELECT repo_root, COUNT(*) AS threads,
          SUM(status = 'bound') AS bound, MAX(started_at) AS last FROM threads
        GROUP BY repo_root ORDER BY last DESC""")
    for r in repositories:
        r["name"] = Path(r["repo_root"]).name if r["repo_root"] else "(no repository)"
    counts = {name: conn.execute(f"SELECT COUNT(*) FROM [{name}]").fetchone()[0] for name in tables}
    return {"threads": threads, "repositories": repositories, "tables": counts,
            "total_threads": counts.get("threads", 0)}
