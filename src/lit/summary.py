"""What a recording comes to: the counts the recorder process hands back and lit says at exit.
Its own module so that lit's side of the recorder (lit.recording) and the recorder (lit.recorder)
share it without importing each other."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Summary:
    """What lit says at exit (the recorder's counts)."""

    session_id: str
    exchanges: int = 0
    steps: int = 0
    unrecorded: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)
    unreadable: int = 0
    snapshot_failures: int = 0
    threads: list[tuple[str, str | None, str]] = dataclasses.field(default_factory=list)
    repo_root: str | None = None
