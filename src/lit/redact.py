"""Secrets out of everything lit writes: the DB, the notes and the pages.

Each pattern names a kind of secret; a match becomes `[REDACTED:kind]`. Redaction is idempotent
(a redacted text contains nothing a pattern matches) and keeps JSON structure (only string values
change). Users add patterns in lit's config (`[redact] patterns = ["..."]`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

# (kind, pattern). Ordered: the more specific first, since an earlier match is not rescanned.
PATTERNS: list[tuple[str, str]] = [
    ("private-key", r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
                    r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)"),
    ("anthropic-key", r"\bsk-ant-(?:api|admin|oat|sid)\d{2}-[A-Za-z0-9_\-]{20,}"),
    ("openai-key", r"\bsk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_\-]{20,}|\bsk-[A-Za-z0-9]{32,}\b"),
    ("github-token", r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}\b|\bgithub_pat_[A-Za-z0-9_]{50,}\b"),
    ("slack-token", r"\bxox[abposr]-[A-Za-z0-9\-]{10,}\b|\bxapp-\d-[A-Za-z0-9\-]{10,}\b"),
    ("slack-webhook", r"https://hooks\.slack\.com/services/[A-Za-z0-9/_\-]+"),
    ("aws-access-key", r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b"),
    ("aws-secret-key", r"(?i)(aws_secret_access_key[\"']?\s*[=:]\s*[\"']?)[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"),
    ("google-api-key", r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    ("stripe-key", r"\b(?:sk|rk)_live_[0-9a-zA-Z]{20,}\b"),
    ("bearer-token", r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/\-]{20,}=*"),
    # A quoted value given to a name that says it is secret (code, JSON, YAML)...
    ("password", r"(?i)\b((?:password|passwd|secret|api_key|apikey|access_token|auth_token|client_secret)"
                 r"[\"']?\s*[=:]\s*[\"'])[^\"'\s\[]{8,}(?=[\"'])"),
    # ...and an environment-style assignment (.env files, `export` lines).
    ("password", r"(?m)^(\s*(?:export\s+)?[A-Z0-9_]*(?:PASSWORD|SECRET|API_KEY|TOKEN)\s*=\s*)[^\s\"'\[$]{8,}"),
]
MARK = "[REDACTED:{}]"
# Cheap prefilter: text with none of these substrings cannot match any built-in pattern.
_HINTS = ("PRIVATE KEY", "sk-", "gh", "github_pat_", "xox", "xapp-", "hooks.slack", "AKIA", "ASIA", "ABIA",
          "ACCA", "aws_secret", "AWS_SECRET", "AIza", "_live_", "earer", "EARER", "assw", "ASSW", "ecret",
          "ECRET", "pi_key", "PI_KEY", "pikey", "PIKEY", "_token", "_TOKEN")


class Redactor:
    def __init__(self, extra: Iterable[str] = ()):
        self.rules = [(kind, re.compile(p)) for kind, p in PATTERNS]
        self.extra = [("custom", re.compile(p)) for p in extra]

    def text(self, s: str) -> str:
        if not s:
            return s
        if any(h in s for h in _HINTS):
            for kind, rx in self.rules:
                s = rx.sub(lambda m, k=kind: _replace(m, k), s)
        for kind, rx in self.extra:
            s = rx.sub(lambda m, k=kind: _replace(m, k), s)
        return s

    def obj(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.obj(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.obj(v) for v in value]
        return value


def _replace(m: re.Match, kind: str) -> str:
    # Patterns with a group keep it (the `=` and quote before a labelled secret).
    prefix = m.group(1) if m.re.groups and m.group(1) else ""
    return prefix + MARK.format(kind)


@functools.lru_cache(maxsize=1)
def default() -> Redactor:
    try:
        from lit.config import load_config  # noqa: PLC0415

        extra = load_config().get("redact", {}).get("patterns", [])
    except Exception:  # noqa: BLE001 - a broken config must not stop recording; lit config says why
        extra = []
    return Redactor(extra)


def redact_text(s: str) -> str:
    return default().text(s)


def redact_obj(value: Any) -> Any:
    return default().obj(value)


# --- `lit redact`: re-scrub what was written before a pattern existed ----------------------------


def scrub_db(db, redactor: Redactor | None = None, *, dry_run: bool = False) -> dict[str, int]:
    """Apply the patterns to every text lit stored; returns rows changed per table. The old bytes
    are then gone from the file too (the FTS index rebuilt, the WAL checkpointed, VACUUM)."""
    import json  # noqa: PLC0415

    from lit import store  # noqa: PLC0415

    r = redactor or default()
    changed = {"steps": 0, "messages": 0, "blobs": 0, "exchanges": 0, "threads": 0}

    def update(table: str, pk: str, key, values: dict) -> None:
        changed[table] += 1
        if not dry_run:
            sets = ", ".join(f"[{c}] = ?" for c in values)
            db.execute(f"UPDATE [{table}] SET {sets} WHERE [{pk}] = ?", [*values.values(), key])

    with store.write_transaction(db):
        for row in db.query("SELECT id, text, tool_input, raw FROM steps"):
            new = {c: r.text(row[c]) for c in ("text", "tool_input", "raw") if row[c]}
            new = {c: v for c, v in new.items() if v != row[c]}
            if new:
                update("steps", "id", row["id"], new)
        for key, content in db.execute("SELECT key, content FROM messages").fetchall():
            value = store.unpack_content(content)
            scrubbed = r.obj(value)
            if scrubbed != value:
                update("messages", "key", key, {"content": store.pack_content(scrubbed)})
        for h, _kind, content in db.execute("SELECT hash, kind, content FROM blobs").fetchall():
            data = content if isinstance(content, bytes) else str(content).encode()
            text = data.decode("utf-8", "surrogateescape")
            new_text = r.text(text)
            if new_text != text:
                new = new_text.encode("utf-8", "surrogateescape")
                update("blobs", "hash", h, {"content": new, "size": len(new)})
        for eid, params in db.execute("SELECT id, params FROM exchanges WHERE params IS NOT NULL").fetchall():
            new = json.dumps(r.obj(json.loads(params)), sort_keys=True)
            if new != params:
                update("exchanges", "id", eid, {"params": new})
        for tid, title in db.execute("SELECT id, title FROM threads WHERE title IS NOT NULL").fetchall():
            if r.text(title) != title:
                update("threads", "id", tid, {"title": r.text(title)})
    if not dry_run and any(changed.values()):
        with store.write_transaction(db):
            db.execute("INSERT INTO steps_fts(steps_fts) VALUES('rebuild')")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return changed


def scrub_notes(repo, redactor: Redactor | None = None, *, dry_run: bool = False) -> int:
    """Rewrite each note in refs/notes/lit that the patterns change; returns how many."""
    import json  # noqa: PLC0415

    from lit.git import notes  # noqa: PLC0415
    from lit.git.run import git  # noqa: PLC0415

    r = redactor or default()
    count = 0
    for line in git(["notes", "--ref", notes.NOTES_REF, "list"], repo, check=False).splitlines():
        parts = line.split()
        if len(parts) != 2:
            continue
        raw = git(["notes", "--ref", notes.NOTES_REF, "show", parts[1]], repo, check=False)
        try:
            note = json.loads(raw)
        except ValueError:
            note = None
        if note is None:
            if r.text(raw) != raw:
                count += 1
                if not dry_run:
                    git(["notes", "--ref", notes.NOTES_REF, "add", "-f", "-F", "-", parts[1]], repo, input=r.text(raw))
            continue
        scrubbed = r.obj(note)
        if scrubbed != note:
            count += 1
            if not dry_run:
                notes.write(repo, parts[1], scrubbed)
    return count


_KEY_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_KEY_END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")


def redact_lines(lines: list[str]) -> list[str]:
    """Line by line (a diff keeps its line numbers), with a private key block's lines all hidden."""
    out, inside = [], False
    for line in lines:
        if inside or _KEY_BEGIN.search(line):
            inside = not _KEY_END.search(line)
            out.append(MARK.format("private-key"))
        else:
            out.append(redact_text(line))
    return out
