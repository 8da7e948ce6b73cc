"""The commits a session made and the line map of each, from its recorded tool calls alone (no
snapshots): what `lit import` has for sessions recorded before lit was there.

A commit is found from the shell call that ran `git commit` (Claude Code's Bash, Codex's
exec_command or shell): the SHA it printed, else the author time and the message, else the
content. Each added line of its diff goes to the last edit before it whose added lines hold that
line in that file (Claude Code's Write, Edit or MultiEdit; Codex's apply_patch), else to a person.

Steps are the importer's: objects with `fields` (the step's columns: kind, tool_name,
tool_input, is_error, text), `at` (a time), `result_of` (for a tool result: the index of its
call) and `tool_use_result` (the agent's structured result: patches, stdout).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from typing import Any, Protocol

from lit.errors import LitError
from lit.git.run import run, unquote

EDIT_TOOLS = ("Write", "Edit", "MultiEdit")
PATCH_TOOL = "apply_patch"
# The shell tools of the agents lit imports: Claude Code's, then Codex's (by version).
SHELL_TOOLS = ("Bash", "exec_command", "shell", "shell_command", "local_shell", "container.exec")
PATCH = re.compile(r"\*\*\* Begin Patch\n.*?\*\*\* End Patch", re.DOTALL)
GIT_COMMIT = re.compile(r"\bgit\b(?:\s+-[Cc]\s+\S+|\s+--?[\w-]+(?:=\S+)?)*\s+commit\b")
COMMIT_LINE = re.compile(r"^\[(?P<branch>[^\]\s]+)(?: \([^)]*\))? (?P<sha>[0-9a-f]{7,40})\] (?P<subject>.*)$",
                         re.MULTILINE)
HEREDOC = re.compile(r"<<-?\s*['\"]?(\w+)['\"]?\n(.*?)\n\s*\1\b", re.DOTALL)


class Step(Protocol):
    fields: dict
    at: float
    result_of: int | None
    tool_use_result: Any


def tool_input_of(step: Step) -> dict:
    """The tool call's input, {} when it is not an object."""
    value = step.fields.get("tool_input")
    return value if isinstance(value, dict) else {}


def shell_command(step: Step) -> str | None:
    """The command line of a shell tool call: `command` as a string, or as argv whose last word is
    the script (`["bash", "-lc", "git commit ..."]`), or Codex's `cmd`."""
    if step.fields["kind"] != "tool_call" or step.fields.get("tool_name") not in SHELL_TOOLS:
        return None
    tool_input = tool_input_of(step)
    command = tool_input.get("command", tool_input.get("cmd"))
    if isinstance(command, list) and command and all(isinstance(w, str) for w in command):
        return command[-1] if len(command) >= 3 and command[-2] in ("-c", "-lc") else shlex.join(command)
    return command if isinstance(command, str) else None


@dataclass
class Commit:
    sha: str
    call: int  # index of the Bash step that made it
    boundary: int  # the thread ends with this step (the call's result)


def run_git(repo: str, *args: str) -> subprocess.CompletedProcess:
    return run(["-c", "core.quotePath=false", *args], repo, timeout=60)


def commit_message(command: str) -> str | None:
    """The message a `git commit` command line gives (-m, or a heredoc), if it says."""
    m = HEREDOC.search(command)
    if m:
        return m.group(2).strip()
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    for i, w in enumerate(words):
        if (w == "--message" or re.fullmatch(r"-[a-zA-Z]*m", w)) and i + 1 < len(words):  # -m, -am, -qm
            return words[i + 1]
        if w.startswith("--message="):
            return w.split("=", 1)[1]
        if w.startswith("-m") and len(w) > 2 and not w.startswith("--"):
            return w[2:]
    return None


def _reachable(repo: str, sha: str) -> bool:
    """On a branch or tag (not amended or rebased away). HEAD first: one short walk, where asking
    every ref costs a walk per ref in a repository with many tags."""
    if run_git(repo, "merge-base", "--is-ancestor", sha, "HEAD").returncode == 0:
        return True
    out = run_git(repo, "for-each-ref", "--contains", sha, "--count=1", "--format=%(refname)")
    return out.returncode == 0 and bool(out.stdout.strip())


def find_commits(steps: list[Step], repo: str | None, edits: list[Edit]) -> list[Commit]:
    """The commits the session's shell calls made, found in the repository: by the SHA Claude Code
    or git printed when it is still there, else by time, message and content (an amend or a
    rebase since gives the same change a new SHA)."""
    if not repo:
        return []
    found: list[Commit] = []
    used: set[str] = set()
    results = _results(steps)
    for i, s in enumerate(steps):
        command = shell_command(s)
        if not command or not GIT_COMMIT.search(command):
            continue
        result = results.get(i)
        if result is None:
            continue
        short, subject = printed_sha(steps[result].tool_use_result, steps[result].fields.get("text"))
        if steps[result].fields.get("is_error") and not short:
            continue
        subject = subject or (commit_message(command) or "").split("\n", 1)[0].strip() or None
        sha = None
        if short:
            rev = run_git(repo, "rev-parse", "--verify", "-q", short + "^{commit}")
            if rev.returncode == 0 and _reachable(repo, rev.stdout.strip()):
                sha = rev.stdout.strip()
        if sha is None and (short or subject):
            sha = _match_commit(repo, steps, s.at, steps[result].at, subject, edits, i, used)
        if sha and sha not in used:
            used.add(sha)
            found.append(Commit(sha, i, result))
    return found


def _results(steps: list[Step]) -> dict[int, int]:
    """Index of each tool call -> index of its result."""
    return {s.result_of: j for j, s in enumerate(steps) if s.result_of is not None}


def printed_sha(tool_use_result: Any, text: str | None = None) -> tuple[str | None, str | None]:
    """(short SHA, subject) of the commit a Bash call reported: Claude Code's `gitOperation`, or
    git's own `[branch sha] subject` line."""
    tur = tool_use_result if isinstance(tool_use_result, dict) else {}
    op = ((tur.get("gitOperation") or {}).get("commit") or {}) if isinstance(tur.get("gitOperation"), dict) else {}
    stdout = tur.get("stdout") if isinstance(tur.get("stdout"), str) else (text or "")
    m = COMMIT_LINE.search(stdout or "")
    sha = op.get("sha") if isinstance(op.get("sha"), str) else (m.group("sha") if m else None)
    return sha, (m.group("subject").strip() if m else None)


def _match_commit(repo: str, steps: list[Step], t_call: float, t_result: float, subject: str | None,
                  edits: list[Edit], call: int, used: set[str]) -> str | None:
    # Committer time is never before author time, so this bounds the walk without missing any.
    log = run_git(repo, "log", "--all", "--no-merges", "--format=%H%x1f%at%x1f%s", f"--since={int(t_call) - 60}")
    candidates = []
    for line in log.stdout.splitlines():
        parts = line.split("\x1f")
        if len(parts) != 3 or parts[0] in used:
            continue
        sha, at, subj = parts[0], int(parts[1]), parts[2]
        # Author time survives amend (without --reset-author) and rebase; git stores seconds.
        if not (t_call - 2 <= at <= t_result + 2):
            continue
        if subject and subj.strip() != subject:
            continue
        candidates.append(sha)
    if subject and len(candidates) == 1:
        return candidates[0]
    # Several at once, or no message to go by: the commit holding most of the recorded edits' lines.
    prior = [e for e in edits if e.index < call]
    scored = [(sum(1 for *_, step in attribute(repo, sha, prior) if step is not None), sha) for sha in candidates]
    best = max(scored, default=(0, None))
    return best[1] if best[0] > 0 or subject else None


def committed_later(repo: str, steps: list[Step], tail: list[Edit], *, exclude: set[str],
                    claimed: set[str], limit: int = 50) -> str | None:
    """The first commit, from the first of the session's uncommitted edits on, that holds lines
    those edits wrote (three, or all if they wrote fewer): a person committing the session's work
    after it. Blank and very short lines (a brace, `end`) prove nothing and are not counted."""
    after = steps[tail[0].index].at
    written = {(e.path, ln) for e in tail for ln in e.lines if len(ln.strip()) >= 4}
    need = min(3, len(written))
    if not need:
        return None
    log = run_git(repo, "log", "--all", "--no-merges", "--reverse", "--format=%H%x1f%at", f"--since={int(after) - 60}")
    seen = 0
    for line in log.stdout.splitlines():
        sha, _, at = line.partition("\x1f")
        if not at.isdigit() or int(at) < after - 2 or sha in exclude or any(sha.startswith(p) for p in claimed):
            continue
        seen += 1
        if seen > limit:
            break
        added = added_lines(repo, sha)
        texts = {(path, n): text for path, n, text in added}
        matched = {texts[(path, n)] for path, n, step in attribute(repo, sha, tail, added)
                   if step is not None and len(texts[(path, n)].strip()) >= 4}
        if len(matched) >= need:
            return sha
    return None


# --- the line map ------------------------------------------------------------------------------


@dataclass
class Edit:
    index: int  # the tool call's step index
    path: str  # real path of the file
    lines: set[str]  # the lines it added


def recorded_edits(steps: list[Step], base: str | None = None) -> list[Edit]:
    """The edits that succeeded, with the lines each added: Claude Code's Write/Edit/MultiEdit (the
    `+` lines of its structured patch, a new file's content, else new_string minus old_string) and
    Codex's apply_patch (the `+` lines of each file of the patch, also when run through its shell).
    Relative paths are relative to `base` (the folder the agent ran in)."""
    out = []
    results = _results(steps)
    for i, s in enumerate(steps):
        if s.fields["kind"] != "tool_call":
            continue
        result = steps[results[i]] if i in results else None
        if result is not None and result.fields.get("is_error"):
            continue  # the edit failed: nothing was written
        if s.fields.get("tool_name") in EDIT_TOOLS:
            edit = _claude_code_edit(i, s, result)
            out += [edit] if edit else []
        else:
            patch = _patch_of(s)
            out += [Edit(i, os.path.realpath(os.path.join(base or "", path)), lines)
                    for path, lines in patch_lines(patch).items()] if patch else []
    return out


def _claude_code_edit(index: int, s: Step, result: Step | None) -> Edit | None:
    tur = result.tool_use_result if result else None
    if isinstance(tur, str):
        return None  # Claude Code's error text: nothing was written
    tool_input = tool_input_of(s)
    tur = tur if isinstance(tur, dict) else {}
    path = tur.get("filePath") or tool_input.get("file_path")
    if not isinstance(path, str):
        return None
    return Edit(index, os.path.realpath(path), _added_lines(s.fields["tool_name"], tool_input, tur))


def _patch_of(s: Step) -> str | None:
    """The patch an apply_patch call applied: its freeform input, its `input` argument, or the
    heredoc of an `apply_patch` run through the shell."""
    value = s.fields.get("tool_input")
    if s.fields.get("tool_name") == PATCH_TOOL:
        value = value.get("input") if isinstance(value, dict) else value
        return value if isinstance(value, str) else None
    command = shell_command(s)
    if command and "apply_patch" in command:
        m = PATCH.search(command)
        return m.group(0) if m else None
    return None


def patch_lines(patch: str) -> dict[str, set[str]]:
    """For each file an apply_patch patch adds or updates (under its new name when moved), the
    lines it adds."""
    out: dict[str, set[str]] = {}
    current: set[str] | None = None
    for line in patch.splitlines():
        for marker in ("*** Add File: ", "*** Update File: ", "*** Move to: "):
            if line.startswith(marker):
                name = line[len(marker):].strip()
                if marker == "*** Move to: " and current is not None:
                    # The moved file's lines so far go with it to its new name.
                    out = {(name if v is current else k): v for k, v in out.items()}
                else:
                    current = out.setdefault(name, set())
                break
        else:
            if line.startswith("*** "):
                current = None  # Delete File, End Patch, End of File
            elif current is not None and line.startswith("+"):
                current.add(line[1:])
    return out


def _added_lines(tool: str, tool_input: dict, tur: dict) -> set[str]:
    patch = tur.get("structuredPatch")
    # A Write over an existing file ("update") added only its patch's lines, maybe none.
    if tool == "Write" and (tur.get("type") == "create" or not isinstance(patch, list)):
        content = tur.get("content") if isinstance(tur.get("content"), str) else tool_input.get("content")
        return set((content or "").splitlines())
    if isinstance(patch, list) and (patch or tool == "Write"):
        return {ln[1:] for hunk in patch if isinstance(hunk, dict)
                for ln in hunk.get("lines") or [] if isinstance(ln, str) and ln.startswith("+")}
    pairs = [(tool_input.get("old_string"), tool_input.get("new_string"))]
    if tool == "MultiEdit":
        pairs = [(e.get("old_string"), e.get("new_string")) for e in tool_input.get("edits") or []
                 if isinstance(e, dict)]
    added: set[str] = set()
    for old, new in pairs:
        old_lines = set((old or "").splitlines()) if isinstance(old, str) else set()
        added |= {ln for ln in (new or "").splitlines() if ln not in old_lines} if isinstance(new, str) else set()
    return added


def added_lines(repo: str, sha: str) -> list[tuple[str, int, str]]:
    """(path, new line number, text) of each line the commit added or changed (new side)."""
    # A merge gives no lines: what it brings in was written by the commits merged.
    out = run_git(repo, "diff-tree", "-p", "--root", "-M", "--unified=0", "--no-color", "--no-ext-diff", sha)
    if out.returncode != 0:
        raise LitError(f"cannot read commit {sha[:12]} in {repo}: {out.stderr.strip()}")
    rows, path, line, header = [], None, 0, False
    for text in out.stdout.split("\n"):
        if text.startswith("diff --git "):
            header, path = True, None
        elif header and text.startswith("+++ "):
            target = text[4:]
            path = None if target == "/dev/null" else unquote(target)[2:]
        elif text.startswith("@@ "):
            header = False
            m = re.match(r"@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@", text)
            line = int(m.group(1)) if m else 0
        elif not header and text.startswith("+") and path is not None and line:
            rows.append((path, line, text[1:]))
            line += 1
    return rows


def attribute(repo: str, sha: str, edits: list[Edit],
              added: list[tuple[str, int, str]] | None = None) -> list[tuple[str, int, int | None]]:
    """For each added line of the commit: (path, line, index of the edit step that wrote it, or
    None for a person). The last edit before the commit whose added lines hold it wins."""
    real_root = os.path.realpath(repo)
    by_path: dict[str, list[Edit]] = {}
    for e in edits:
        by_path.setdefault(e.path, []).append(e)
    out = []
    for path, line, text in added if added is not None else added_lines(repo, sha):
        candidates = by_path.get(os.path.join(real_root, path), [])
        step = next((e.index for e in reversed(candidates) if text in e.lines or text.rstrip("\r") in e.lines),
                    None)
        out.append((path, line, step))
    return out


def line_ranges(attributed: list[tuple[str, int, int | None]]) -> list[tuple[str, int, int, int | None]]:
    """Consecutive lines of one file from one step as inclusive ranges."""
    ranges: list[list] = []
    for path, line, step in attributed:
        last = ranges[-1] if ranges else None
        if last and last[0] == path and last[2] == line - 1 and last[3] == step:
            last[2] = line
        else:
            ranges.append([path, line, line, step])
    return [tuple(r) for r in ranges]
