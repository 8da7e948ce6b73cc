"""`lit serve`: Datasette's own test client over a real DB filled with the store's functions, and a
real git repository for the commit the first thread binds."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from lit_fixtures import commit_files, init_repo
from markupsafe import escape

from lit import store
from lit.datasette_metadata import QUERIES, TABLES
from lit.serve import make_datasette

DAY = 86400
T0 = 1795894800  # 2026-11-28 19:40 UTC
HOSTILE = "<script>alert('x')</script> and [a link](javascript:alert(1))"
# A tool result long enough to be stored compressed (store.pack_text): shown as text everywhere.
BASH_ERROR = "bash: pytonh: command not found\n" + "".join(f"hint {i}: did you mean python3 src/app.py?\n"
                                                           for i in range(80)) + "the last line of the output"


@dataclass
class Story:
    db_path: Path
    repo: Path
    commit: str
    bound: str  # thread bound to `commit`
    pending: str  # a second thread, not committed
    session: str


def build(tmp_path: Path) -> Story:
    """One recorded session, as the recorder leaves it: a thread that a commit bound (a prompt with
    hostile text, thinking, text, a Write and its result, a failing Bash, a subagent, an unknown
    block) and the next thread, still pending."""
    repo = init_repo(tmp_path / "repo")
    commit = commit_files(repo, {"src/app.py": "import sys\n\n\ndef main():\n    print('hi')\n    return 0\n"},
                          "Add app.py", when=T0 + 600)
    db_path = tmp_path / "lit.db"
    db = store.connect(db_path)
    session = "a0b1c2d3e4f5"
    with db.conn:
        db["sessions"].insert({"id": session, "started_at": T0, "ended_at": T0 + 1200, "argv": '["claude"]',
                               "cwd": str(repo), "repo_root": str(repo), "agent": "claude-cli/2.1.197",
                               "exit_code": 0})
        bound = store.open_thread(db, session, str(repo))
        db["threads"].update(bound, {"started_at": T0, "title": "Write app.py that prints hi"})
        steps = [
            {"kind": "prompt", "text": "Write app.py that prints hi.\n\n" + HOSTILE},
            {"kind": "thinking", "text": "The user wants **a script**; `print` is enough."},
            {"kind": "text", "text": "I'll write `src/app.py`."},
            {"kind": "tool_call", "tool_name": "Write", "tool_use_id": "toolu_01Write",
             "tool_input": json.dumps({"file_path": "src/app.py", "content": "def main(): ..."})},
            {"kind": "tool_result", "tool_use_id": "toolu_01Write", "is_error": 0,
             "text": "File created successfully at: src/app.py"},
            {"kind": "thinking", "text": "Now check that `app_main` runs."},
            {"kind": "tool_call", "tool_name": "Bash", "tool_use_id": "toolu_02Bash",
             "tool_input": json.dumps({"command": "pytonh src/app.py"})},
            {"kind": "tool_result", "tool_use_id": "toolu_02Bash", "is_error": 1, "text": BASH_ERROR},
            {"kind": "tool_call", "tool_name": "Task", "tool_use_id": "toolu_03Task",
             "tool_input": json.dumps({"prompt": "Review src/app.py", "description": "review"})},
            {"kind": "text", "text": "The subagent says it looks fine.", "parent": 9},
            {"kind": "tool_result", "tool_use_id": "toolu_03Task", "is_error": 0, "text": "Looks fine."},
            {"kind": "other", "raw": json.dumps({"type": "server_tool_use_unknown", "x": 1})},
        ]
        for seq, s in enumerate(steps, 1):
            parent = s.pop("parent", None)
            db["steps"].insert(store.packed_step({  # as the recorder writes them
                "id": f"{bound}.{seq}", "thread_id": bound, "session_id": session, "seq": seq,
                "created_at": T0 + seq, "model": "claude-sonnet-4-6",
                "parent_step_id": f"{bound}.{parent}" if parent else None,
                "conversation_id": "sub" if parent else "main", **s}))
        db["line_map"].insert_all([
            {"commit_sha": commit, "path": "src/app.py", "line_start": 1, "line_end": 5, "step_id": f"{bound}.4",
             "thread_id": bound},
            {"commit_sha": commit, "path": "src/app.py", "line_start": 6, "line_end": 6, "step_id": None,
             "thread_id": bound},
        ])
        db["threads"].update(bound, {"status": "bound", "commit_sha": commit, "bound_at": T0 + 600})
        pending = store.open_thread(db, session, str(repo))
        db["threads"].update(pending, {"started_at": T0 + 700, "status": "pending", "title": "Add a README"})
        for seq, s in enumerate([
            {"kind": "prompt", "text": "Add a README"},
            {"kind": "tool_call", "tool_name": "Write", "tool_use_id": "toolu_04Readme",
             "tool_input": json.dumps({"file_path": "README.md", "content": "# app"})},
        ], 1):
            db["steps"].insert({"id": f"{pending}.{seq}", "thread_id": pending, "session_id": session, "seq": seq,
                                "created_at": T0 + 700 + seq, "conversation_id": "main", **s})
        for i, (model, day, thread) in enumerate([("claude-sonnet-4-6", 0, bound), ("claude-sonnet-4-6", 0, bound),
                                                  ("claude-haiku-4-5", 0, None), ("claude-sonnet-4-6", 1, pending)]):
            db["exchanges"].insert({"id": f"{session}.{i + 1}", "session_id": session, "seq": i + 1,
                                    "started_at": T0 + day * DAY + i, "model": model, "thread_id": thread,
                                    "role": "main" if thread else "side", "status": 200, "complete": 1,
                                    "input_tokens": 1000, "output_tokens": 100, "cache_read_input_tokens": 50,
                                    "cache_creation_input_tokens": 10, "duration_ms": 1500.0})
    db.conn.close()
    return Story(db_path, repo, commit, bound, pending, session)


@pytest.fixture(scope="module")
def story(tmp_path_factory) -> Story:
    return build(tmp_path_factory.mktemp("serve"))


def get(story: Story, *paths: str):
    """GET each path through one Datasette made by make_datasette; returns the responses."""
    async def run():
        ds = make_datasette(story.db_path)
        return [await ds.client.get(p) for p in paths]
    return asyncio.run(run())


def rows(story: Story, path: str) -> list[dict]:
    response, = get(story, path)
    assert response.status_code == 200, response.text[:2000]
    return response.json()


# --- metadata -------------------------------------------------------------------------------------


def test_every_table_and_column_users_see_is_described(tmp_path):
    db = store.connect(tmp_path / "fresh.db")
    for table in ("sessions", "exchanges", "threads", "steps", "snapshots", "line_map", "messages", "blobs"):
        described = TABLES[table]["columns"]
        assert TABLES[table]["description"]
        assert set(db[table].columns_dict) == set(described), table
        assert all(described.values()), table


def test_the_index_shows_lit_and_hides_internal_tables(story):
    index, = get(story, "/lit.json")
    data = index.json()
    hidden = {t["name"] for t in data["tables"] if t["hidden"]}
    shown = {t["name"] for t in data["tables"] if not t["hidden"]}
    assert {"_lit_migrations", "steps_fts", "steps_fts_data", "steps_fts_config", "steps_fts_idx"} <= hidden
    assert {"threads", "steps", "sessions", "exchanges", "line_map"} <= shown
    home, = get(story, "/")
    assert home.text.count("<title>lit:") == 1


def test_threads_newest_first_with_facets(story):
    response, = get(story, "/lit/threads.json?_shape=objects")
    data = response.json()
    assert [r["id"] for r in data["rows"]] == [story.pending, story.bound]
    assert {"status", "repo_root"} <= set(data["facet_results"])
    steps, = get(story, "/lit/steps.json")
    assert {"kind", "tool_name", "model"} <= set(steps.json()["facet_results"])


def test_steps_in_thread_order_and_searchable(story):
    data = rows(story, f"/lit/steps.json?_shape=array&thread_id={story.bound}")
    assert [r["seq"] for r in data] == list(range(1, 13))
    # Search finds what people and the model wrote (prompts, thinking, text) and tools by name;
    # tool inputs and results are program output, most of a DB's bytes: "pytonh" is only in the
    # Bash call's input and in its result, so nothing is found; the call is, by its tool's name.
    assert rows(story, "/lit/steps.json?_shape=array&_search=pytonh") == []
    assert [r["id"] for r in rows(story, "/lit/steps.json?_shape=array&_search=Bash")] == [f"{story.bound}.7"]
    # An identifier, as people type it: steps_fts refuses phrases (detail=column), so lit's
    # escape_fts makes `app_main` two words rather than Datasette's phrase (an error).
    hits = rows(story, "/lit/steps.json?_shape=array&_search=app_main")
    assert [r["id"] for r in hits] == [f"{story.bound}.6"]
    assert {r["id"] for r in rows(story, "/lit/steps.json?_shape=array&_search=scri*")} == {
        f"{story.bound}.1", f"{story.bound}.2"}


def test_a_compressed_tool_result_reads_as_text(story):
    """A long tool result is stored compressed; Datasette's pages show its text (cut on the table's
    page as Datasette cuts long text, whole on the step's page) and SQL reads it with lit_text()."""
    step = f"{story.bound}.8"
    conn = sqlite3.connect(story.db_path)
    assert conn.execute("SELECT typeof(text) FROM steps WHERE id = ?", [step]).fetchone() == ("blob",)
    conn.close()
    table, row = get(story, f"/lit/steps?id={step}", f"/lit/steps/{step.replace('.', '~2E')}")
    assert "bash: pytonh: command not found" in table.text and "the last line of the output" not in table.text
    assert "Binary" not in table.text
    assert "the last line of the output" in row.text and "Binary" not in row.text
    got = rows(story, f"/lit.json?_shape=array&sql=select+lit_text(text)+as+t+from+steps+where+id='{step}'")
    assert got == [{"t": BASH_ERROR}]
    # A query of the steps (with their kind) shows the text too, cut as Datasette cuts long text.
    query, = get(story, f"/lit?sql=select+id,+kind,+text+from+steps+where+id='{step}'")
    assert "bash: pytonh: command not found" in query.text and "Binary" not in query.text
    assert "the last line of the output" not in query.text


def test_every_table_page_and_the_database_page_answer(story):
    tables = ["sessions", "exchanges", "messages", "blobs", "threads", "steps", "snapshots", "line_map"]
    pages = get(story, "/lit", *(f"/lit/{t}" for t in tables), f"/lit/threads/{story.bound}",
                f"/lit/steps/{story.bound}~2E1")
    assert [p.status_code for p in pages] == [200] * len(pages)
    database, *table_pages, thread_row, step_row = pages
    for query in QUERIES.values():
        assert query["title"] in database.text
    for table, page in zip(tables, table_pages, strict=True):
        assert str(escape(TABLES[table]["description"])) in page.text, table
    # The row page of a thread links to its thread page, a step's row to its place in the thread.
    assert f'href="/-/lit/thread/{story.bound}" title="the thread&#39;s page">{story.bound}</a>' in thread_row.text
    assert f'href="/-/lit/thread/{story.bound}#step-1"' in step_row.text


# --- pages ----------------------------------------------------------------------------------------


def test_thread_page(story):
    page, = get(story, f"/-/lit/thread/{story.bound}")
    assert page.status_code == 200
    html = page.text
    assert "<h1>Write app.py that prints hi</h1>" in html
    # Markdown renders; the hostile prompt does not run and its link is not a link.
    assert "<strong>a script</strong>" in html and "<code>src/app.py</code>" in html
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html
    assert 'href="javascript:' not in html
    # Tool calls fold with their results; the failed one says so.
    assert html.count('<details class="lit-tool') == 3
    assert "<strong>Bash</strong> <code>pytonh src/app.py</code> <span class=\"lit-failed\">failed</span>" in html
    assert "bash: pytonh: command not found" in html
    assert '<div class="lit-label" id="step-8">Result (error), step 8</div>' in html  # a result's link lands
    assert 'id="step-10" class="lit-step lit-text lit-subagent"' in html
    assert "server_tool_use_unknown" in html
    # Linked to its commit, its session and its next thread.
    assert f'href="/-/lit/commit/{story.commit}"' in html
    assert f'href="/-/lit/thread/{story.pending}">next thread' in html
    assert "3 calls" not in html and "2 calls, 2,000 input tokens" in html


def test_a_huge_tool_result_is_cut_on_the_page(tmp_path):
    story = build(tmp_path)
    db = store.connect(story.db_path)
    with db.conn:
        db["steps"].update(f"{story.bound}.5", {"text": "x" * 300_000 + "THE END"})
    db.conn.close()
    page, = get(story, f"/-/lit/thread/{story.bound}")
    assert page.status_code == 200 and len(page.text) < 100_000
    assert "THE END" not in page.text
    assert f'Cut at 20,000 characters: <a href="/lit/steps/{story.bound}~2E5">the whole step</a>' in page.text
    whole, = get(story, f"/lit/steps/{story.bound}~2E5")
    assert whole.status_code == 200 and "THE END" in whole.text


def test_thread_page_by_prefix_redirects_and_unknown_is_404(story):
    short, unknown = get(story, f"/-/lit/thread/{story.bound[:6]}", "/-/lit/thread/000000000000")
    assert short.status_code == 302 and short.headers["location"] == f"/-/lit/thread/{story.bound}"
    assert unknown.status_code == 404


def test_commit_page_links_both_ways_and_weaves(story):
    page, woven, short, unknown = get(story, f"/-/lit/commit/{story.commit}", f"/-/lit/commit/{story.commit}/woven",
                                      f"/-/lit/commit/{story.commit[:7]}", "/-/lit/commit/0000000")
    assert page.status_code == 200
    html = page.text
    assert f'href="/-/lit/thread/{story.bound}">Write app.py that prints hi</a>' in html
    assert "5 written by the agent, 1 by a person" in html
    assert f'href="/-/lit/thread/{story.bound}#step-4">Write (step {story.bound}.4)</a>' in html
    assert '<span class="lit-human">a person</span>' in html
    assert f'src="/-/lit/commit/{story.commit}/woven"' in html
    # The woven page is lit weave's: the diff's lines are there, from the real repository.
    assert woven.status_code == 200 and "print" in woven.text and story.commit in woven.text
    assert short.status_code == 302 and short.headers["location"] == f"/-/lit/commit/{story.commit}"
    assert unknown.status_code == 404


def test_commit_page_without_its_repository_shows_the_line_map(tmp_path):
    story = build(tmp_path)
    story.repo.rename(tmp_path / "moved")  # a DB copied from another machine, or a deleted clone
    page, woven = get(story, f"/-/lit/commit/{story.commit}", f"/-/lit/commit/{story.commit}/woven")
    assert page.status_code == 200 and "The woven diff" not in page.text
    assert "<h2>Line map</h2>" in page.text and '<span class="lit-human">a person</span>' in page.text
    assert woven.status_code == 404


def test_table_cells_link_to_pages_and_render_markdown_safely(story):
    threads, steps = get(story, "/lit/threads", f"/lit/steps?thread_id={story.bound}&kind=prompt")
    commit_link = f'<a href="/-/lit/commit/{story.commit}" title="the commit&#39;s page">{story.commit[:12]}</a>'
    assert commit_link in threads.text
    assert f'<a href="/-/lit/thread/{story.bound}" title="the thread&#39;s page">Write app.py' in threads.text
    assert "2026-11-28 19:40 UTC" in threads.text  # started_at as a date, not 1795894800.0
    assert f'href="/-/lit/thread/{story.bound}" title="the thread&#39;s page">{story.bound}</a>' in steps.text
    assert '<div class="lit-markdown"><p>Write app.py that prints hi.</p>' in steps.text
    assert "<script>alert" not in steps.text and 'href="javascript:' not in steps.text


# --- canned queries -------------------------------------------------------------------------------


def test_threads_by_commit(story):
    data = rows(story, f"/lit/threads_by_commit.json?_shape=array&commit={story.commit[:8]}")
    assert [(r["thread_id"], r["steps"]) for r in data] == [(story.bound, 12)]


def test_line_map_of_commit(story):
    data = rows(story, f"/lit/line_map_of_commit.json?_shape=array&commit={story.commit[:8]}")
    assert [(r["path"], r["line_start"], r["line_end"], r["tool_name"]) for r in data] == [
        ("src/app.py", 1, 5, "Write"), ("src/app.py", 6, 6, None)]


def test_failed_tool_calls(story):
    data = rows(story, "/lit/failed_tool_calls.json?_shape=array")
    assert len(data) == 1
    assert data[0]["tool_name"] == "Bash" and json.loads(data[0]["tool_input"]) == {"command": "pytonh src/app.py"}
    assert data[0]["error"] == BASH_ERROR  # stored compressed, read by lit_text()


def test_usage_per_model_per_day(story):
    data = rows(story, "/lit/usage_per_model_per_day.json?_shape=array")
    assert [(r["day"], r["model"], r["calls"], r["input_tokens"], r["output_tokens"], r["seconds"]) for r in data] == [
        ("2026-11-29", "claude-sonnet-4-6", 1, 1000, 100, 1.5),
        ("2026-11-28", "claude-haiku-4-5", 1, 1000, 100, 1.5),
        ("2026-11-28", "claude-sonnet-4-6", 2, 2000, 200, 3.0),
    ]


def test_prompts_touching_file(story):
    app = rows(story, "/lit/prompts_touching_file.json?_shape=array&path=src/app.py")
    assert [r["thread_id"] for r in app] == [story.bound]
    assert app[0]["prompt"].startswith("Write app.py that prints hi.")
    readme = rows(story, "/lit/prompts_touching_file.json?_shape=array&path=README.md")
    assert [(r["thread_id"], r["prompt"]) for r in readme] == [(story.pending, "Add a README")]
    page, = get(story, "/lit/prompts_touching_file?path=src/app.py")
    assert "<script>alert" not in page.text and 'href="javascript:' not in page.text


def test_every_canned_query_answers_its_page(story):
    params = {"commit": story.commit[:8], "path": "src/app.py"}
    for name in QUERIES:
        page, = get(story, f"/lit/{name}?" + "&".join(f"{k}={v}" for k, v in params.items()))
        assert page.status_code == 200, name
        assert QUERIES[name]["title"] in page.text


# --- read-only ------------------------------------------------------------------------------------


def test_writing_through_datasette_is_refused(story):
    before = sqlite3.connect(story.db_path).execute("SELECT COUNT(*) FROM threads").fetchone()[0]
    sql, = get(story, "/lit.json?sql=delete+from+threads")
    assert sql.status_code == 400

    async def write():
        ds = make_datasette(story.db_path)
        await ds.invoke_startup()
        await ds.get_database("lit").execute_write("DELETE FROM threads")

    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        asyncio.run(write())
    assert sqlite3.connect(story.db_path).execute("SELECT COUNT(*) FROM threads").fetchone()[0] == before == 2


def test_sees_what_the_recorder_writes_while_it_serves(tmp_path):
    story = build(tmp_path)
    writer = store.connect(story.db_path)  # the recorder, holding the DB open in WAL mode

    async def run():
        ds = make_datasette(story.db_path)
        first = (await ds.client.get("/lit/threads.json?_shape=array")).json()
        with writer.conn:
            store.open_thread(writer, story.session, None)
        second = (await ds.client.get("/lit/threads.json?_shape=array")).json()
        return len(first), len(second)

    assert asyncio.run(run()) == (2, 3)


# --- the command ----------------------------------------------------------------------------------


def test_lit_serve_refuses_a_file_that_is_not_lits_db(tmp_path):
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE birds (name TEXT)").connection.commit()
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all " * 100)
    for path, reason in ((other, "is not a lit DB (no _lit_migrations table)"), (text, "is not a lit DB: file")):
        proc = subprocess.run([sys.executable, "-m", "lit", "serve", "--db", str(path)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert proc.stderr.startswith(f"lit: {path} {reason}")
    # lit added nothing to the other program's DB.
    assert [r[0] for r in sqlite3.connect(other).execute("SELECT name FROM sqlite_master")] == ["birds"]


def test_lit_serve_open_shows_the_front_page_in_the_browser(tmp_path):
    story = build(tmp_path)
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser"  # what $BROWSER names, as webbrowser runs it: the URL is its argument
    # written whole, then renamed: the test reads it as soon as it exists
    browser.write_text(f'#!/bin/sh\necho "$1" > {opened}.part && mv {opened}.part {opened}\n')
    browser.chmod(0o755)
    env = {**os.environ, "BROWSER": str(browser), "HOME": str(tmp_path), "DISPLAY": ""}
    server = subprocess.Popen([sys.executable, "-m", "lit", "serve", "--db", str(story.db_path), "--port", "0",
                               "--open"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = server.stdout.readline().split()[2]
        deadline = time.monotonic() + 20
        while not opened.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert opened.read_text().strip() == url
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
        with direct.open(url) as page:
            assert "Write app.py that prints hi" in page.read().decode()
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_lit_serve_on_a_port_in_use_says_so_in_one_line(tmp_path):
    story = build(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "lit", "serve", "--db", str(story.db_path), "--port", str(port)],
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"lit: cannot listen on 127.0.0.1:{port}: Address already in use (try --port 0 for a free port)"]


def test_lit_serve_help_has_an_example():
    proc = subprocess.run([sys.executable, "-m", "lit", "serve", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "Example:" in proc.stdout and "lit serve --open" in proc.stdout


def test_lit_serve_without_a_db_says_so_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lit", "serve", "--db", str(tmp_path / "none.db")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"lit: no lit DB at {tmp_path / 'none.db'}: record a session first (lit record -- AGENT), or pass --db PATH"]


# --- the front page, errors, a read-only DB (issue 18) ----------------------------------------------


def test_the_front_page_shows_recent_threads_search_repositories_and_tables(story):
    page, search = get(story, "/", "/lit/steps.json?_shape=array&_search=script&kind__in=prompt,thinking,text")
    assert page.status_code == 200
    html = page.text
    recent = html.split("<h2>Recent threads</h2>", 1)[1].split("</table>", 1)[0]
    # newest first: the pending thread, then the bound one with its commit, models and time
    assert recent.index("Add a README") < recent.index("Write app.py that prints hi")
    assert f'<a href="/-/lit/thread/{story.bound}">Write app.py that prints hi</a>' in recent
    assert f'<a href="/-/lit/commit/{story.commit}"><code>{story.commit[:7]}</code></a>' in recent
    assert "bound" in recent and "pending" in recent and "claude-sonnet-4-6" in recent
    assert "2026-11-28 19:40 UTC" in recent and ">repo<" in recent
    # a search box over prompts and reasoning, which finds them
    assert '<form class="lit-search" action="/lit/steps"' in html
    assert 'name="_search"' in html and 'name="kind__in" value="prompt,thinking,text"' in html
    assert {r["kind"] for r in search.json()} == {"prompt", "thinking"}
    # repositories with their thread counts, and every table one click away
    repositories = html.split("<h2>Repositories</h2>", 1)[1].split("</table>", 1)[0]
    assert f'?repo_root={story.repo}">repo</a>' in repositories
    assert "<td>2</td><td>1</td>" in repositories  # 2 threads, 1 of them committed
    for table in ("sessions", "threads", "steps", "exchanges", "line_map"):
        assert f'<a href="/lit/{table}">{table}</a>' in html
    assert "_lit_migrations" not in html


def test_a_bad_or_unknown_id_is_a_404(story):
    paths = ["/-/lit/thread/XYZ", "/-/lit/thread/abcdef", "/-/lit/commit/zz", "/-/lit/commit/abcdef",
             "/-/lit/commit/zz/woven", "/robots.txt", "/lit/no_such_table"]
    assert [r.status_code for r in get(story, *paths)] == [404] * len(paths)


def test_lit_serve_writes_no_line_per_request(tmp_path):
    story = build(tmp_path)
    server = subprocess.Popen([sys.executable, "-m", "lit", "serve", "--db", str(story.db_path), "--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        url = server.stdout.readline().split()[2]
        statuses = []
        for path in ["", "robots.txt", "-/lit/thread/XYZ", "-/lit/commit/zz", "lit/nope.json",
                     f"-/lit/thread/{story.bound}", "favicon.ico"] * 3:
            try:
                statuses.append(direct.open(url + path, timeout=20).status)
            except urllib.error.HTTPError as e:
                statuses.append(e.code)
        assert set(statuses) == {200, 404}
    finally:
        server.terminate()
        out, err = server.communicate(timeout=10)
    assert out == "" and err == "", (out, err)


def test_failed_tool_calls_has_commands_that_failed_by_exit_code(tmp_path):
    story = build(tmp_path)
    db = store.connect(story.db_path)
    with db.conn:  # a shell tool whose result says it failed, as examples/agent.py's run_shell does
        for seq, (tool_input, result) in enumerate([({"command": "python -m unittest"}, "exit code 1\nFAILED"),
                                                    ({"command": "python -m unittest -v"}, "exit code 0\nOK")], 13):
            db["steps"].insert({"id": f"{story.bound}.{seq}", "thread_id": story.bound, "seq": seq * 2,
                                "session_id": story.session, "kind": "tool_call", "tool_name": "run_shell",
                                "tool_use_id": f"toolu_{seq}", "tool_input": json.dumps(tool_input)})
            db["steps"].insert({"id": f"{story.bound}.{seq}r", "thread_id": story.bound, "seq": seq * 2 + 1,
                                "session_id": story.session, "kind": "tool_result", "is_error": 0,
                                "tool_use_id": f"toolu_{seq}", "text": result, "created_at": T0 + seq})
    db.conn.close()
    failed = rows(story, "/lit/failed_tool_calls.json?_shape=array")
    assert [(r["tool_name"], r["error"]) for r in failed] == [
        ("run_shell", "exit code 1\nFAILED"), ("Bash", BASH_ERROR)]


@contextlib.contextmanager
def read_only(folder: Path):
    """`folder` read-only, as a read-only filesystem makes it: for root (whom chmod does not stop)
    a read-only bind mount of it over itself; for anyone else, chmod."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_db_on_a_read_only_filesystem_can_be_read_and_served(tmp_path):
    story = build(tmp_path)
    folder = tmp_path / "ro"
    folder.mkdir()
    story.db_path.rename(folder / "lit.db")  # closed, so no -wal or -shm beside it
    env = {**os.environ, "LIT_DB": str(folder / "lit.db")}
    lit = [sys.executable, "-m", "lit"]
    with read_only(folder):
        with pytest.raises(OSError):
            (folder / "probe").write_text("x")
        for args in (["threads", "--all"], ["sessions"], ["show", story.bound],
                     ["export", story.bound, "-o", str(tmp_path / "t.jsonl")]):
            proc = subprocess.run([*lit, *args], capture_output=True, text=True, env=env, timeout=60)
            assert proc.returncode == 0, (args, proc.stderr)
        blame = subprocess.run([*lit, "blame", "src/app.py", "--json"], cwd=story.repo, capture_output=True,
                               text=True, env=env, timeout=60)
        assert blame.returncode == 0 and story.bound in blame.stdout, blame.stderr
        server = subprocess.Popen([*lit, "serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=env)
        try:
            url = server.stdout.readline().split()[2]
            direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            for path in ("", f"-/lit/thread/{story.bound}", "lit/threads"):
                with direct.open(url + path) as page:
                    assert "Write app.py that prints hi" in page.read().decode(), path
        finally:
            server.terminate()
            server.wait(timeout=10)
    assert sorted(p.name for p in folder.iterdir()) == ["lit.db"]
