"""Run the real Claude Code CLI offline against a scripted model, in a new git repository, and
keep the transcripts it writes: the test data of `lit import claude-code`.

The scripted model writes hello.py (Write), reads it, tries an Edit that fails, edits it (Edit),
commits with Bash, starts a subagent (Agent) that writes NOTES.md, then appends a line to NOTES.md
by shell and commits again. tests/test_import_claude_code.py calls `run_claude` live (the
conftest installs the CLI); `python tests/data/claude_code/make_transcripts.py` rewrites the committed copy
(session/ and repo.fast-export, machine paths replaced by /home/user/project) that covers parsing
without npm.

Claude Code: npm install --prefix ~/.cache/lit-tests/claude-code @anthropic-ai/claude-code@2.1.197
(or set LIT_CLAUDE_CODE to its `claude`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from lit.scripted import ScriptedUpstream, text_message, tool_message

HERE = Path(__file__).resolve().parent
CLAUDE = Path(os.environ.get("LIT_CLAUDE_CODE")
              or Path.home() / ".cache" / "lit-tests" / "claude-code" / "node_modules" / ".bin" / "claude")
PLACEHOLDER = "/home/user/project"  # the repository's path in the committed transcripts
FAKE_KEY = "sk-ant-api03-" + "Qx7" * 30 + "-AA"
PROMPT = "Write hello.py with a hello() function that prints a greeting, and commit it. Then add notes."
SUBAGENT_PROMPT = "Write NOTES.md: one heading and one line saying what hello.py does."

HELLO_WRITTEN = "def hello():\n    return 'hi'\n"
HELLO_OLD = "    return 'hi'\n"
HELLO_NEW = "    return 'hello, world'\n\n\nif __name__ == '__main__':\n    print(hello())\n"
NOTES = "# Notes\nhello.py prints a greeting.\n"
HUMAN_LINE = "Reviewed by hand."
RESUMED_PROMPT = "Also add bye.py with a bye() function, and commit it."
BYE = "def bye():\n    return 'bye'\n"
COMPACT_SUMMARY = "hello.py and NOTES.md were written and committed."
BYE_REWRITTEN = "def bye():\n    return 'goodbye'\n"


def project_dir_name(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "-", path)


def script(repo: Path):
    """The model's side: which reply a request gets, by how far its conversation has come."""
    hello, notes = str(repo / "hello.py"), str(repo / "NOTES.md")
    main = [
        tool_message("Write", {"file_path": hello, "content": HELLO_WRITTEN},
                     thinking="A module with one function; write it first, then refine it.",
                     text="I'll create hello.py."),
        tool_message("Read", {"file_path": hello}),
        tool_message("Edit", {"file_path": hello, "old_string": "return 'bye'", "new_string": "return 'x'"},
                     text="Now the greeting itself."),
        tool_message("Edit", {"file_path": hello, "old_string": HELLO_OLD, "new_string": HELLO_NEW},
                     thinking="That string is not in the file; replace the return line instead."),
        tool_message("Bash", {"command": "git add -A && git commit -m 'Add hello.py'",
                              "description": "Commit hello.py"}),
        tool_message("Agent", {"description": "Write the notes", "prompt": SUBAGENT_PROMPT,
                               "subagent_type": "general-purpose"}),
        tool_message("Bash", {"command": f"printf '{HUMAN_LINE}\\n' >> NOTES.md && git add NOTES.md"
                                         " && git commit -m 'Add notes'", "description": "Commit the notes"}),
        text_message("Committed hello.py and NOTES.md."),
    ]
    sub = [tool_message("Write", {"file_path": notes, "content": NOTES}, text="Writing NOTES.md."),
           text_message("Wrote NOTES.md.")]

    def reply(body: dict) -> dict:
        if not body.get("tools"):
            return text_message("Hello module")  # a side call (title and the like), if any
        messages = body.get("messages") or []
        turn = sum(1 for m in messages if m.get("role") == "assistant")
        replies = sub if SUBAGENT_PROMPT in json.dumps(messages[:1]) else main
        return replies[min(turn, len(replies) - 1)]

    return reply


def resumed_script(repo: Path):
    """The model's side of the session resumed with a second prompt (`claude -p --resume`)."""
    write_and_read = tool_message("Write", {"file_path": str(repo / "bye.py"), "content": BYE}, text="Adding bye.py.")
    # Two calls in one response: Claude Code hangs each result under its own call, off the chain.
    write_and_read["content"].append({"type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:24], "name": "Read",
                                      "input": {"file_path": str(repo / "hello.py")}})
    replies = [
        write_and_read,
        tool_message("Write", {"file_path": str(repo / "bye.py"), "content": BYE_REWRITTEN},
                     text="A longer word reads better."),  # a Write over a file: only its patch is new
        tool_message("Bash", {"command": "git add bye.py && git commit -m 'Add bye.py'", "description": "Commit"}),
        text_message("Committed bye.py."),
    ]

    def reply(body: dict) -> dict:
        if not body.get("tools"):
            return text_message("Bye module")
        messages = body.get("messages") or []
        since = max((i for i, m in enumerate(messages) if m.get("role") == "user"
                     and RESUMED_PROMPT in json.dumps(m)), default=len(messages))
        turn = sum(1 for m in messages[since:] if m.get("role") == "assistant")
        return replies[min(turn, len(replies) - 1)]

    return reply


def make_repo(repo: Path) -> None:
    repo.mkdir(parents=True)
    for args in (["init", "-q", "-b", "main"], ["config", "user.name", "Test User"],
                 ["config", "user.email", "test@example.com"], ["config", "commit.gpgsign", "false"]):
        subprocess.run(["git", *args], cwd=repo, check=True)


def claude_env(home: Path, url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_", "LIT_"))}
    env.update({"HOME": str(home), "IS_SANDBOX": "1", "ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": FAKE_KEY,
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
                "DISABLE_ERROR_REPORTING": "1", "DISABLE_AUTOUPDATER": "1", "GIT_CONFIG_NOSYSTEM": "1"})
    return env


@dataclass
class Run:
    repo: Path
    home: Path
    session_id: str
    transcript: Path  # the session's .jsonl under home/.claude/projects/...
    output: dict  # what `claude -p --output-format json` printed


def run_claude(workdir: Path, claude: Path = CLAUDE) -> Run:
    """Claude Code, offline, in workdir/project with HOME=workdir/home."""
    repo, home = workdir / "project", workdir / "home"
    make_repo(repo)
    home.mkdir(parents=True)
    with ScriptedUpstream(script(repo)) as upstream:
        proc = subprocess.run([str(claude), "-p", PROMPT, "--permission-mode", "bypassPermissions",
                               "--output-format", "json"], cwd=repo, env=claude_env(home, upstream.url),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"claude exited {proc.returncode}: {proc.stderr[-2000:]}")
    output = json.loads(proc.stdout)
    sid = output["session_id"]
    transcripts = list((home / ".claude" / "projects").glob(f"*/{sid}.jsonl"))
    if len(transcripts) != 1:
        raise RuntimeError(f"no transcript for session {sid} under {home}/.claude/projects")
    return Run(repo, home, sid, transcripts[0], output)


def resume_claude(run: Run, claude: Path = CLAUDE) -> dict:
    """A second prompt in the same session: Claude Code appends it to the same transcript."""
    with ScriptedUpstream(resumed_script(run.repo)) as upstream:
        proc = subprocess.run([str(claude), "-p", RESUMED_PROMPT, "--resume", run.session_id,
                               "--permission-mode", "bypassPermissions", "--output-format", "json"],
                              cwd=run.repo, env=claude_env(run.home, upstream.url), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"claude --resume exited {proc.returncode}: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def compact_claude(run: Run, claude: Path = CLAUDE) -> None:
    """/compact in the same session: Claude Code asks the model for a summary and starts a new
    chain (a compact_boundary whose logicalParentUuid points back) in the same transcript."""
    summary = text_message(f"<summary>{COMPACT_SUMMARY}</summary>")
    with ScriptedUpstream(lambda body: summary) as upstream:
        proc = subprocess.run([str(claude), "-p", "/compact", "--resume", run.session_id,
                               "--permission-mode", "bypassPermissions", "--output-format", "json"],
                              cwd=run.repo, env=claude_env(run.home, upstream.url), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"claude /compact exited {proc.returncode}: {proc.stderr[-2000:]}")


def install(data: Path, repo: Path, home: Path) -> Path:
    """Put the committed transcripts under home/.claude/projects for the repository at `repo` (its
    path substituted for the placeholder), and rebuild the repository's history there."""
    make_repo(repo)
    with open(data / "repo.fast-export", "rb") as fh:
        subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, stdin=fh, check=True)
    subprocess.run(["git", "reset", "-q", "--hard", "main"], cwd=repo, check=True)
    folder = home / ".claude" / "projects" / project_dir_name(str(repo))
    for src in (data / "session").rglob("*"):
        if src.is_file():
            dst = folder / src.relative_to(data / "session")
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(src.read_text().replace(PLACEHOLDER, str(repo)))
    return folder


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="lit-cc-") as tmp:
        run = run_claude(Path(tmp))
        out = HERE / "session"
        shutil.rmtree(out, ignore_errors=True)
        folder = run.transcript.parent
        for src in folder.rglob("*"):
            if src.is_file() and (src.suffix in (".jsonl", ".json")):
                dst = out / src.relative_to(folder)
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_text(src.read_text().replace(str(run.repo), PLACEHOLDER)
                               .replace(str(run.home), "/home/user"))
        export = subprocess.run(["git", "fast-export", "--all"], cwd=run.repo, capture_output=True, check=True)
        (HERE / "repo.fast-export").write_bytes(export.stdout)
        leftovers = [str(p) for p in out.rglob("*") if p.is_file() and tmp in p.read_text()]
        if leftovers:
            sys.exit(f"machine paths left in {leftovers}")
        print(f"session {run.session_id}: {sum(1 for _ in out.rglob('*.jsonl'))} transcripts in {out}")


if __name__ == "__main__":
    main()
