"""`lit demo` end to end in a temporary directory: the shipped recording replays, the agent
commits under lit record, and the commit carries its trailer, its note, its blame and its page.
Also: the shipped recording itself replays turn for turn for examples/agent.py."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lit import demo, replay


@pytest.fixture
def env(tmp_path: Path) -> dict:
    home = tmp_path / "home"
    home.mkdir()
    e = {**os.environ, "HOME": str(home), "LIT_DB": str(tmp_path / "unused.db"), "GIT_CONFIG_NOSYSTEM": "1"}
    for name in ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "LIT_AGENT_MODEL"):
        e.pop(name, None)
    return e


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def test_the_shipped_recording_is_small_and_names_nothing_of_this_machine():
    path = demo.demo_thread_file()
    text = path.read_text()
    assert path.stat().st_size < 200_000
    assert str(Path.home()) not in text and str(Path(__file__).resolve().parent.parent) not in text
    recording = replay.load(str(path))
    kinds = {b["type"] for t in recording.turns for b in t.response["content"]}
    assert kinds == {"thinking", "text", "tool_use"}
    assert len(recording.turns) >= 8
    calls = [b["input"].get("command", "") for t in recording.turns for b in t.response["content"]
             if b["type"] == "tool_use" and b["name"] == "run_shell"]
    assert any("git commit" in c for c in calls)


@pytest.mark.slow
def test_lit_demo_end_to_end(tmp_path: Path, env: dict):
    target = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "lit", "demo", str(target)], env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    out = proc.stdout
    repo = target / "tools"

    # the agent really ran: its files, its passing tests, its commit on top of the seed commit
    assert "def count(text):" in (repo / "wordcount.py").read_text()
    assert "len(text.split())" in (repo / "wordcount.py").read_text()
    tests = subprocess.run([sys.executable, "-m", "unittest", "-q"], cwd=repo, capture_output=True, text=True)
    assert tests.returncode == 0, tests.stderr
    subjects = git(repo, "log", "--format=%s").splitlines()
    assert subjects == ["Add wordcount.py, a wc-like line, word and character counter, with tests",
                        "Start the tools repository"]

    # linked: the trailer names a thread of the demo's DB, the note carries the line map
    thread = git(repo, "log", "-1", "--format=%(trailers:key=Lit-Thread,valueonly)").strip()
    assert len(thread) == 12
    note = json.loads(git(repo, "notes", "--ref=lit", "show", "HEAD"))
    assert note["thread"] == thread and note["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert set(note["files"]) >= {"wordcount.py", "test_wordcount.py", "README.md"}
    assert f"linked to thread {thread}" in out
    # what lit record said is what `lit threads` lists: one thread, the same number of steps
    recorded = re.search(r"lit: recorded \d+ exchanges, (\d+) steps in thread (\w+)", proc.stderr + out)
    assert recorded and recorded.group(2) == thread, proc.stderr
    listed = subprocess.run([sys.executable, "-m", "lit", "threads", "--json"], cwd=repo, capture_output=True,
                            text=True, env={**env, "LIT_DB": str(target / "lit.db")}, check=True).stdout
    assert [(t["id"], t["steps"]) for t in json.loads(listed)] == [(thread, int(recorded.group(1)))]

    # blame: the fixed line is the edit's, the rest of the module the write's
    assert "$ lit blame wordcount.py" in out
    blame_lines = out.split("$ lit blame wordcount.py", 1)[1]
    assert "len(text.split())" in blame_lines and "def main(argv=None):" in blame_lines

    # the page and the PR description, where the summary says they are
    page = target / "wordcount-commit.html"
    assert f"woven page    {page}" in out
    html = page.read_text()
    assert "Add wordcount.py" in html and "split()" in html
    pr = (target / "PR.md").read_text()
    assert "wordcount" in pr
    assert f"export LIT_DB={target / 'lit.db'}" in out

    # the thread travels: exported by its commit, imported into another DB, blame reads the same
    other = {**env, "LIT_DB": str(tmp_path / "other.db")}
    demo_db = {**env, "LIT_DB": str(target / "lit.db")}
    lit = [sys.executable, "-m", "lit"]
    subprocess.run([*lit, "export", "HEAD", "-o", str(tmp_path / "t.jsonl")], cwd=repo, env=demo_db, check=True)
    imported = subprocess.run([*lit, "import", str(tmp_path / "t.jsonl")], env=other, capture_output=True,
                              text=True, check=True)
    assert imported.stdout.startswith(f"lit import: thread {thread}: added rows: sessions 1,")
    blames = [subprocess.run([*lit, "blame", "wordcount.py", "--json"], cwd=repo, env=e, capture_output=True,
                             text=True, check=True).stdout for e in (demo_db, other)]
    assert blames[0] == blames[1] and thread in blames[0]


def test_lit_demo_refuses_a_directory_that_is_not_empty(tmp_path: Path, env: dict):
    (tmp_path / "keep.txt").write_text("mine")
    proc = subprocess.run([sys.executable, "-m", "lit", "demo", str(tmp_path)], env=env, capture_output=True,
                          text=True)
    assert proc.returncode == 1
    assert proc.stderr == f"lit: {tmp_path} is not an empty directory: give lit demo a new or empty one\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "keep.txt"]


def test_lit_demo_quiet_tells_one_consistent_story(tmp_path: Path, env: dict):
    """What a newcomer reads after `lit demo -q`: no blank lines; one thread, whose step count is
    the one lit record said; the session's command as it was typed; a PR text that agrees with the
    agent's last test run; the failed first run among the failed tool calls; paths as git shows them."""
    target = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "lit", "demo", "-q", str(target)], env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "\n\n" not in proc.stdout and proc.stdout.strip() == proc.stdout.rstrip("\n")
    repo = target / "tools"
    demo_db = {**env, "LIT_DB": str(target / "lit.db"), "COLUMNS": "200"}
    lit = [sys.executable, "-m", "lit"]

    def run(*args: str) -> str:
        out = subprocess.run([*lit, *args], cwd=repo, env=demo_db, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    threads = json.loads(run("threads", "--json"))
    session, = json.loads(run("sessions", "--json"))
    assert [t["status"] for t in threads] == ["bound"]  # no empty thread of the agent's last words
    assert threads[0]["steps"] == session["steps"] == 32
    assert json.loads(session["argv"])[:2] == [Path(sys.executable).name, "../agent.py"]
    table = run("sessions")
    assert f"{Path(sys.executable).name} ../agent.py 'Add a small wordcount.py CLI" in table
    assert "1 exchanges" not in run("show", threads[0]["id"])

    pr = (target / "PR.md").read_text()
    assert "- failed: `python -m unittest` (exit code 1)\n- passed: `python -m unittest -v`" in pr
    assert "The last run of each test suite or build passed." in pr and "ended on a failure" not in pr
    assert "The columns line up and the total is right." not in pr  # a check, not a decision

    from lit.serve import make_datasette

    async def failed():
        ds = make_datasette(target / "lit.db")
        return (await ds.client.get("/lit/failed_tool_calls.json?_shape=array")).json()
    rows = asyncio.run(failed())
    assert [json.loads(r["tool_input"]) for r in rows] == [{"command": "python -m unittest"}]

    shown = run("show", threads[0]["id"])
    assert "tool write_file: wordcount.py" in shown and str(repo) not in shown
    page = (target / "wordcount-commit.html").read_text()
    assert "<code>wordcount.py</code>" in page and f"<code>{repo}/" not in page
