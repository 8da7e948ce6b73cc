"""Where lit keeps things: the default DB, and the templates/plugins shipped with the package."""

from __future__ import annotations

from pathlib import Path

import platformdirs

_PACKAGE = Path(__file__).resolve().parent


def default_db_path() -> Path:
    """`~/.local/share/lit/lit.db` on Linux (the user's data dir), shared by all repositories."""
    return Path(platformdirs.user_data_dir("lit", appauthor=False)) / "lit.db"


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
