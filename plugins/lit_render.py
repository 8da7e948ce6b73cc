"""How lit's cells show in Datasette's tables and query results: commit SHAs and thread ids link to
their pages, step ids to their place in the thread, step text renders as markdown (raw HTML off,
unsafe links dropped: lit.render), and a tool result stored compressed shows as its text."""

from __future__ import annotations

from contextvars import ContextVar
from urllib.parse import quote

from datasette import hookimpl
from markupsafe import Markup

from lit import serve, store

# Markdown only where people or models wrote prose; tool results are program output.
_PROSE = {"prompt", "thinking", "text"}
_PROSE_COLUMNS = {"prompt"}  # canned queries name the prompt text so
# lit stores Unix times; shown as UTC dates, the number kept as the cell's tooltip.
_TIME_COLUMNS = {"started_at", "ended_at", "bound_at", "created_at", "taken_at", "applied_at"}


def _link(href: str, text: str, title: str) -> Markup:
    return Markup('<a href="{}" title="{}">{}</a>').format(href, title, text)


# The path of the page being rendered: render_cell is not told whether it renders a table (where
# Datasette cuts long text) or one row (where it shows it whole).
_page: ContextVar[str] = ContextVar("lit_page", default="")


@hookimpl
def asgi_wrapper(datasette):
    if not datasette.plugin_config("lit"):
        return None  # a Datasette lit.serve did not make
    def wrap(app):
        async def with_page(scope, receive, send):
            token = _page.set(scope.get("path", "") if scope.get("type") == "http" else "")
            try:
                await app(scope, receive, send)
            finally:
                _page.reset(token)
        return with_page
    return wrap


def _as_datasette_shows(text: str, database: str, datasette) -> str:
    """A long text cut as Datasette cuts one (its truncate_cells_html setting), but on a row's page."""
    limit = datasette.setting("truncate_cells_html")
    row_page = f"/{database}/steps/" in _page.get()
    return text[:limit] + "\u2026" if limit and len(text) > limit and not row_page else text


def _get(row, key):
    try:
        return row[key]
    except (KeyError, IndexError, TypeError):
        return None


@hookimpl
def render_cell(row, value, column, table, database, datasette):
    config = datasette.plugin_config("lit")
    if not config or database != config.get("database"):
        return None
    if isinstance(value, dict):  # an expanded foreign key: {"value": ..., "label": ...}
        value = value.get("value")
    if value is None or value == "":
        return None
    path = datasette.urls.path
    if column in _TIME_COLUMNS and isinstance(value, int | float):
        return Markup('<span title="{}">{}</span>').format(value, serve.format_time(value))
    if column == "commit_sha" and table != "snapshots":
        return _link(path(f"/-/lit/commit/{quote(str(value))}"), str(value)[:12], "the commit's page")
    if column == "thread_id" or (table == "threads" and column == "id"):
        return _link(path(f"/-/lit/thread/{quote(str(value))}"), str(value), "the thread's page")
    if column in ("step_id", "parent_step_id") or (table == "steps" and column == "id"):
        thread_id, _, seq = str(value).partition(".")
        return _link(path(f"/-/lit/thread/{quote(thread_id)}#step-{quote(seq)}"), str(value), "this step in its thread")
    if table == "threads" and column == "title" and _get(row, "id"):
        return _link(path(f"/-/lit/thread/{quote(str(_get(row, 'id')))}"), str(value), "the thread's page")
    # A packed tool result: in the steps table, or in a query that selects a step's kind with it.
    if column == "text" and isinstance(value, bytes) and (
            table == "steps" or table is None and _get(row, "kind") in store.PACKED_KINDS):
        return _as_datasette_shows(store.step_text(value) or "", database, datasette)
    if isinstance(value, str) and (
        (table == "steps" and column == "text" and _get(row, "kind") in _PROSE) or column in _PROSE_COLUMNS
    ):
        return Markup('<div class="lit-markdown">{}</div>').format(serve.markdown(value))
    return None
