"""lit's user config: a TOML file at $LIT_CONFIG, else the user's config dir
(`~/.config/lit/config.toml` on Linux).

    [redact]
    patterns = ["corp-[0-9a-f]{32}"]   # more secrets to redact, as regular expressions

    [git]
    assisted_by = true                 # add `Assisted-by: <agent> (<model>)` to agent commits
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import platformdirs

from lit.errors import LitError


def config_path() -> Path:
    env = os.environ.get("LIT_CONFIG")
    return Path(env).expanduser() if env else Path(platformdirs.user_config_dir("lit", appauthor=False)) / "config.toml"


def load_config() -> dict:
    path = config_path()
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise LitError(f"cannot read lit's config {path}: {e}") from e
    for p in data.get("redact", {}).get("patterns", []):
        try:
            re.compile(p)
        except re.error as e:
            raise LitError(f"{path}: redact pattern {p!r} is not a regular expression: {e}") from e
    return data
