"""Safe rendering shared by the readers (weave, serve, pr): markdown, code highlighting, templates,
and tool calls summarised in one line. (Text for a terminal: lit.terminal.)

Everything a model or a person wrote is hostile until escaped. So: markdown goes through
markdown-it-py with raw HTML off, links only to http(s), mailto, anchors and relative paths, and
images turned into links (a page that loads nothing from the network cannot tell anyone who read
it, or when). Templates autoescape. Code is escaped token by token before it gets its colour spans.

    from lit.render import markdown, highlight_lines, template_env
    markdown("**bold** <script>x</script>")   # Markup('<p><strong>bold</strong> &lt;script&gt;...')
    highlight_lines("a.py", ["x = 1", "y = 'a"])  # one escaped, coloured Markup per input line
"""

from __future__ import annotations

import functools
import html
import json
import re
import unicodedata
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from lit.paths import repo_relative, templates_dir

if TYPE_CHECKING:
    import jinja2
    from markdown_it import MarkdownIt

# jinja2, markdown-it and Pygments are imported where they are used: a command imports only what
# it renders.

# Schemes a link in rendered markdown may use; anything else (javascript:, data:, vbscript:,
# file:) is dropped and the link shows as text.
_SAFE_LINK = re.compile(r"^(https?:|mailto:|#|/(?!/)|\./|\.\./|[\w.-]+(/|$|#))", re.IGNORECASE)


def safe_link(url: str) -> bool:
    """True when a link may be rendered as <a href>: http(s), mailto, anchors and relative paths.
    Control characters and whitespace are removed first, as browsers do ("java\\nscript:")."""
    cleaned = "".join(ch for ch in url if not unicodedata.category(ch).startswith("C") and not ch.isspace())
    return bool(_SAFE_LINK.match(cleaned)) and not cleaned.lower().startswith(("javascript:", "data:"))


@functools.lru_cache(maxsize=1)
def _md() -> MarkdownIt:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable("table").enable("strikethrough")
    md.disable("image")  # ![x](http://...) would load from the network: shown as "!" + a link
    md.validateLink = safe_link  # type: ignore[method-assign]
    return md


def markdown(text: str | None) -> Markup:
    """Markdown to HTML with raw HTML off: `<script>` shows as text, unsafe links as text."""
    if not text:
        return Markup("")
    return Markup(_md().render(text))


# --- code ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _lexer(path: str):
    """The lexer for a file name, chosen as pygments.lexers.get_lexer_for_filename chooses it (exact
    names over globs, then priority) but from Pygments' own table only: its plugin look-up scans
    every installed package's entry points, which took ~1 s of a woven page's time."""
    import fnmatch
    import importlib
    import posixpath

    from pygments.lexers._mapping import LEXERS
    from pygments.lexers.special import TextLexer

    name = posixpath.basename(path)
    matches = []
    for class_name, (module, _, _, patterns, _) in LEXERS.items():
        for pattern in patterns:
            if fnmatch.fnmatch(name, pattern):
                cls = getattr(importlib.import_module(module), class_name)
                matches.append((cls.priority + (0 if "*" in pattern else 0.5), cls.__name__, cls))
                break
    if not matches:
        return TextLexer(stripnl=False, ensurenl=False)
    return max(matches, key=lambda m: (m[0], m[1]))[2](stripnl=False, stripall=False, ensurenl=False)


@functools.cache
def _css_class(ttype) -> str:
    from pygments.token import STANDARD_TYPES

    while ttype not in STANDARD_TYPES:
        ttype = ttype.parent
    return STANDARD_TYPES[ttype]


def highlight_lines(path: str, lines: list[str]) -> list[Markup]:
    """Highlight `lines` (one file's text, in order) with the lexer for `path`; returns one Markup
    per line: escaped text in <span class="..."> using Pygments' short class names (style them
    with `pygments_css`). Lexed as one text, so strings spanning lines colour right."""
    if not lines:
        return []
    out: list[list[str]] = [[]]
    for ttype, value in _lexer(path).get_tokens("\n".join(lines)):
        cls = _css_class(ttype)
        parts = value.split("\n")
        for i, part in enumerate(parts):
            if i:
                out.append([])
            if part:
                text = html.escape(part, quote=False)
                out[-1].append(f'<span class="{cls}">{text}</span>' if cls else text)
    # A trailing newline in the last line would add an empty line; keep exactly len(lines).
    rendered = [Markup("".join(parts)) for parts in out[: len(lines)]]
    rendered += [Markup("")] * (len(lines) - len(rendered))
    return rendered


def pygments_css(scope: str = ".code", light: str = "default", dark: str = "github-dark") -> str:
    """The stylesheet for highlight_lines' classes: a light style, and a dark one under
    prefers-color-scheme: dark. Inline it in the page (no network)."""
    from pygments.formatters import HtmlFormatter

    # Token rules only: backgrounds and line numbers are the page's business.
    light_css = "\n".join(HtmlFormatter(style=light).get_token_style_defs(scope))
    dark_css = "\n".join(HtmlFormatter(style=dark).get_token_style_defs(scope))
    return f"{light_css}\n@media (prefers-color-scheme: dark) {{\n{dark_css}\n}}\n"


# --- templates ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def template_env() -> jinja2.Environment:
    """Jinja2 over templates/, autoescape on for every template, with the `markdown` filter.
    Missing keys render empty: notes come from several writers and versions."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["markdown"] = markdown
    return env


# --- tool calls -----------------------------------------------------------------------------------

# The input field that says what a tool call acted on, most telling first.
_TOOL_TARGETS = ("file_path", "path", "notebook_path", "command", "pattern", "url", "query", "description",
                 "prompt")


def tool_summary(tool_input: Any, repo_root: str | None = None, limit: int = 120) -> str:
    """One line saying what a tool call did: the file it read or wrote (relative to the
    repository, as git shows it), the command it ran (its first line); else its input as compact
    JSON. Cut at `limit` characters."""
    if isinstance(tool_input, dict):
        for key in _TOOL_TARGETS:
            value = tool_input.get(key)
            if isinstance(value, str) and value.strip():
                if key in ("file_path", "path", "notebook_path"):
                    value = repo_relative(value, repo_root)
                return _clip_line(value.strip().splitlines()[0], limit)
        text = json.dumps(tool_input, ensure_ascii=False) if tool_input else ""
    else:
        text = "" if tool_input is None else str(tool_input)
    return _clip_line(" ".join(text.split()), limit)


def _clip_line(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
