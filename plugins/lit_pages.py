"""lit's pages in Datasette: /-/lit/thread/ID and /-/lit/commit/SHA, and the read-only guard.

Loaded by `lit serve` as a plugins directory. Datasette registers plugins process-wide, so each
hook acts only on a Datasette made by lit.serve.make_datasette (its metadata names the "lit"
plugin and the database it serves).
"""

from __future__ import annotations

import asyncio
import re
import sys

from datasette import hookimpl
from datasette.utils import tilde_encode
from datasette.utils.asgi import Base400, NotFound, Response
from datasette.views.base import DatasetteError

from lit import serve, store
from lit.datasette_metadata import TABLES
from lit.pr import failed_run


def _lit_db(datasette) -> str | None:
    config = datasette.plugin_config("lit")
    return config.get("database") if config else None


@hookimpl(trylast=True)  # after Datasette's own functions, so lit's escape_fts replaces its
def prepare_connection(conn, database, datasette):
    if database != _lit_db(datasette):
        return
    # Every connection to lit's DB, Datasette's write connection too: nothing served can write,
    # while the recorder, another process, keeps writing through its own connections.
    conn.execute("PRAGMA query_only = 1")
    conn.create_function("escape_fts", 1, serve.escape_fts)
    conn.create_function("lit_failed_run", 3, failed_run)
    conn.create_function("lit_text", 1, store.step_text, deterministic=True)


@hookimpl
def prepare_jinja2_environment(env, datasette):
    env.filters["lit_markdown"] = serve.markdown
    env.filters["lit_time"] = serve.format_time
    env.filters["lit_row_path"] = tilde_encode  # a step id's "." would read as a format suffix


@hookimpl
def menu_links(datasette):
    name = _lit_db(datasette)
    if not name:
        return None
    return [
        {"href": datasette.urls.table(name, "threads"), "label": "Threads"},
        {"href": datasette.urls.table(name, "steps"), "label": "Steps (search)"},
    ]


async def _render(datasette, request, template: str, context: dict) -> Response:
    context = {**context, "database": _lit_db(datasette)}
    return Response.html(await datasette.render_template(template, context, request=request))


async def front_view(datasette, request):
    name = _lit_db(datasette)
    if not name:
        raise NotFound("lit's pages serve lit's DB only")
    database = datasette.get_database(name)
    tables = [t for t in TABLES if not t.startswith("_") and t in await database.table_names()]
    data = await database.execute_fn(lambda conn: serve.front_page(conn, tables))
    return await _render(datasette, request, "lit_index.html", data)


_HEX = re.compile(r"[0-9a-fA-F]{4,64}")


async def thread_view(datasette, request):
    name = _lit_db(datasette)
    if not name:
        raise NotFound("lit's pages serve lit's DB only")
    ref = request.url_vars["ref"]
    if not _HEX.fullmatch(ref):
        raise NotFound(f"No thread {ref}: a thread id is hexadecimal")
    data = await datasette.get_database(name).execute_fn(lambda conn: serve.thread_page(conn, ref))
    if data is None:
        raise NotFound(f"No thread {ref}")
    if data["thread"]["id"] != ref:  # an id prefix: one canonical URL per thread
        return Response.redirect(datasette.urls.path(f"/-/lit/thread/{data['thread']['id']}"))
    return await _render(datasette, request, "lit_thread.html", data)


async def commit_view(datasette, request):
    name = _lit_db(datasette)
    if not name:
        raise NotFound("lit's pages serve lit's DB only")
    sha = request.url_vars["sha"].lower()
    if not _HEX.fullmatch(sha):
        raise NotFound(f"No commit {sha}: a commit SHA is hexadecimal")
    data = await datasette.get_database(name).execute_fn(lambda conn: serve.commit_page(conn, sha))
    if data is None:
        raise NotFound(f"No thread is bound to a commit {sha}")
    if "ambiguous" not in data and data["sha"] != sha:
        return Response.redirect(datasette.urls.path(f"/-/lit/commit/{data['sha']}"))
    return await _render(datasette, request, "lit_commit.html", data)


async def woven_view(datasette, request):
    name = _lit_db(datasette)
    if not name:
        raise NotFound("lit's pages serve lit's DB only")
    sha = request.url_vars["sha"].lower()
    if not _HEX.fullmatch(sha):
        raise NotFound(f"No commit {sha}: a commit SHA is hexadecimal")
    database = datasette.get_database(name)
    data = await database.execute_fn(lambda conn: serve.commit_page(conn, sha))
    if data is None or "ambiguous" in data:
        raise NotFound(f"No thread is bound to a commit {sha}")
    # git and the renderer block: off the event loop
    page = await asyncio.to_thread(serve.woven_page, database.path, data["sha"], data["repo_root"])
    if page is None:
        raise NotFound(f"The repository of {sha[:12]} is not on this machine: see the line map instead")
    return Response.html(page)


@hookimpl
def register_routes():
    # Any id: one that is not hexadecimal is a 404 that says so, not Datasette's guess at a table.
    return [
        (r"^/$", front_view),
        (r"^/-/lit/thread/(?P<ref>[^/]*)$", thread_view),
        (r"^/-/lit/commit/(?P<sha>[^/]*)$", commit_view),
        (r"^/-/lit/commit/(?P<sha>[^/]*)/woven$", woven_view),
    ]


@hookimpl(tryfirst=True)
def handle_exception(datasette, request, exception):
    """Datasette's own handler prints each error with its traceback and local variables (160 lines
    for a 404 of /robots.txt); `lit serve` removes it (serve.quiet_errors) and answers with this
    one: the same error page, and one line on stderr for a server error only."""
    if not _lit_db(datasette):
        return None

    async def inner():
        title = None
        if isinstance(exception, Base400):
            status, info, message = exception.status, {}, exception.args[0] if exception.args else ""
        elif isinstance(exception, DatasetteError):
            status, info, message, title = exception.status, dict(exception.error_dict), exception.message, \
                exception.title
        else:
            status, info, message = 500, {}, f"{type(exception).__name__}: {exception}"
            print(f"lit serve: {request.method} {request.path}: {message}", file=sys.stderr, flush=True)
        info.update({"ok": False, "error": str(message), "status": status, "title": title})
        if request.path.split("?")[0].endswith(".json"):
            return Response.json(info, status=status)
        template = datasette.jinja_env.select_template([f"{status}.html", "error.html"])
        page = await template.render_async(dict(info, urls=datasette.urls, app_css_hash=datasette.app_css_hash(),
                                                menu_links=lambda: []))
        return Response.html(page, status=status)

    return inner
