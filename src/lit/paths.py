"""Where lit keeps things: the default DB, and the templates/plugins shipped with the package."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def default_db_path() -> Path:
    """`~/.local/share/lit/lit.db` on Linux (the user's data dir), shared by all repositories."""
    import platformdirs  # noqa: PLC0415 - 7 ms a git hook need not pay when LIT_DB is set

    return Path(platformdirs.user_data_dir("lit", appauthor=False)) / "lit.db"


def resolve_db_path(path: str | os.PathLike | None = None) -> Path:
    """The DB a command uses: the one named (--db), else $LIT_DB, else the default."""
    if path:
        return Path(path).expanduser()
    env = os.environ.get("LIT_DB")
    if env:
        return Path(env).expanduser()
    return default_db_path()


def repo_relative(path: str, repo_root: str | os.PathLike | None) -> str:
    """A tool's file path as git shows it: relative to the repository when it lies inside it."""
    if not repo_root or not os.path.isabs(path):
        return path
    try:
        relative = os.path.relpath(path, repo_root)
    except ValueError:  # another drive (Windows)
        return path
    return path if relative == ".." or relative.startswith(".." + os.sep) else relative


def weave_dir() -> Path:
    """Where `lit weave` writes a page when not told (`~/.cache/lit/weave` on Linux): outside the
    repository, so a page never shows in `git status`."""
    import platformdirs  # noqa: PLC0415

    return Path(platformdirs.user_cache_dir("lit", appauthor=False)) / "weave"


def _resource_dir(name: str) -> Path:
    # Installed: lit/templates inside the package (hatch force-include). From a checkout or an
    # editable install: the top-level folder of the repository.
    inside = _PACKAGE / name
    if inside.is_dir():
        return inside
    return _PACKAGE.parent.parent / name


def templates_dir() -> Path:
    return _resource_dir("templates")


def plugins_dir() -> Path:
    return _resource_dir("plugins")
