"""`lit pr`: a pull request description from the threads of a range of commits.

For each commit of the range (oldest first) it says what was asked (the prompts), the key
decisions (the first sentence of the reasoning behind the steps that wrote the most lines), the
files changed (+/-) and how the agent verified it (the test and build commands it ran, and whether
they passed). A commit's thread is read from the DB when it has it (the whole thread: every tool
call and its full result), else from its note in refs/notes/lit (the steps the line map cites and
the prompts), else only its `Lit-Thread:` trailer names it.

The description is deterministic: the same repository, notes and DB give the same bytes (stable
order, no timestamps, no network). `--llm` replaces the summary by one a model writes from a
digest of the threads (`llm_summary`); any failure there falls back to the deterministic text.

    from lit import pr
    desc = pr.describe("main..HEAD", cwd="path/to/repo")
    print(pr.to_markdown(desc))
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lit import store
from lit.errors import LitError
from lit.redact import redact_text
from lit.git import notes as git_notes
from lit.git.notes import Note, Span
from lit.git.run import git
from lit.terminal import safe
from lit.threads import first_sentence, json_value, note_steps, open_db

GITHUB_LIMIT = 65_536  # characters GitHub takes in a pull request body
DEFAULT_MODEL = "claude-sonnet-4-6"
MAX_CHECKS_SHOWN = 6  # runs listed per commit; earlier ones are counted
MAX_DECISIONS = 3
MAX_INTENT = 10


# --- the data ---------------------------------------------------------------------------------------


@dataclass
class FileStat:
    path: str
    added: int | None  # None: a binary file
    deleted: int | None


@dataclass
class Check:
    """A test or build command the agent ran, and what came of it."""

    command: str
    status: str  # passed | failed | unknown (no result recorded)
    exit_code: int | None
    step: str
    thread: str


@dataclass
class CommitReport:
    sha: str
    subject: str
    threads: list[str] = field(default_factory=list)
    source: str | None = None  # db | note | trailer (named, but lit has nothing) | None (no thread)
    models: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)  # the whole `why` behind each decision (for --llm)
    files: list[FileStat] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    checks_known: bool = False  # False when only a note was read: notes do not carry tool runs
    weave: str | None = None

    @property
    def short(self) -> str:
        return self.sha[:8]

    @property
    def verdict(self) -> str:
        """passed | failed (the last run of some test suite or build failed) | unknown | none
        (nothing ran). `pytest -q` then `pytest -x -v` are one suite run twice: the last run counts."""
        if not self.checks:
            return "none"
        last: dict[str, Check] = {}
        for c in self.checks:
            last[suite(c.command)] = c
        statuses = {c.status for c in last.values()}
        if "failed" in statuses:
            return "failed"
        return "unknown" if "unknown" in statuses else "passed"


@dataclass
class Description:
    range: str
    title: str
    intent: list[str]
    commits: list[CommitReport]
    summary: str | None = None  # written by a model (--llm), else None
    summary_model: str | None = None


# --- reading the range -------------------------------------------------------------------------------


def default_range(cwd: str | os.PathLike | None = None) -> str:
    """The upstream branch's range if there is one, else main..HEAD, else master..HEAD. An upstream
    that is only this branch's own copy on a remote (origin/feature for feature) is skipped: its
    range holds the unpushed commits, not the pull request."""
    branch = git(["symbolic-ref", "--short", "-q", "HEAD"], cwd, check=False).strip()
    upstream = git(["rev-parse", "--abbrev-ref", "--verify", "--quiet", "@{upstream}"], cwd, check=False).strip()
    bases = ["main", "master", "origin/main", "origin/master"]
    if upstream and not (branch and upstream.endswith("/" + branch)):
        bases.insert(0, "@{upstream}")
    for base in bases:
        if git(["rev-parse", "--verify", "--quiet", f"{base}^{{commit}}"], cwd, check=False).strip():
            return f"{base}..HEAD"
    raise LitError("no upstream branch, main or master to compare with: name a range, e.g. lit pr origin/dev..HEAD")


def range_commits(rev_range: str, cwd: str | os.PathLike | None = None) -> list[str]:
    """The commits of RANGE, oldest first. A single revision R means R..HEAD (as git format-patch)."""
    if ".." not in rev_range:
        rev_range = f"{rev_range}..HEAD"
    commits = git(["rev-list", "--reverse", rev_range, "--"], cwd).split()
    if not commits:
        raise LitError(f"{rev_range}: no commits in this range")
    return commits


def _commit_info(commits: list[str], cwd) -> dict[str, tuple[str, list[str], list[FileStat]]]:
    """sha -> (subject, Lit-Thread trailer values, numstat), for all commits in one git call.
    Merges are diffed against their first parent; a squash merge may carry several trailers."""
    out = git(["-c", "core.quotePath=false", "log", "--no-walk=unsorted", "--stdin", "--numstat", "-M",
               "--diff-merges=first-parent",
               f"--format=%x1e%H%x1f%s%x1f{git_notes.trailer_format('%x2c')}"],
              cwd, input=("\n".join(commits) + "\n").encode(), text=False).decode("utf-8", "replace")
    info = {}
    for record in out.split("\x1e")[1:]:
        head, _, rest = record.partition("\n")
        sha, subject, trailers = (head.split("\x1f") + ["", ""])[:3]
        threads = git_notes.split_trailer(trailers, ",")
        files = []
        for line in rest.splitlines():
            parts = line.split("\t", 2)
            if len(parts) == 3:
                added, deleted, path = parts
                files.append(FileStat(path, int(added) if added.isdigit() else None,
                                      int(deleted) if deleted.isdigit() else None))
        info[sha] = (redact_text(subject), threads, files)
    return info


# --- threads: from the DB, else the note --------------------------------------------------------------


@dataclass
class _Thread:
    id: str
    source: str  # db | note
    models: list[str]
    prompts: list[str]
    calls: list[dict]  # {id, seq, tool, input, why, result, is_error}
    lines: dict[str, int]  # step id -> lines it wrote in the commit


_REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>", re.DOTALL)


def _clean_prompt(text: str) -> str:
    # Claude Code appends reminders to user turns; they are the harness talking, not the person.
    return _REMINDER.sub("", text or "").strip()


def _line_counts(files: dict[str, list[Span]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for spans in files.values():
        for span in spans:
            if span.step:
                counts[span.step] = counts.get(span.step, 0) + span.end - span.start + 1
    return counts


def _calls(steps: dict) -> list[dict]:
    """The tool calls of a thread's steps (lit.threads.note_steps: each with its why), by seq."""
    return [{"id": sid, "seq": s.seq, "tool": s.tool, "input": s.input if s.input is not None else {},
             "why": s.why, "result": s.result, "is_error": s.is_error}
            for sid, s in sorted(steps.items(), key=lambda kv: (kv[1].seq, kv[0])) if s.kind == "tool_call"]


def _thread_from_db(db, thread: dict, commit: str) -> _Thread:
    steps = store.thread_steps(db, thread["id"])
    prompts = []
    for s in steps:
        # a subagent's prompt (parent_step_id) was written by the agent, not the person
        if s["kind"] == "prompt" and not s.get("parent_step_id"):
            text = _clean_prompt(s.get("text") or "")
            if text:
                prompts.append(text)
    files: dict[str, list[Span]] = {}
    for row in db.query("SELECT path, line_start, line_end, step_id FROM line_map WHERE commit_sha = ? "
                        "AND (thread_id = ? OR thread_id IS NULL) ORDER BY path, line_start", [commit, thread["id"]]):
        files.setdefault(row["path"], []).append(Span(row["line_start"], row["line_end"], row["step_id"]))
    models = [r[0] for r in db.execute("SELECT DISTINCT model FROM exchanges WHERE thread_id = ? AND model IS NOT NULL"
                                       " ORDER BY model", [thread["id"]]).fetchall()] or sorted(
        {s["model"] for s in steps if s.get("model") is not None})  # a thread imported from a trace
    return _Thread(thread["id"], "db", models, prompts, _calls(note_steps(steps)[1]), _line_counts(files))


def _thread_from_note(note: Note) -> _Thread:
    prompts = [_clean_prompt(p.text) for p in note.prompts]
    return _Thread(note.thread, "note", list(note.models), [p for p in prompts if p], _calls(note.steps),
                   _line_counts(note.files))


def _db_threads(db, commits: list[str], ids: set[str]) -> tuple[dict[str, list[dict]], dict[str, dict]]:
    """(commit -> its bound threads, thread id -> thread) for the commits and thread ids given."""
    by_commit: dict[str, list[dict]] = {}
    by_id: dict[str, dict] = {}
    for column, values in (("commit_sha", commits), ("id", sorted(ids))):
        for i in range(0, len(values), 500):  # SQLite's variable limit
            chunk = values[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for t in db.query(f"SELECT * FROM threads WHERE {column} IN ({marks}) ORDER BY seq, id", chunk):
                by_id[t["id"]] = t
                if column == "commit_sha":
                    by_commit.setdefault(t["commit_sha"], []).append(t)
    return by_commit, by_id


# --- what the agent ran ---------------------------------------------------------------------------------

# Matched against the start of each simple command of a shell line (after `cd x &&`, `FOO=1`,
# `uv run`...), so `grep -r mypy .` or `echo pytest` is not taken for a run.
_CHECK_PATTERNS = [re.compile(p) for p in (
    r"^(pytest|py\.test|tox|nox|mypy|ruff|pyright|flake8|pylint|jest|vitest|tsc|eslint|ctest|rspec|phpunit|"
    r"black --check|isort --check|prettier --check)(\s|$)",
    r"^python[\d.]* -m (pytest|unittest|mypy|ruff|tox|nox|compileall|pyright)(\s|$)",
    r"^python[\d.]* (manage\.py test|\S*(test|runtests)\S*\.py)(\s|$)",
    r"^(npm|yarn|pnpm|bun) (run )?(test|t|build|lint|check|typecheck|ci)(\s|$)",
    r"^make(\s|$)",
    r"^cargo (test|build|check|clippy|nextest)(\s|$)",
    r"^go (test|build|vet)(\s|$)",
    r"^(mvn|mvnw|gradle|gradlew) .*\b(test|build|verify|check)\b",
    r"^(bazel|bazelisk|dotnet|swift) (test|build)(\s|$)",
    r"^pre-commit run(\s|$)",
    r"^bundle exec (rake|rspec)(\s|$)",
    r"^(just|task) \S*(test|check|lint|build)",
)]
_WRAPPERS = {"uv": 1, "poetry": 1, "pipenv": 1, "hatch": 1, "pdm": 1, "rye": 1}  # `uv run X`: skip "run"
_PREFIXES = {"npx", "bunx", "time", "env", "sudo", "nice", "exec", "command", "xvfb-run"}
_EXIT = re.compile(r"(?i)\bexit(?:ed)?(?: with)? (?:code|status)[:=\s]+(-?\d+)")
_PYTEST_FAILED = re.compile(r"^=+ .*\b\d+ (failed|errors?)\b.* =+$", re.MULTILINE)


def _command(tool_input: Any) -> str | None:
    """The shell command of a tool call, for any tool that runs one (Bash, run_shell, exec...)."""
    if not isinstance(tool_input, dict):
        return None
    cmd = tool_input.get("command", tool_input.get("cmd"))
    if isinstance(cmd, list) and all(isinstance(c, str) for c in cmd):
        # ["bash", "-lc", "pytest -q"] as OpenAI's shell tools send it
        cmd = cmd[-1] if len(cmd) == 3 and cmd[1] in ("-c", "-lc") else shlex.join(cmd)
    return cmd.strip() if isinstance(cmd, str) and cmd.strip() else None


def is_check(command: str) -> bool:
    """Does this shell command test, build, lint or type-check?"""
    for segment in re.split(r"&&|\|\||[;|\n()]", command):
        words = segment.split()
        while words:
            head = words[0].rsplit("/", 1)[-1]
            if "=" in words[0] and not words[0].startswith("-"):
                words = words[1:]  # FOO=1 pytest
            elif head in _WRAPPERS and len(words) > 1 and words[1] == "run":
                words = words[2:]
            elif head in _PREFIXES:
                words = words[1:]
            elif head == "timeout" and len(words) > 1:
                words = words[2:]
            else:
                break
        if words:
            line = " ".join([words[0].rsplit("/", 1)[-1], *words[1:]])
            if any(p.search(line) for p in _CHECK_PATTERNS):
                return True
    return False


def suite(command: str) -> str:
    """What a check command runs, whatever its flags: `python -m unittest -v` and `python -m
    unittest` are one suite; `pytest tests/a.py` and `pytest tests/b.py` are two."""
    words = command.split()
    return " ".join(w for w in words if not w.startswith("-") or w in ("-m", "-c"))


def check_status(result: str | None, is_error: bool) -> tuple[str, int | None]:
    """(passed | failed | unknown, exit code if the result says it)."""
    if result is None:
        return "unknown", None
    m = _EXIT.search(result)
    code = int(m.group(1)) if m else None
    if is_error or (code is not None and code != 0) or _PYTEST_FAILED.search(result):
        return "failed", code
    return "passed", code


def failed_run(result: str | None, is_error: int | None, tool_input: str | None) -> bool:
    """Did this tool call fail? Marked as an error, or a command whose result says it failed (a
    non-zero exit code, pytest's failures): what `lit pr` counts as a failed run. A SQL function
    of `lit serve` (failed_tool_calls)."""
    if is_error:
        return True
    if not tool_input or _command(json_value(tool_input)) is None:
        return False
    return check_status(result, False)[0] == "failed"


def _checks(thread: _Thread) -> list[Check]:
    out = []
    for call in thread.calls:
        command = _command(call["input"])
        if command and is_check(command):
            status, code = check_status(call["result"], call["is_error"])
            out.append(Check(command, status, code, call["id"], thread.id))
    return out


# --- decisions -------------------------------------------------------------------------------------------

_FILLER = re.compile(r"(?i)^(now|ok|okay|great|good|perfect|alright|done|let me|let's|i'll now|next)\b")
_WRITES = ("content", "new_string", "new_str", "patch", "edits", "file_text", "diff")


# A sentence that reports how a check went ("The columns line up and the total is right.") is a
# check, not a decision, unless it also says what to do or why ("so", "instead", "I'll").
_REPORT = re.compile(r"(?i)\b(pass(es|ed)?|fail(s|ed|ures?)?|lines? up|(is|are|looks?) (right|correct|good|fine)|"
                     r"works?|worked|succeed(s|ed)?|as expected|all green)\b")
_DECIDES = re.compile(r"(?i)(\b(I'll|I will|I'm going to|so|so that|because|since|instead|rather|should|keep|"
                      r"use|put|prefer|choose|simplest|better)\b)")


def key_sentence(text: str | None) -> str:
    """The first sentence of the reasoning that says something: "Now let me edit it." is filler and
    "All four pass." a check's outcome, not a decision; both are skipped."""
    rest = (text or "").strip()
    first = ""
    for _ in range(6):
        sentence = first_sentence(rest)
        if not sentence:
            break
        first = first or sentence
        filler = _FILLER.match(sentence) and len(sentence.split()) < 10
        report = _REPORT.search(sentence) and not _DECIDES.search(sentence)
        if not filler and not report:
            return sentence
        rest = rest.split(sentence, 1)[1] if sentence in rest else ""
    return first


def _decisions(threads: list[_Thread]) -> list[tuple[str, str]]:
    """The first sentences of the `why` of the steps that wrote the most lines (deduplicated).
    Without a line map, the calls that write files, in order."""
    ranked: list[tuple[int, int, int, dict]] = []
    for ti, t in enumerate(threads):
        for call in t.calls:
            lines = t.lines.get(call["id"], 0)
            writes = isinstance(call["input"], dict) and any(k in call["input"] for k in _WRITES)
            if call["why"] and (lines or (not t.lines and writes)):
                ranked.append((-lines, ti, call["seq"], call))
    out: dict[str, str] = {}  # first sentence -> the whole reasoning
    for _, _, _, call in sorted(ranked, key=lambda r: r[:3]):
        sentence = key_sentence(call["why"])
        if sentence and sentence not in out:
            out[sentence] = call["why"].strip()
    return list(out.items())


# --- the description ---------------------------------------------------------------------------------------


def describe(rev_range: str | None = None, *, cwd: str | os.PathLike | None = None, db_path: str | None = None,
             weave_dir: str | None = None) -> Description:
    """The description of RANGE (default: see default_range) as data."""
    rev_range = rev_range or default_range(cwd)
    commits = range_commits(rev_range, cwd)
    info = _commit_info(commits, cwd)
    notes = git_notes.read_many(commits, cwd)
    named: set[str] = set()
    for sha in commits:
        named.update(info.get(sha, ("", [], []))[1])
        if sha in notes:
            named.add(notes[sha].thread)
    db = open_db(db_path)
    by_commit, by_id = _db_threads(db, commits, named) if db is not None else ({}, {})

    reports = []
    for sha in commits:
        subject, trailer_ids, files = info.get(sha, ("", [], []))
        note = notes.get(sha)
        ids = list(dict.fromkeys([t["id"] for t in by_commit.get(sha, [])] + ([note.thread] if note else [])
                                 + trailer_ids))
        threads = _commit_threads(db, sha, ids, by_id, note)
        reports.append(_report(CommitReport(sha=sha, subject=subject, threads=ids, files=files), threads))

    if weave_dir:
        _link_weaves(reports, weave_dir, cwd, db_path)
    return Description(range=rev_range, title=_title(reports), intent=_intent(reports), commits=reports)


def _commit_threads(db, sha: str, ids: list[str], by_id: dict[str, dict], note: Note | None) -> list[_Thread]:
    """The threads of a commit lit can read, the DB's first, else its note's; a thread named only
    by a trailer has none."""
    threads: list[_Thread] = []
    for tid in ids:
        noted = note is not None and note.thread == tid
        if tid in by_id:
            thread = _thread_from_db(db, by_id[tid], sha)
            if noted and not thread.lines:
                thread.lines = _line_counts(note.files)  # the DB lacks the map
            threads.append(thread)
        elif noted:
            threads.append(_thread_from_note(note))
    return threads


def _report(report: CommitReport, threads: list[_Thread]) -> CommitReport:
    """The report of a commit filled in from its threads: where they were read, models, prompts,
    decisions and checks."""
    if not report.threads:
        return report
    report.source = ("db" if all(t.source == "db" for t in threads) and threads else
                     "note" if threads else "trailer")
    report.models = sorted({m for t in threads for m in t.models})
    report.prompts = list(dict.fromkeys(p for t in threads for p in t.prompts))
    decisions = _decisions(threads)[:MAX_DECISIONS]
    report.decisions = [sentence for sentence, _ in decisions]
    report.reasoning = [why for _, why in decisions]
    report.checks = [c for t in threads for c in _checks(t)]
    report.checks_known = any(t.source == "db" for t in threads)
    return report


def _cut_words(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return (cut or text[: limit - 1]) + "…"


def _title(reports: list[CommitReport]) -> str:
    for r in reports:
        for p in r.prompts:
            if first_sentence(p):
                return _cut_words(first_sentence(p).rstrip("."), 100)
    subjects = [r.subject for r in reports if r.subject]
    if not subjects:
        return "Changes"
    more = len(subjects) - 1
    return subjects[0] + (f" (and {more} more commit{'s' * (more != 1)})" if more else "")


def _intent(reports: list[CommitReport]) -> list[str]:
    """What was asked, across the range: the first sentence of each distinct prompt."""
    out: list[str] = []
    for r in reports:
        for p in r.prompts:
            sentence = _cut_words(first_sentence(p), 200)
            if sentence and sentence not in out:
                out.append(sentence)
    return out


def weave_name(sha: str) -> str:
    """The file `lit weave SHA` writes for one commit."""
    return f"lit-weave-{sha[:8]}.html"


def _link_weaves(reports: list[CommitReport], weave_dir: str, cwd, db_path: str | None) -> None:
    """Link each commit with a thread to DIR/lit-weave-<short>.html. A local DIR gets the pages it
    lacks written (lit weave); a URL (where the pages are published) is only linked."""
    remote = re.match(r"^[a-z][a-z0-9+.-]*://", weave_dir, re.IGNORECASE) is not None
    for r in reports:
        if not r.threads:
            continue
        name = weave_name(r.sha)
        if not remote:
            folder = Path(weave_dir) if Path(weave_dir).is_absolute() else Path(cwd or ".") / weave_dir
            page = folder / name
            if not page.exists():
                from lit import weave

                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError as e:
                    raise LitError(f"cannot create {weave_dir}: {e.strerror}") from e
                weave.weave(r.sha, page, cwd=cwd, db_path=db_path)
        r.weave = weave_dir.rstrip("/") + "/" + name


# --- markdown ---------------------------------------------------------------------------------------------

# GitHub links @name and #123 in the text of the rendered page (an entity such as &#35; is text
# by then), so a zero-width space goes between: it reads the same and links nothing.
_MENTION_OR_REF = re.compile(r"(?<!\w)(?:@(?=[A-Za-z0-9])|#(?=\d))")
_MENTION = re.compile(r"(?<!\w)@(?=[A-Za-z0-9])")
_ZWSP = "&#8203;"
# A code span that opens and closes on one line (CommonMark's rule: the first closing run of as
# many backticks). Across lines it could straddle a paragraph break, and then its backticks are
# text and what was inside them is live.
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")


def _inert(text: str, issue_refs: bool) -> str:
    """Text outside code spans: everything that could start markup is escaped. No raw HTML or
    autolink (<), no entity (&), no link, image or footnote ([ ]), no code span (a lone `), no
    escape (\\); mentions and (unless issue_refs) #123 broken by a zero-width space."""
    text = text.replace("\\", "\\\\").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("[", "\\[").replace("]", "\\]").replace("`", "\\`")
    return (_MENTION if issue_refs else _MENTION_OR_REF).sub(lambda m: m.group(0) + _ZWSP, text)


def prose(text: str, *, issue_refs: bool = False) -> str:
    """Text a model or a person wrote, made inert for a PR body by construction: code spans that
    open and close on one line are kept (markdown shows them literally), everything else is
    escaped (see _inert). `issue_refs`: a commit subject's "(#12)" means this repository's #12."""
    lines = []
    for line in safe(text).split("\n"):  # no escape sequence in a PR body, nor on a terminal
        out, pos = [], 0
        for m in _CODE_SPAN.finditer(line):
            out += [_inert(line[pos:m.start()], issue_refs), m.group(0)]
            pos = m.end()
        out.append(_inert(line[pos:], issue_refs))
        lines.append("".join(out))
    return "\n".join(lines)


def code(text: str, limit: int = 160) -> str:
    """An inline code span that holds any text (one line, cut at limit)."""
    lines = safe(text).strip().splitlines() or [""]
    one = lines[0] + (" …" if len(lines) > 1 else "")
    if len(one) > limit:
        one = one[: limit - 1] + "…"
    ticks = "`" * (max((len(m) for m in re.findall(r"`+", one)), default=0) + 1)
    pad = " " if one.startswith("`") or one.endswith("`") else ""
    return f"{ticks}{pad}{one}{pad}{ticks}"


def _quote(text: str, limit: int | None) -> str:
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return "\n".join("> " + line if line.strip() else ">" for line in prose(text).splitlines())


def _files_md(files: list[FileStat], limit: int | None) -> list[str]:
    if not files:
        return ["- no file changes"]
    shown = files if limit is None else files[:limit]
    out = []
    for f in shown:
        stat = "binary" if f.added is None else f"+{f.added} -{f.deleted}"
        out.append(f"- {code(f.path, 200)} {stat}")
    if len(shown) < len(files):
        rest = files[len(shown):]
        added = sum(f.added or 0 for f in rest)
        deleted = sum(f.deleted or 0 for f in rest)
        out.append(f"- and {len(rest)} more files (+{added} -{deleted})")
    return out


def _check_md(c: Check) -> str:
    if c.status == "unknown":
        return f"- {code(c.command)}: no result recorded"
    detail = f" (exit code {c.exit_code})" if c.status == "failed" and c.exit_code is not None else ""
    return f"- {c.status}: {code(c.command)}{detail}"


def _checks_md(r: CommitReport) -> list[str]:
    if not r.checks:
        if r.source == "trailer":
            return ["Not known: lit has no record of this thread here."]
        if not r.checks_known:
            return ["Not known: the note holds only the steps that wrote lines, not the commands run."]
        return ["The agent ran no test or build command in this thread."]
    out = []
    shown = r.checks[-MAX_CHECKS_SHOWN:]
    earlier = r.checks[: len(r.checks) - len(shown)]
    if earlier:
        failed = sum(c.status == "failed" for c in earlier)
        out.append(f"- {len(earlier)} earlier runs ({failed} failed)")
    out += [_check_md(c) for c in shown]
    verdict = {"passed": "The last run of each test suite or build passed.",
               "failed": "The last run of some test suite or build failed.",
               "unknown": "Some results were not recorded."}[r.verdict]
    return out + ["", verdict]


@dataclass
class _Level:
    """How much of each commit to show; lower levels are tried first."""

    name: str  # what was trimmed, said at the end
    decisions: int | None
    prompt_chars: int | None
    files: int | None
    details: bool = True  # prompts, decisions and checks at all


_LEVELS = [
    _Level("", MAX_DECISIONS, 4000, 50),
    _Level("reasoning shortened", 1, 1000, 50),
    _Level("reasoning left out", 0, 300, 20),
    _Level("reasoning and per-commit details left out", 0, 0, 5, details=False),
]


def _thread_line(r: CommitReport) -> str:
    names = ", ".join(code(t) for t in r.threads)
    parts = [f"Thread{'s' * (len(r.threads) > 1)} {names}"]
    if r.source == "note":
        parts[0] += " (from its note)"
    elif r.source == "trailer":
        parts[0] += " (named by the commit's trailer; not in the notes or the DB here)"
    if r.models:
        parts.append(", ".join(prose(m) for m in r.models))
    if r.weave:
        parts.append(f"[woven page]({r.weave})")
    return " · ".join(parts)


def _commit_md(i: int, r: CommitReport, level: _Level) -> list[str]:
    out = [f"### {i}. {prose(r.subject, issue_refs=True) or '(no subject)'} ({code(r.short)})", ""]
    if not r.threads:
        out += ["No thread: not recorded by lit.", ""]
        out += _files_md(r.files, level.files)
        return out + [""]
    out += [_thread_line(r), ""]
    if level.details and r.prompts and level.prompt_chars != 0:
        out += ["**Asked**", ""]
        for p in r.prompts:
            out += [_quote(p, level.prompt_chars), ""]
    if level.details and r.decisions and level.decisions:
        out += ["**Key decisions**", ""]
        out += [f"- {prose(d)}" for d in r.decisions[: level.decisions]] + [""]
    out += ["**Files changed**", ""] + _files_md(r.files, level.files) + [""]
    if level.details:
        out += ["**How it was verified**", ""] + _checks_md(r) + [""]
    else:
        runs = {"passed": "checks passed", "failed": "last check failed", "unknown": "checks without results",
                "none": "no checks run" if r.checks_known else "checks not known"}[r.verdict]
        out += [f"Verified: {runs} ({len(r.checks)} runs)", ""]
    return out


def _totals(d: Description) -> str:
    threaded = sum(bool(r.threads) for r in d.commits)
    n = len(d.commits)
    parts = [f"{n} commit{'s' * (n != 1)}", f"{threaded} from agent threads"]
    if threaded < n:
        parts.append(f"{n - threaded} without")
    runs = [c for r in d.commits for c in r.checks]
    if runs:
        failed = sum(c.status == "failed" for c in runs)
        finally_failed = sum(r.verdict == "failed" for r in d.commits)
        parts.append(f"{len(runs)} test/build runs by the agent ({failed} failed"
                     + (f"; {finally_failed} commit{'s' * (finally_failed != 1)} ended on a failure)"
                        if finally_failed else "; each passed on its last run)"))
    return ", ".join(parts) + "."


def _render(d: Description, level: _Level, trimmed: str) -> str:
    out = [f"# {prose(d.title)}", "", "## Summary", ""]
    if d.summary:
        out += [prose(d.summary.strip()), "", f"<sub>Summary written by {prose(d.summary_model or 'a model')} "
                "from the threads; the sections below are from the record.</sub>", ""]
    if d.intent:
        out += ["What was asked:", ""]
        shown = d.intent[:MAX_INTENT]
        out += [f"- {prose(s)}" for s in shown]
        if len(d.intent) > len(shown):
            out.append(f"- and {len(d.intent) - len(shown)} more prompts")
        out.append("")
    out += [_totals(d), "", "## Commits", ""]
    for i, r in enumerate(d.commits, 1):
        out += _commit_md(i, r, level)
    if trimmed:
        out += [f"_Trimmed to fit GitHub's {GITHUB_LIMIT:,} characters: {trimmed}. "
                f"{code('lit weave ' + d.range)} shows everything._", ""]
    out += ["---", "<sub>Written by `lit pr` from the threads lit recorded: the prompts, the reasoning and "
            "the commands the agent ran.</sub>"]
    return "\n".join(out) + "\n"


def to_markdown(d: Description, limit: int = GITHUB_LIMIT) -> str:
    """The description in GitHub markdown, within `limit` characters: the reasoning is trimmed
    first, then each commit's details, then commits are listed by subject only."""
    for level in _LEVELS:
        text = _render(d, level, level.name)
        if len(text) <= limit:
            return text
    # Too many commits even for one line of detail each: subjects only, then a hard cut.
    head = [f"# {prose(d.title)}", "", "## Summary", "", _totals(d), "", "## Commits", ""]
    tail = [f"_Trimmed to fit GitHub's {GITHUB_LIMIT:,} characters: commits listed by subject only. "
            f"{code('lit weave ' + d.range)} shows everything._", ""]
    lines = [f"- {code(r.short)} {prose(r.subject, issue_refs=True)}" for r in d.commits]
    text = "\n".join(head + lines + [""] + tail)
    while len(text) > limit and lines:
        dropped = len(d.commits) - len(lines) + 1
        lines = lines[:-1]
        text = "\n".join(head + lines + [f"- and {dropped} more commits", ""] + tail)
    return text[:limit]


def to_json(d: Description) -> dict:
    """The same content as data (not trimmed: the limit is GitHub's, not a script's)."""
    data = asdict(d)
    for r, rd in zip(d.commits, data["commits"], strict=True):
        rd["short"] = r.short
        rd["verdict"] = r.verdict
    return data


# --- --llm ------------------------------------------------------------------------------------------------

DIGEST_LIMIT = 150_000
LLM_INSTRUCTIONS = (
    "You write the summary section of a pull request description. The threads below record, for "
    "each commit of the pull request, what a person asked a coding agent, the agent's reasoning, the "
    "files changed and the test or build commands it ran. Write the summary a reviewer needs: what "
    "changes and why, in 2 to 5 sentences or short bullets of GitHub markdown, then one sentence on "
    "how it was verified. No heading, no preamble, at most 1,500 characters. Use only what the "
    "threads say; do not invent motives, numbers or results."
)


def digest(d: Description, limit: int = DIGEST_LIMIT) -> str:
    """The threads as plain text for a model: prompts, the reasoning behind the key decisions, files
    and checks, per commit."""
    parts = [f"Pull request: {d.range}, {len(d.commits)} commits."]
    for i, r in enumerate(d.commits, 1):
        lines = [f"\n## Commit {i}: {r.subject} ({r.short})"]
        if not r.threads:
            lines.append("No agent thread (written by a person or outside lit).")
        for p in r.prompts:
            lines.append("Prompt:\n" + p[:4000])
        for why in r.reasoning:
            lines.append("Reasoning:\n" + why[:1500])
        lines.append("Files: " + ", ".join(
            f"{f.path} ({'binary' if f.added is None else f'+{f.added} -{f.deleted}'})" for f in r.files[:50]))
        for c in r.checks[-10:]:
            lines.append(f"Ran: {c.command[:300]} -> {c.status}"
                         + (f" (exit code {c.exit_code})" if c.exit_code is not None else ""))
        parts.append("\n".join(lines))
    text = "\n".join(parts)
    return text if len(text) <= limit else text[:limit] + "\n[digest cut]"


class LLMError(Exception):
    """The model could not write the summary; the message is one line."""


def llm_summary(d: Description, model: str = DEFAULT_MODEL, *, timeout: float = 120.0) -> str:
    """The summary written by `model` from the digest (sent as a cached system block). Raises
    LLMError with one line for a missing key or any API error."""
    if not (os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN")):
        raise LLMError("ANTHROPIC_API_KEY is not set")
    import anthropic

    client = anthropic.Anthropic(timeout=timeout, max_retries=1)  # honours ANTHROPIC_BASE_URL
    try:
        message = client.messages.create(
            model=model,
            max_tokens=1024,
            system=[
                {"type": "text", "text": LLM_INSTRUCTIONS},
                # The digest is the long part: cached, so asking again (another --model, a retry)
                # reads it from the cache.
                {"type": "text", "text": digest(d), "cache_control": {"type": "ephemeral"}},
            ],
            messages=[{"role": "user", "content": "Write the summary of this pull request."}],
        )
    except anthropic.APIStatusError as e:
        detail = e.message if isinstance(e.message, str) else str(e)
        raise LLMError(f"the API answered {e.status_code}: {' '.join(detail.split())[:200]}") from e
    except anthropic.APIConnectionError as e:
        raise LLMError(f"cannot reach {client.base_url}: {' '.join(str(e).split())[:200]}") from e
    except anthropic.AnthropicError as e:
        raise LLMError(' '.join(str(e).split())[:200]) from e
    text = "".join(b.text for b in message.content if getattr(b, "type", "") == "text").strip()
    if not text:
        raise LLMError(f"{model} answered with no text (stop reason {message.stop_reason})")
    return text[:4000]
