"""lit's pages in Datasette: /-/lit/thread/ID and /-/lit/commit/SHA, and the read-only guard.

Loaded by `lit serve` as a plugins directory. Datasette registers plugins process-wide, so each
hook acts only on a Datasette made by lit.serve.make_datasette (its metadata names the "lit"
plugin and the database it serves).
"""

from __future__ import annotations

import asyncio

from datasette import hookimpl
from datasette.utils import tilde_encode
from datasette.utils.asgi import NotFound, Response

from lit import serve


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


async def thread_view(datasette, request):
    name = _lit_db(datasette)
    if not name:
        raise NotFound("lit's pages serve lit's DB only")
    ref = request.url_vars["ref"]
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
    return [
        (r"^/-/lit/thread/(?P<ref>[0-9a-f]{4,32})$", thread_view),
        (r"^/-/lit/commit/(?P<sha>[0-9a-fA-F]{4,64})$", commit_view),
        (r"^/-/lit/commit/(?P<sha>[0-9a-fA-F]{4,64})/woven$", woven_view),
    ]
