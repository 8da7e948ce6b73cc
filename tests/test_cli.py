"""A newcomer's mistakes at the command line, through the real `lit` entry point: each says what is
wrong in one line (no traceback, no usage page), and every --help reads the same way."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from lit_fixtures import build_story

LIT = [sys.executable, "-m", "lit"]


def lit(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*LIT, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def one_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc.stderr.strip()


@pytest.mark.parametrize("args", [["serve", "--port", "99999"], ["serve", "--port", "-1"],
                                  ["replay", "abc123", "--port", "99999"], ["record", "--port", "99999", "--", "true"]])
def test_a_port_out_of_range_is_one_line(args, tmp_path):
    proc = lit(*args, cwd=tmp_path)
    port = args[args.index("--port") + 1]
    assert one_line(proc) == (f"lit {args[0]}: invalid value for '--port' / '-p': {port} is not a port "
                              f"(0 to 65535; 0 picks a free one) (see lit {args[0]} --help)")
    assert proc.returncode == 2


def test_other_usage_mistakes_are_one_line(tmp_path):
    assert one_line(lit("nope", cwd=tmp_path)) == "lit: no such command 'nope' (see lit --help)"
    assert one_line(lit("threads", "-n", "x", cwd=tmp_path)).startswith("lit threads: invalid value for '--limit'")
    assert one_line(lit("blame", cwd=tmp_path)) == "lit blame: missing argument 'FILE' (see lit blame --help)"


def test_blame_checks_its_line_range_and_its_file(tmp_path):
    story = build_story(tmp_path / "repo", tmp_path / "lit.db")
    env = {"LIT_DB": str(story.db_path)}
    assert one_line(lit("blame", "-L", "abc", "wordcount.py", cwd=story.repo, env=env)) == (
        "lit: -L abc: give START,END (-L 40,60), START,+COUNT, or a /regex/ or :function as git blame does")
    assert one_line(lit("blame", ".", cwd=story.repo, env=env)) == "lit: . is a folder: lit blame takes a file"
    for good in ("5,6", "5,+2", "/def main/,+1", ":count_words"):
        assert lit("blame", "-L", good, "wordcount.py", cwd=story.repo, env=env).returncode == 0, good


@pytest.mark.parametrize("args", [["pr"], ["weave", "HEAD"], ["blame", "f.py"], ["sync"], ["relink"],
                                  ["hooks", "install"]])
def test_outside_a_git_repository_every_command_says_so(args, tmp_path):
    proc = lit(*args, cwd=tmp_path, env={"GIT_CEILING_DIRECTORIES": str(tmp_path)})
    assert "not in a git repository" in one_line(proc)


def test_weave_open_without_a_browser_says_so(tmp_path):
    story = build_story(tmp_path / "repo", tmp_path / "lit.db")
    proc = lit("weave", "HEAD", "--open", cwd=story.repo, env={"LIT_DB": str(story.db_path), "BROWSER": "false"})
    page = proc.stdout.strip()
    assert Path(page).is_file()
    assert one_line(proc) == f"lit: could not open a browser (set $BROWSER to one); the page is {page}"


def test_lit_db_pointing_at_a_folder_says_so(tmp_path):
    story = build_story(tmp_path / "repo", tmp_path / "lit.db")
    for args in (["threads", "--all"], ["sessions"], ["serve", "--port", "0"], ["blame", "wordcount.py"]):
        assert one_line(lit(*args, cwd=story.repo, env={"LIT_DB": str(tmp_path)})) == (
            f"lit: {tmp_path} is a folder, not lit's DB file: point --db or LIT_DB at a file "
            "(e.g. ~/.local/share/lit/lit.db)"), args


@pytest.mark.parametrize("columns", ["80", "100"])
def test_the_command_list_is_whole_at_80_and_100_columns(columns, tmp_path):
    out = lit("--help", cwd=tmp_path, env={"COLUMNS": columns}).stdout
    commands = out.split("Commands:", 1)[1]
    assert "..." not in commands
    assert max(len(line) for line in out.splitlines()) <= int(columns)
    assert "record    Run an agent with its API calls relayed through lit, and record" in commands
    assert "the session." in commands


def _helps(tmp_path: Path) -> dict[str, str]:
    from test_docs import commands

    return {name: lit(*name.split(), "--help", cwd=tmp_path, env={"COLUMNS": "100"}).stdout for name in commands()}


def test_every_help_writes_placeholders_and_the_db_one_way(tmp_path):
    helps = _helps(tmp_path)
    for name, text in helps.items():
        usage = text.splitlines()[0]
        # FILE, [RANGE], --db PATH: upper case, as git and gh write them; never {file}, <str>, [target]
        assert re.fullmatch(rf"Usage: lit {name} \[OPTIONS\]( \[?[A-Z]+\]?)*( \[-- COMMAND \[ARGS\]...\])?",
                            usage), usage
        specs = [re.split(r"\s{2,}", line.strip())[0] for line in text.splitlines()
                 if line.startswith("  -") and not line.startswith("  -- COMMAND")]
        for spec in specs:
            assert re.fullmatch(r"(-\w, )?--?[a-zA-Z][\w-]*( [A-Z][A-Z,]*| / --[\w-]+)?", spec), (name, spec)
        assert "<sha>" not in text and "<str>" not in text and "<int>" not in text
        if "--db" in text:
            assert "--db PATH lit's DB (default: $LIT_DB, else the user's data dir)." in " ".join(text.split())
        assert "[default: 0]" not in text and "(default: a free one).  [default" not in text
    assert "-p, --port N" in helps["serve"] and "(default: 8001; 0 picks a free one)" in helps["serve"]
    assert "Usage: lit blame [OPTIONS] FILE" in helps["blame"]
    assert "Usage: lit pr [OPTIONS] [RANGE]" in helps["pr"]
    assert "Print a JSON array, an object for each line of the file" in helps["blame"]


def test_blame_json_full_carries_the_whole_why(tmp_path):
    story = build_story(tmp_path / "repo", tmp_path / "lit.db")
    env = {"LIT_DB": str(story.db_path)}
    plain = json.loads(lit("blame", "wordcount.py", "--json", cwd=story.repo, env=env).stdout)
    full = json.loads(lit("blame", "wordcount.py", "--json", "--full", cwd=story.repo, env=env).stdout)
    assert len(plain) == len(full) and all(set(p) < set(f) for p, f in zip(plain, full, strict=True))
    step = next(f for f in full if f["kind"] == "step")
    assert step["prompt"] and step["reasoning"] and step["reasoning"].startswith(step["why"])
    assert isinstance(step["tool_input"], dict) and step["result"]
    other = [f for f in full if f["kind"] != "step"]
    assert other and all(f["prompt"] is None and f["tool_input"] is None for f in other)


def test_a_limit_below_one_and_a_page_into_a_missing_folder_are_one_line(tmp_path):
    story = build_story(tmp_path / "repo", tmp_path / "lit.db")
    env = {"LIT_DB": str(story.db_path)}
    assert one_line(lit("threads", "-n", "0", cwd=story.repo, env=env)) == (
        "lit threads: invalid value for '--limit' / '-n': 0: give 1 or more (see lit threads --help)")
    missing = tmp_path / "no-such-folder"
    assert one_line(lit("weave", "HEAD", "-o", str(missing / "p.html"), cwd=story.repo, env=env)) == (
        f"lit: cannot write {missing / 'p.html'}: No such file or directory")
    assert not missing.exists()  # -o names a file; lit makes no folder for it


def test_step_heads_name_files_relative_to_the_repository(tmp_path):
    """Claude Code's tools name files by absolute path; `lit show`, the woven page and the thread
    page show them as git does. The woven page does so in a clone elsewhere too."""
    from lit_fixtures import add_db_thread, commit_files, init_repo

    repo = init_repo(tmp_path / "repo")
    sha = commit_files(repo, {"src/app.py": "print('hi')\n"}, "Add app.py")
    db = tmp_path / "lit.db"
    absolute = f"{repo}/src/app.py"
    add_db_thread(db, thread="ab12cd34ef56", commit=sha, repo_root=str(repo), line_map={"src/app.py": [
        [1, 1, "ab12cd34ef56.2"]]}, steps=[
        {"kind": "prompt", "text": "Write app.py"},
        {"kind": "tool_call", "tool_name": "Write", "tool_use_id": "toolu_1",
         "tool_input": {"file_path": absolute, "content": "print('hi')\n"}},
        {"kind": "tool_result", "tool_use_id": "toolu_1", "text": "File created successfully"}])
    env = {"LIT_DB": str(db), "COLUMNS": "200"}
    shown = lit("show", "ab12cd34ef56", cwd=repo, env=env).stdout
    assert "ab12cd34ef56.2 tool Write: src/app.py" in shown and absolute not in shown
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    for where in (repo, clone):
        page = tmp_path / f"{where.name}.html"
        assert lit("weave", "HEAD", "-o", str(page), cwd=where, env=env).returncode == 0
        html = page.read_text()
        assert "Step 2: Write <code>src/app.py</code>" in html and f"<code>{absolute}</code>" not in html

    import asyncio

    from lit.serve import make_datasette

    async def thread_page() -> str:
        return (await make_datasette(db).client.get("/-/lit/thread/ab12cd34ef56")).text
    html = asyncio.run(thread_page())
    assert "<strong>Write</strong> <code>src/app.py</code>" in html and f"<code>{absolute}</code>" not in html


def test_serve_open_without_a_browser_says_so(tmp_path):
    story = build_story(tmp_path / "repo", tmp_path / "lit.db")
    server = subprocess.Popen([*LIT, "serve", "--port", "0", "--open"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "LIT_DB": str(story.db_path), "BROWSER": "false"})
    try:
        url = server.stdout.readline().split()[2]
        said = server.stderr.readline()
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert said == f"lit serve: could not open a browser (set $BROWSER to one); open {url}\n"
