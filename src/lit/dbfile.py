"""lit's DB file, opened for reading without sqlite-utils (lit blame reads a few rows and should
not pay its import): the checks every command makes before it opens the DB."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from lit.errors import LitError


class StoreError(LitError):
    """The DB cannot be opened or written; the message says what to do."""


def not_a_folder(db_path: Path) -> None:
    if db_path.is_dir():
        raise StoreError(f"{db_path} is a folder, not lit's DB file: point --db or LIT_DB at a file "
                         "(e.g. ~/.local/share/lit/lit.db)")


def open_read_only(db_path: Path) -> tuple[sqlite3.Connection, bool]:
    """A read-only connection to lit's DB file, and whether it had to be opened immutable.
    `mode=ro` sees a running recorder's writes, but SQLite needs the WAL's shared-memory file
    beside the DB for it; where that cannot be made (a read-only folder or filesystem) the file
    is read as one nobody can be writing (`immutable=1`). StoreError when it is not lit's DB."""
    not_a_folder(db_path)
    if not db_path.exists():
        raise StoreError(f"no lit DB at {db_path}: record a session first (lit record -- AGENT), "
                         "or pass --db PATH")
    uri = db_path.resolve().as_uri()
    error: Exception | None = None
    for immutable in (False, True):
        conn = None
        try:
            conn = sqlite3.connect(f"{uri}?{'immutable=1' if immutable else 'mode=ro'}", uri=True, timeout=30,
                                   check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 30000")
            ours = conn.execute("SELECT 1 FROM sqlite_master WHERE name = '_lit_migrations'").fetchone()
        except sqlite3.OperationalError as e:
            if conn is not None:
                conn.close()
            error = e
            continue
        except sqlite3.DatabaseError as e:
            conn.close()
            raise StoreError(f"{db_path} is not a lit DB: {e}") from e
        if not ours:
            conn.close()
            raise StoreError(f"{db_path} is not a lit DB (no _lit_migrations table): pass lit's DB with --db PATH")
        return conn, immutable
    raise StoreError(f"cannot read the lit DB at {db_path}: {error}")
