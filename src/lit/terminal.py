"""Text for a terminal: the one function every string from the DB, a note or git goes through
before lit prints it (lit show, threads, sessions, pr on a terminal, blame's headers).

A recorded prompt, a teammate's note or a commit subject can hold escape sequences: an OSC that
retitles the terminal or writes the clipboard, `ESC[2J` that clears the screen, 8-bit C1 controls
that some terminals obey, a carriage return that hides what came before, bidi overrides that show
text in another order than it is. Whole sequences are removed (not only their ESC, which would
leave `]0;title` behind); tabs and newlines are kept. Imports nothing: blame loads it at start-up.
"""

from __future__ import annotations

import re

_SEQUENCES = re.compile(
    r"""
      \x1b\[ [0-?]* [ -/]* [@-~]?                     # CSI: colours, cursor moves, ESC[2J
    | \x9b [0-?]* [ -/]* [@-~]?                       # CSI as one 8-bit C1 character
    | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]) [^\x07\x1b\x9c\n]* (?:\x07|\x1b\\|\x9c)?
                                                      # OSC, DCS, SOS, PM, APC up to BEL or ST
    | \x1b [ -/]* [0-~]?                              # any other escape (ESC c resets the terminal)
    """,
    re.VERBOSE,
)
# C0 controls but tab and newline, DEL, C1 controls, and the bidi embeddings, overrides and isolates.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def safe(text: str | None) -> str:
    """`text` with every terminal escape sequence and control character removed (tabs and
    newlines kept); '' for None."""
    if not text:
        return ""
    return _CONTROLS.sub("", _SEQUENCES.sub("", text))
