"""`lit pr`: descriptions of a real multi-commit range, compared with golden outputs.

The range (branch `feature` off `main`, built by `build_feature`):
  1. Add wordcount.py        thread TA: DB (a failing then a passing pytest run) and its note
  2. Fix a typo in README    a person's commit, no thread
  3. Add count_lines()       thread TB: its note only (a clone without the DB)
  4. Add a --lines flag      thread TC: named by the trailer; the DB has it bound to the SHA the
                             commit had before a squash (so found by id), verified with run_shell
  5. Run main() as a script  thread TD: only the trailer names it

Golden outputs live in tests/golden/. After a deliberate change to the output, regenerate them with
    LIT_UPDATE_GOLDEN=1 python -m pytest tests/test_pr.py
and read the diff before committing it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import FAKE_KEY
from lit_fixtures import (
    BASE_TIME,
    COUNT_LINES,
    EDIT_WHY,
    LINES_WHY,
    WORDCOUNT_V1,
    WORDCOUNT_V2,
    WORDCOUNT_WRITE,
    WRITE_WHY,
    add_db_thread,
    add_note,
    commit_files,
    git,
    init_repo,
    make_note,
)

from lit import pr
from lit.cli import main
from lit.scripted import text_message

GOLDEN = Path(__file__).parent / "golden"
TA, TB, TC, TD = "a1a1a1a1a1a1", "b2b2b2b2b2b2", "c3c3c3c3c3c3", "d4d4d4d4d4d4"
PERSON = ("Ann Person", "ann@example.com")
WEAVE_URL = "https://example.org/weave"

TEST_WORDCOUNT = """from wordcount import count_words


def test_spaces():
    assert count_words("a  b") == 2
"""
PYTEST_FAIL = """F..                                                                      [100%]
=================================== FAILURES ===================================
_________________________________ test_spaces __________________________________
>       assert count_words("a  b") == 2
E       AssertionError: assert 3 == 2
=========================== short test summary info ============================
FAILED tests/test_wordcount.py::test_spaces - AssertionError: assert 3 == 2
========================= 1 failed, 2 passed in 0.05s =========================="""
PYTEST_PASS = "...                                                                      [100%]\n3 passed in 0.04s"
ASK_A = ("Write wordcount.py: print the number of words in each file given on the command line. "
         "Add a test for runs of spaces.")
ASK_B = "Also count lines, like wc -l."
ASK_C = "Add a --lines flag that prints the line count instead of the word count."
WHY_FLAG = ("A flag keeps the default output unchanged for existing scripts. I'll parse argv by hand "
            "rather than pull in argparse for one option.")


def _golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("LIT_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"no golden file {path}: run with LIT_UPDATE_GOLDEN=1 to write it"
    assert actual == path.read_text(encoding="utf-8"), f"{name} differs (LIT_UPDATE_GOLDEN=1 rewrites it)"


def build_feature(root: Path, db_path: Path) -> dict[str, str]:
    """The range described in this module's docstring; returns the commits by name."""
    repo = init_repo(root)
    c = {"base": commit_files(repo, {"README.md": "# wordcount\n\nCount words, teh Unix way.\n"},
                              "Initial commit", when=BASE_TIME - 86400, author=PERSON)}
    git(repo, "checkout", "-q", "-b", "feature")

    # 1. TA, in the DB (every step) and in its note (the cited steps).
    wordcount_a = WORDCOUNT_V1.replace("    # checked by hand on a 3 MB file\n", "")
    c["write"] = commit_files(repo, {"wordcount.py": wordcount_a, "tests/test_wordcount.py": TEST_WORDCOUNT},
                              f"Add wordcount.py\n\nLit-Thread: {TA}", when=BASE_TIME)
    add_db_thread(db_path, thread=TA, commit=c["write"], repo_root=str(repo), started_at=BASE_TIME - 300, steps=[
        {"kind": "prompt", "text": ASK_A + "\n\n<system-reminder>harness text, not the person</system-reminder>"},
        {"kind": "thinking", "text": WRITE_WHY},
        {"kind": "tool_call", "tool_name": "Write", "tool_use_id": "toolu_A3",
         "tool_input": {"file_path": "wordcount.py", "content": WORDCOUNT_WRITE}},
        {"kind": "tool_result", "tool_use_id": "toolu_A3", "text": "File created successfully at: wordcount.py"},
        {"kind": "tool_call", "tool_name": "Write", "tool_use_id": "toolu_A5",
         "tool_input": {"file_path": "tests/test_wordcount.py", "content": TEST_WORDCOUNT}},
        {"kind": "tool_result", "tool_use_id": "toolu_A5", "text": "File created successfully"},
        {"kind": "text", "text": "Now let me run the tests."},
        {"kind": "tool_call", "tool_name": "Bash", "tool_use_id": "toolu_A8",
         "tool_input": {"command": "python -m pytest -q", "description": "Run the tests"}},
        {"kind": "tool_result", "tool_use_id": "toolu_A8", "text": "Exit code 1\n" + PYTEST_FAIL, "is_error": True},
        {"kind": "thinking", "text": EDIT_WHY},
        {"kind": "tool_call", "tool_name": "Edit", "tool_use_id": "toolu_A11",
         "tool_input": {"file_path": "wordcount.py", "old_string": 'len(text.split(" "))',
                        "new_string": "len(text.split())"}},
        {"kind": "tool_result", "tool_use_id": "toolu_A11", "text": "The file wordcount.py has been updated."},
        {"kind": "tool_call", "tool_name": "Bash", "tool_use_id": "toolu_A13",
         "tool_input": {"command": "python -m pytest -q"}},
        {"kind": "tool_result", "tool_use_id": "toolu_A13", "text": PYTEST_PASS},
        {"kind": "tool_call", "tool_name": "Bash", "tool_use_id": "toolu_A15",
         "tool_input": {"command": "git add -A && git commit -m 'Add wordcount.py'"}},
        {"kind": "tool_result", "tool_use_id": "toolu_A15", "text": "[feature 1a2b3c4] Add wordcount.py"},
    ], line_map={"wordcount.py": [[1, 4, f"{TA}.3"], [5, 5, f"{TA}.11"], [6, 12, f"{TA}.3"]],
                 "tests/test_wordcount.py": [[1, 5, f"{TA}.5"]]})
    add_note(repo, c["write"], make_note(
        c["write"], TA, prompts=[{"step": f"{TA}.1", "text": ASK_A}],
        files={"wordcount.py": [[1, 4, f"{TA}.3"], [5, 5, f"{TA}.11"], [6, 12, f"{TA}.3"]],
               "tests/test_wordcount.py": [[1, 5, f"{TA}.5"]]},
        steps={f"{TA}.3": {"seq": 3, "kind": "tool_call", "tool": "Write",
                           "input": {"file_path": "wordcount.py", "content": WORDCOUNT_WRITE},
                           "why": WRITE_WHY, "prompt": f"{TA}.1", "result": "File created", "is_error": False}}))

    # 2. A person's commit.
    c["typo"] = commit_files(repo, {"README.md": "# wordcount\n\nCount words, the Unix way.\n"},
                             "Fix a typo in README", when=BASE_TIME + 300, author=PERSON)

    # 3. TB: the note alone.
    c["lines"] = commit_files(repo, {"wordcount.py": _insert(wordcount_a, 7, COUNT_LINES)},
                              f"Add count_lines()\n\nLit-Thread: {TB}", when=BASE_TIME + 600)
    add_note(repo, c["lines"], make_note(
        c["lines"], TB, prompts=[{"step": f"{TB}.1", "text": ASK_B}],
        files={"wordcount.py": [[8, 11, f"{TB}.3"]]},
        steps={f"{TB}.3": {"seq": 3, "kind": "tool_call", "tool": "Edit",
                           "input": {"file_path": "wordcount.py", "old_string": "def main", "new_string": COUNT_LINES},
                           "why": LINES_WHY, "prompt": f"{TB}.1", "result": "updated", "is_error": False}}))

    # 4. TC: squashed, so the DB has it bound to the commit's old SHA; the trailer names it.
    flagged = WORDCOUNT_V2.replace("    argv = sys.argv[1:] if argv is None else argv\n",
                                   "    argv = sys.argv[1:] if argv is None else argv\n"
                                   "    lines = \"--lines\" in argv\n")
    c["flag"] = commit_files(repo, {"wordcount.py": flagged},
                             f"Add a --lines flag (#12)\n\nLit-Thread: {TC}", when=BASE_TIME + 900)
    add_db_thread(db_path, thread=TC, commit="0f" * 20, repo_root=str(repo), started_at=BASE_TIME + 700,
                  session="e5e5e5e5e5e5", model="claude-opus-4-1", steps=[
        {"kind": "prompt", "text": ASK_C},
        {"kind": "thinking", "text": WHY_FLAG},
        {"kind": "tool_call", "tool_name": "edit_file", "tool_use_id": "toolu_C3",
         "tool_input": {"path": "wordcount.py", "old_string": "argv\n", "new_string": "argv\n    lines = ...\n"}},
        {"kind": "tool_result", "tool_use_id": "toolu_C3", "text": "edited wordcount.py"},
        {"kind": "tool_call", "tool_name": "run_shell", "tool_use_id": "toolu_C5",
         "tool_input": {"command": "ruff check . && python -m pytest -q 2>&1 | tail -3"}},
        {"kind": "tool_result", "tool_use_id": "toolu_C5", "text": "exit code 0\nAll checks passed!\n4 passed"},
    ], line_map={})

    # 5. TD: nothing but the trailer.
    c["script"] = commit_files(repo, {"wordcount.py": flagged + "\n\nif __name__ == \"__main__\":\n    main()\n"},
                               f"Run main() as a script\n\nLit-Thread: {TD}", when=BASE_TIME + 1200)
    return c


def _insert(text: str, line: int, block: str) -> str:
    lines = text.splitlines(keepends=True)
    return "".join(lines[:line]) + block + "".join(lines[line:])


@pytest.fixture
def feature(tmp_path: Path, monkeypatch) -> tuple[Path, Path, dict[str, str]]:
    db_path = tmp_path / "lit.db"
    monkeypatch.setenv("LIT_DB", str(db_path))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    repo = tmp_path / "repo"
    return repo, db_path, build_feature(repo, db_path)


def lit(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """`python -m lit ARGS` in its own process, as a user runs it."""
    full_env = {**os.environ, **env}
    return subprocess.run([sys.executable, "-m", "lit", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=60)


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(monkeypatch, capsys):
    """The same entry point in this process (a second each saved on a busy 2-core machine)."""

    def run(args: list[str], cwd: Path, **env: str) -> Run:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", ["lit", *args])
        capsys.readouterr()
        code = 0
        try:
            main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else int(e.code is not None)
        out, err = capsys.readouterr()
        return Run(code, out, err)

    return run


# --- golden outputs -------------------------------------------------------------------------------------


def test_markdown_matches_golden(feature):
    repo, _, c = feature
    run = lit(["pr", "main..feature", "--weave-dir", WEAVE_URL], cwd=repo)
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    _golden("pr_feature.md", run.stdout)
    md = run.stdout
    # What a reviewer checks in it, beyond "it did not change":
    assert md.startswith("# Write wordcount.py: print the number of words in each file given on the command line\n")
    assert "- failed: `python -m pytest -q` (exit code 1)\n- passed: `python -m pytest -q`" in md
    assert "git commit" not in md  # not a test or build command
    assert "harness text" not in md
    assert "### 2. Fix a typo in README" in md and "No thread: not recorded by lit." in md
    assert "- `README.md` +1 -1" in md
    assert f"[woven page]({WEAVE_URL}/lit-weave-{c['write'][:8]}.html)" in md
    assert "### 4. Add a --lines flag (#12) (`" in md  # the subject's own link to this repository's #12
    assert "ruff check . && python -m pytest -q 2>&1 | tail -3" in md
    assert "Not known: the note holds only the steps" in md  # TB, note only
    assert "Not known: lit has no record of this thread here." in md  # TD


def test_json_matches_golden(feature, cli):
    repo, _, c = feature
    run = cli(["pr", "main..feature", "--format", "json"], cwd=repo)
    assert run.returncode == 0, run.stderr
    _golden("pr_feature.json", run.stdout)
    data = json.loads(run.stdout)
    assert [x["sha"] for x in data["commits"]] == [c["write"], c["typo"], c["lines"], c["flag"], c["script"]]
    assert [x["source"] for x in data["commits"]] == ["db", None, "note", "db", "trailer"]
    a = data["commits"][0]
    assert [(x["status"], x["exit_code"]) for x in a["checks"]] == [("failed", 1), ("passed", None)]
    assert a["verdict"] == "passed"
    assert a["prompts"] == [ASK_A]
    # The step that wrote the most lines comes first; "Now let me run the tests." is no decision.
    assert a["decisions"] == [WRITE_WHY.split(". ")[0] + ".", EDIT_WHY.split(". ")[0] + "."]
    assert {f["path"]: (f["added"], f["deleted"]) for f in a["files"]} == {
        "wordcount.py": (12, 0), "tests/test_wordcount.py": (5, 0)}
    flag = data["commits"][3]
    assert flag["threads"] == [TC] and flag["models"] == ["claude-opus-4-1"]
    assert flag["decisions"] == [WHY_FLAG.split(". ")[0] + "."]  # no line map here: the writing call
    assert flag["checks"][0]["status"] == "passed" and flag["checks"][0]["exit_code"] == 0
    assert run.stdout == cli(["pr", "main..feature", "--json"], cwd=repo).stdout


def test_a_clone_with_only_the_notes(feature, tmp_path, monkeypatch, cli):
    """Without the DB, TA is read from its note: the same prompts and the writing step's decision,
    and verification is said to be unknown rather than invented."""
    repo, _, _ = feature
    run = cli(["pr", "main..feature", "--db", str(tmp_path / "none.db")], cwd=repo)
    assert run.returncode == 1 and run.stderr.startswith("lit: no lit DB at") and "Traceback" not in run.stderr
    monkeypatch.setenv("LIT_DB", str(tmp_path / "absent.db"))  # no DB at all: notes only, no error
    d = pr.describe("main..feature", cwd=repo)
    a = d.commits[0]
    assert a.source == "note" and a.prompts == [ASK_A] and a.checks == [] and not a.checks_known
    assert a.decisions == [WRITE_WHY.split(". ")[0] + "."]
    assert [r.source for r in d.commits] == ["note", None, "note", "trailer", "trailer"]


# --- ranges ------------------------------------------------------------------------------------------------


def test_default_range_is_the_upstream_else_main(feature, cli):
    repo, _, c = feature
    explicit = cli(["pr", "main..HEAD"], cwd=repo).stdout
    assert cli(["pr"], cwd=repo).stdout == explicit  # no upstream: main..HEAD
    git(repo, "branch", "-q", "tracked", c["lines"])  # a local branch as upstream, at commit 3
    git(repo, "branch", "-q", "--set-upstream-to", "tracked")
    d = pr.describe(None, cwd=repo)
    assert d.range == "@{upstream}..HEAD"
    assert [r.sha for r in d.commits] == [c["flag"], c["script"]]
    # This branch's own copy on a remote is not the base of its pull request: main still is.
    remote = repo.parent / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "-u", "origin", "feature")
    assert pr.describe(None, cwd=repo).range == "main..HEAD"
    # One revision R means R..HEAD.
    assert [r.sha for r in pr.describe(c["lines"], cwd=repo).commits] == [c["flag"], c["script"]]


def test_no_base_branch_or_empty_range_is_one_line(tmp_path, cli):
    repo = init_repo(tmp_path / "r")
    git(repo, "checkout", "-q", "-b", "trunk")
    commit_files(repo, {"a.txt": "a\n"}, "A")
    run = lit(["pr"], cwd=repo)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr == ("lit: no upstream branch, main or master to compare with: "
                          "name a range, e.g. lit pr origin/dev..HEAD\n")
    run = cli(["pr", "HEAD..HEAD"], cwd=repo)
    assert run.returncode == 1 and run.stderr == "lit: HEAD..HEAD: no commits in this range\n"
    run = cli(["pr", "nosuch..HEAD"], cwd=repo)
    assert run.returncode == 1 and run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    run = cli(["pr", "--format", "yaml", "HEAD~0"], cwd=repo)
    assert run.returncode == 1 and run.stderr == "lit: --format yaml: use markdown or json\n"


def test_weave_dir_writes_the_missing_pages_and_links_them(feature):
    repo, _, c = feature
    d = pr.describe("main..feature", cwd=repo, weave_dir="pages")
    linked = {r.sha: r.weave for r in d.commits}
    assert linked[c["typo"]] is None  # no thread, no page
    assert linked[c["write"]] == f"pages/lit-weave-{c['write'][:8]}.html"
    page = repo / "pages" / f"lit-weave-{c['write'][:8]}.html"
    assert page.exists() and "count_words" in page.read_text()
    assert sorted(p.name for p in (repo / "pages").iterdir()) == sorted(
        f"lit-weave-{c[k][:8]}.html" for k in ("write", "lines", "flag", "script"))


# --- what counts as verification --------------------------------------------------------------------------


@pytest.mark.parametrize("command, expected", [
    ("python -m pytest -q", True), ("pytest tests/test_a.py -x", True), ("cd app && npm test", True),
    ("npm run build", True), ("make", True), ("make -C src check", True), ("cargo test --all", True),
    ("go test ./...", True), ("ruff check .", True), ("mypy src", True), ("tox -e py312", True),
    ("uv run pytest", True), (".venv/bin/pytest -q", True), ("./gradlew test", True),
    ("git status", False), ("ls tests", False), ("cat Makefile", False), ("npm install", False),
    ("echo pytest-is-great > notes.txt", False), ("grep -r mypy .", False), ("FOO=1 timeout 60 pytest", True),
    ("python manage.py test", True), ("python tests/runtests.py", True), ("pip install pytest", False),
    ("git commit -m 'make tests pass'", False), ("(cd web && npx jest)", True),
])
def test_which_commands_are_checks(command, expected):
    assert pr.is_check(command) is expected


@pytest.mark.parametrize("result, is_error, expected", [
    ("3 passed in 0.04s", False, ("passed", None)),
    ("Exit code 1\nerror: boom", True, ("failed", 1)),
    ("exit code 2\nusage", False, ("failed", 2)),  # examples/agent.py's run_shell: no is_error
    ("exit code 0\nok", False, ("passed", 0)),
    ("====== 1 failed, 3 passed in 0.2s ======", False, ("failed", None)),  # `pytest | tail` exits 0
    (None, False, ("unknown", None)),
])
def test_check_status(result, is_error, expected):
    assert pr.check_status(result, is_error) == expected


def test_hostile_text_is_inert_in_the_body(tmp_path, monkeypatch):
    monkeypatch.setenv("LIT_DB", str(tmp_path / "lit.db"))
    repo = init_repo(tmp_path / "r")
    commit_files(repo, {"a.txt": "a\n"}, "A")
    git(repo, "checkout", "-q", "-b", "f")
    sha = commit_files(repo, {"b.txt": "b\n"}, f"B <img src=x onerror=alert(1)>\n\nLit-Thread: {TA}")
    ask = "cc @octocat, fix #7 and <script>alert(1)</script>; keep `a < b` as is"
    add_note(repo, sha, make_note(sha, TA, prompts=[{"step": f"{TA}.1", "text": ask}],
                                  files={"b.txt": [[1, 1, f"{TA}.2"]]},
                                  steps={f"{TA}.2": {"seq": 2, "kind": "tool_call", "tool": "Write",
                                                     "input": {"file_path": "b.txt", "content": "b\n"},
                                                     "why": "Ping @team about </details> here.", "prompt": None}}))
    md = pr.to_markdown(pr.describe("main..f", cwd=repo))
    assert "<script>" not in md and "<img" not in md and "</details>" not in md
    assert "@octocat" not in md and "@&#8203;octocat" in md and "@&#8203;team" in md
    assert "fix #&#8203;7" in md
    assert "`a < b`" in md  # code spans stay as written: markdown shows them literally


# --- the 65,536 characters -------------------------------------------------------------------------------


def _fast_import_range(repo: Path, n: int, *, prompt_chars: int, why_chars: int, subject_chars: int = 40) -> None:
    """n commits on `feature` after `main`, each with a note (prompts and reasoning of the sizes
    given), in one `git fast-import`: thousands of commits in well under a second."""
    out = []
    ident = f"Lit Agent <agent@example.com> {BASE_TIME} +0000"
    for i in range(1, n + 1):
        content = f"line {i}\n" * 3
        message = f"Change {i}: " + "x" * subject_chars + f"\n\nLit-Thread: {i:012x}\n"
        out += [f"commit refs/heads/feature\nmark :{i}\ncommitter {ident}\ndata {len(message.encode())}\n{message}"]
        if i == 1:
            out.append("from refs/heads/main^0\n")
        out.append(f"M 100644 inline f{i % 7}.txt\ndata {len(content)}\n{content}\n")
    out.append(f"commit refs/notes/lit\ncommitter {ident}\ndata 6\nnotes\n")
    for i in range(1, n + 1):
        tid = f"{i:012x}"
        note = make_note("", tid, prompts=[{"step": f"{tid}.1", "text": f"Prompt {i}. " + "p" * prompt_chars},
                                           {"step": f"{tid}.4", "text": "Then more. " + "q" * prompt_chars}],
                         files={f"f{i % 7}.txt": [[1, 3, f"{tid}.{s}"] for s in (2, 3, 5)]},
                         steps={f"{tid}.{s}": {"seq": s, "kind": "tool_call", "tool": "Write", "input": {},
                                               "why": f"Reason {s} of {i}. " + "w" * why_chars}
                                for s in (2, 3, 5)})
        data = json.dumps(note)
        out.append(f"N inline :{i}\ndata {len(data.encode())}\n{data}\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input="".join(out).encode(), check=True)


def test_long_range_is_trimmed_reasoning_first(tmp_path, monkeypatch):
    monkeypatch.setenv("LIT_DB", str(tmp_path / "lit.db"))
    repo = init_repo(tmp_path / "r")
    commit_files(repo, {"a.txt": "a\n"}, "A")
    _fast_import_range(repo, 60, prompt_chars=1500, why_chars=2000)
    d = pr.describe("main..feature", cwd=repo)
    assert len(d.commits) == 60 and all(r.source == "note" for r in d.commits)
    md = pr.to_markdown(d)
    assert len(md) <= pr.GITHUB_LIMIT
    assert "_Trimmed to fit GitHub's 65,536 characters: reasoning" in md
    assert md.count("\n### ") == 60  # every commit still has its section, with its files
    assert all(f"Change {i}: " in md for i in range(1, 61))
    assert len(pr.to_markdown(d, limit=10**7)) > pr.GITHUB_LIMIT  # it did need trimming
    assert "Trimmed" not in pr.to_markdown(d, limit=10**7)


def test_huge_range_lists_subjects_then_cuts(tmp_path, monkeypatch, cli):
    monkeypatch.setenv("LIT_DB", str(tmp_path / "lit.db"))
    repo = init_repo(tmp_path / "r")
    commit_files(repo, {"a.txt": "a\n"}, "A")
    _fast_import_range(repo, 1200, prompt_chars=10, why_chars=10, subject_chars=60)
    run = cli(["pr", "main..feature"], cwd=repo)
    assert run.returncode == 0, run.stderr
    assert len(run.stdout) <= pr.GITHUB_LIMIT
    assert "commits listed by subject only" in run.stdout
    assert "- and " in run.stdout and " more commits" in run.stdout
    assert "Change 1: " in run.stdout


# --- --llm ----------------------------------------------------------------------------------------------------


def test_llm_writes_the_summary_from_a_cached_digest(feature, upstream):
    repo, _, _ = feature
    answer = "Adds `wordcount.py`, a small wc -w with a --lines flag; pytest went from 1 failure to passing."
    upstream.replies = [text_message(answer)]
    run = lit(["pr", "main..feature", "--llm", "--model", "claude-haiku-4-5"], cwd=repo,
              ANTHROPIC_BASE_URL=upstream.url, ANTHROPIC_API_KEY=FAKE_KEY)
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    assert answer in run.stdout
    assert "Summary written by claude-haiku-4-5 from the threads" in run.stdout
    assert "### 1. Add wordcount.py" in run.stdout  # the record follows the summary
    (sent,) = [r for r in upstream.requests if r["path"] == "/v1/messages"]
    headers = {k.lower(): v for k, v in sent["headers"].items()}
    assert FAKE_KEY in (headers.get("x-api-key"), headers.get("authorization", "").removeprefix("Bearer "))
    body = sent["json"]
    assert body["model"] == "claude-haiku-4-5"
    instructions, digest = body["system"]
    assert "cache_control" not in instructions
    assert digest["cache_control"] == {"type": "ephemeral"}
    for text in (ASK_A, ASK_B, ASK_C, WRITE_WHY, EDIT_WHY, "Fix a typo in README",
                 "python -m pytest -q -> failed (exit code 1)"):
        assert text in digest["text"]
    assert "harness text" not in digest["text"]
    assert body["messages"] == [{"role": "user", "content": "Write the summary of this pull request."}]


def test_llm_default_model_and_json(feature, upstream, monkeypatch):
    repo, _, _ = feature
    upstream.replies = [text_message("Summary from the model.")]
    monkeypatch.setenv("ANTHROPIC_BASE_URL", upstream.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    d = pr.describe("main..feature", cwd=repo)
    assert pr.llm_summary(d) == "Summary from the model."
    assert upstream.requests[-1]["json"]["model"] == pr.DEFAULT_MODEL == "claude-sonnet-4-6"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("case", ["down", "no key", "401", "529"])
def test_llm_failure_prints_the_deterministic_description(feature, upstream, case, cli):
    repo, _, _ = feature
    env = {"ANTHROPIC_BASE_URL": upstream.url, "ANTHROPIC_API_KEY": FAKE_KEY}
    if case == "down":
        env["ANTHROPIC_BASE_URL"] = f"http://127.0.0.1:{_closed_port()}"
    elif case == "no key":
        env.pop("ANTHROPIC_API_KEY")
    else:
        status = int(case)
        kind = {401: "authentication_error", 529: "overloaded_error"}[status]
        upstream.replies = lambda body: {"status": status, "body": {
            "type": "error", "error": {"type": kind, "message": f"scripted {kind}"}}}
    run = cli(["pr", "main..feature", "--llm"], cwd=repo, **env)
    assert run.returncode == 0
    assert run.stdout == pr.to_markdown(pr.describe("main..feature", cwd=repo))  # as without --llm
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    assert lines[0].startswith("lit: --llm failed: ") and lines[0].endswith("; printing the deterministic description")
    expected = {"down": "cannot reach http://127.0.0.1:", "no key": "ANTHROPIC_API_KEY is not set",
                "401": "the API answered 401", "529": "the API answered 529"}[case]
    assert expected in lines[0]
    if case in ("401", "529"):
        assert "scripted" in lines[0]  # the API's own message, for the user to act on


def test_plain_markdown_golden(feature, cli):
    """The description without --weave-dir or --llm (what the --llm failures must print)."""
    repo, _, _ = feature
    _golden("pr_feature_plain.md", cli(["pr", "main..feature"], cwd=repo).stdout)


# --- how it was verified, and what a decision is (issue 18) ---------------------------------------------


def test_a_suite_is_judged_by_its_last_run_whatever_its_flags():
    from lit.pr import Check, CommitReport

    def report(*runs: tuple[str, str]) -> CommitReport:
        return CommitReport("0" * 40, "s", checks=[Check(c, st, None, "t.1", "t") for c, st in runs])

    assert report(("python -m unittest", "failed"), ("python -m unittest -v", "passed")).verdict == "passed"
    assert report(("pytest -q", "passed"), ("pytest -x --tb=short", "failed")).verdict == "failed"
    # two suites: the other one's failure still counts
    assert report(("pytest tests/a.py", "failed"), ("pytest tests/b.py", "passed")).verdict == "failed"
    assert report(("ruff check .", "failed"), ("python -m unittest", "passed")).verdict == "failed"


def test_a_checks_outcome_is_not_a_key_decision():
    from lit.pr import key_sentence

    assert key_sentence("The columns line up and the total is right. Now the README: a short section "
                        "with usage, after the existing text.") == (
        "Now the README: a short section with usage, after the existing text.")
    assert key_sentence("All four pass. Let me commit.") == "All four pass."  # nothing better: the first
    assert key_sentence("Tests pass, so I'll keep the parser as it is.") == (
        "Tests pass, so I'll keep the parser as it is.")  # says what to do: a decision
    assert key_sentence("Counting newline characters matches what `wc -l` reports. I'll add it.") == (
        "Counting newline characters matches what `wc -l` reports.")
