"""lit blame on a real repository: lines attributed from notes, from the DB, from trailers, and as
plain git blame; followed through later commits, renames and a fresh clone with only the notes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from lit_fixtures import T1, T2, T3, add_note, build_story, commit_files, git, make_note, on_a_terminal
from typer.testing import CliRunner

from lit import blame as blame_module
from lit import threads
from lit.cli import app
from lit.git import notes


def by_text(lines):
    return {bl.text.strip(): bl for bl in lines if bl.text.strip()}


def test_each_line_gets_its_step_from_note_db_or_trailer(story):
    lines = blame_module.blame("wordcount.py").lines
    got = by_text(lines)
    # From T1's note: the Edit wrote line 5 of that commit; the Write the rest; a person line 13.
    edit = got["return len(text.split())"]
    assert (edit.kind, edit.thread, edit.step, edit.tool) == ("step", T1, story.steps["edit"], "Edit")
    assert edit.why == "Splitting on a single space counts runs of spaces as words."
    assert got["def main(argv=None):"].step == story.steps["write"]
    # Followed through the later insertion: line 13 of the first commit is now line 17.
    human = got["# checked by hand on a 3 MB file"]
    assert (human.kind, human.thread, human.step, human.line, human.orig_line) == ("human", T1, None, 17, 13)
    # From the DB (this commit has no note).
    lines_step = got['return text.count("\\n")']
    assert (lines_step.kind, lines_step.thread, lines_step.step) == ("step", T2, story.steps["lines"])
    assert lines_step.why == "Counting newline characters matches what `wc -l` reports."
    # Only a trailer: the thread, no step.
    tail = got["main()"]
    assert (tail.kind, tail.thread, tail.step) == ("thread", T3, None)


def test_terminal_view_groups_lines_and_says_why_once(story):
    out = blame_module.render(blame_module.blame("wordcount.py").lines, color=False, width=100)
    assert out.count("Splitting on a single space counts runs of spaces as words.") == 1
    assert out.count("Counting newline characters") == 1
    # The Write's lines are cut by the Edit's line 5 and by T2's inserted lines: three groups.
    assert out.count(f"{T1} step 3 Write") == 3
    assert f"human (Lit Agent, thread {T1})" in out
    assert f"thread {T3} (only its trailer: no note, not in the DB)" in out
    assert all(len(line) <= 100 for line in out.splitlines() if "step" in line and "│" not in line)
    assert "\x1b[" not in out
    coloured = blame_module.render(blame_module.blame("wordcount.py").lines, color=True, width=100)
    assert "\x1b[33m" in coloured


def test_ordinary_commit_lines_look_like_git_blame(story):
    out = CliRunner().invoke(app, ["blame", "app.py"])
    assert out.exit_code == 0, out.output
    short = story.commits["person"][:8]
    assert f"{short} (Ann Person 2026-11-27)" in out.output
    assert "def hello():" in out.output and "step" not in out.output


def test_line_range_rev_and_json_schema(story):
    out = CliRunner().invoke(app, ["blame", "wordcount.py", "-L", "5,5", "--rev", story.commits["write"], "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert rows == [{
        "line": 5, "commit": story.commits["write"], "path": "wordcount.py", "orig_line": 5, "thread": T1,
        "step": story.steps["edit"], "kind": "step", "tool": "Edit", "model": "claude-sonnet-4-6",
        "why": "Splitting on a single space counts runs of spaces as words.", "source": "note",
        "author": "Lit Agent", "author_time": "2026-11-28T19:40:00Z", "text": "    return len(text.split())"}]


def test_full_shows_prompt_reasoning_and_call(story):
    out = CliRunner().invoke(app, ["blame", "wordcount.py", "-L", "5,5", "--full"])
    assert out.exit_code == 0, out.output
    assert "prompt: Write wordcount.py: print the number of words" in out.output
    assert "which is what `wc -w` does." in out.output  # the whole reasoning, not its first sentence
    assert "call Edit:" in out.output and '"new_string": "len(text.split())"' in out.output


def test_notes_alone_in_a_fresh_clone(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("LIT_DB", str(tmp_path / "no-such.db"))
    story = build_story(tmp_path / "origin")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(story.repo), str(clone))
    assert notes.read_many(None, clone) == {}  # notes are not cloned by default
    git(clone, "fetch", "-q", "origin", "refs/notes/lit:refs/notes/lit")
    got = by_text(blame_module.blame("wordcount.py", cwd=clone).lines)
    assert got["return len(text.split())"].step == story.steps["edit"]
    assert got["# checked by hand on a 3 MB file"].kind == "human"
    # No DB: the DB-only thread is still named by its trailer.
    assert (got['return text.count("\\n")'].kind, got['return text.count("\\n")'].thread) == ("thread", T2)


def test_follows_a_rename(story):
    git(story.repo, "mv", "wordcount.py", "wc.py")
    git(story.repo, "commit", "-q", "-m", "Rename to wc.py")
    got = by_text(blame_module.blame("wc.py").lines)
    assert got["return len(text.split())"].step == story.steps["edit"]
    assert got["return len(text.split())"].orig_path == "wordcount.py"


def test_uncommitted_lines_and_foreign_notes(story):
    (story.repo / "wordcount.py").write_text((story.repo / "wordcount.py").read_text() + "# wip\n")
    # A note that is not lit's JSON (someone's hand-written note) is ignored, not an error.
    c = commit_files(story.repo, {"other.py": "x = 1\n"}, "Other")
    git(story.repo, "notes", "--ref=lit", "add", "-m", "just a remark", c)
    got = by_text(blame_module.blame("wordcount.py").lines)
    assert got["# wip"].kind == "uncommitted"
    assert by_text(blame_module.blame("other.py").lines)["x = 1"].kind == "commit"


def test_terminal_escapes_in_a_note_are_not_printed(story):
    c = commit_files(story.repo, {"evil.py": "a = 1\n"}, "Evil")
    add_note(story.repo, c, make_note(c, T3, files={"evil.py": [[1, 1, f"{T3}.2"]]}, prompts=[], steps={
        f"{T3}.2": {"seq": 2, "kind": "tool_call", "tool": "Write", "input": {},
                    "why": "Retitle \x1b]0;pwned\x07the terminal\x1b[2J. Then more."}}))
    out = blame_module.render(blame_module.blame("evil.py").lines, color=False, width=120)
    assert "\x1b" not in out and "\x07" not in out
    assert "Retitle the terminal." in out  # whole sequences go, not only their ESC


def test_piped_cli_is_plain_and_errors_are_one_line(story):
    env = {**os.environ, "COLUMNS": "90"}
    env.pop("NO_COLOR", None)
    ok = subprocess.run([sys.executable, "-m", "lit", "blame", "wordcount.py", "-L", "1,6"], capture_output=True,
                        text=True, cwd=story.repo, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "\x1b[" not in ok.stdout and "Splitting on a single space" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "lit", "blame", "missing.py"], capture_output=True, text=True,
                         cwd=story.repo, env=env)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    assert "missing.py" in bad.stderr


def test_a_named_db_that_does_not_exist_is_an_error(story, tmp_path):
    out = CliRunner().invoke(app, ["blame", "wordcount.py", "--db", str(tmp_path / "typo.db")])
    assert out.exit_code == 1
    assert "no lit DB at" in str(out.exception) or "no lit DB at" in out.output


def test_colour_on_a_terminal_unless_no_color(story):
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    coloured = on_a_terminal(["blame", "wordcount.py", "-L", "5,5"], story.repo, env)
    assert "\x1b[33m" in coloured and "Splitting on a single space" in coloured
    plain = on_a_terminal(["blame", "wordcount.py", "-L", "5,5"], story.repo, {**env, "NO_COLOR": "1"})
    assert "\x1b[" not in plain and "Splitting on a single space" in plain


def test_a_note_written_by_lit_git_notes_reads_back(story, tmp_path, monkeypatch):
    """The writer's side of the contract: the note lit's post-commit hook writes for the DB-only
    thread (lit.threads.note_for_commit + lit.git.notes.write) is enough for blame once the DB is gone."""
    from lit import store

    db = store.connect(story.db_path)
    notes.write(story.repo, story.commits["lines"], threads.note_for_commit(db, T2, story.commits["lines"]))
    db.conn.close()
    assert notes.read(story.repo, story.commits["lines"]).thread == T2
    monkeypatch.setenv("LIT_DB", str(tmp_path / "gone.db"))
    got = by_text(blame_module.blame("wordcount.py").lines)
    line = got['return text.count("\\n")']
    assert (line.kind, line.step, line.source) == ("step", story.steps["lines"], "note")
    assert line.why == "Counting newline characters matches what `wc -l` reports."


def test_a_damaged_db_is_one_line(story, tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_text("this is not a database\n" * 100)
    proc = subprocess.run([sys.executable, "-m", "lit", "blame", "app.py", "--db", str(bad)], capture_output=True,
                          text=True, cwd=story.repo)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "lit DB" in proc.stderr


def test_git_blame_started_before_the_imports_is_used_only_for_the_same_call(story):
    from lit import prefetch

    expected = [(bl.line, bl.step, bl.kind) for bl in blame_module.blame("wordcount.py").lines]
    # `lit blame wordcount.py`: git blame starts at once, and blame() takes that very process.
    prefetch.start(["blame", "wordcount.py"])
    started = prefetch._pending[2]
    assert [(bl.line, bl.step, bl.kind) for bl in blame_module.blame("wordcount.py").lines] == expected
    assert started.returncode == 0 and prefetch._pending is None
    # Started for one call, asked for another: the early process is stopped unused and the
    # answer is the one asked for.
    prefetch.start(["blame", "no-such-file.py"])
    started = prefetch._pending[2]
    assert [(bl.line, bl.step, bl.kind) for bl in blame_module.blame("wordcount.py").lines] == expected
    assert started.returncode is not None and prefetch._pending is None
    # Options that change the call, or --help, start nothing.
    for argv in (["blame", "wordcount.py", "-L", "1,2"], ["blame", "--rev", "HEAD~1", "wordcount.py"],
                 ["blame", "--help"], ["blame", "wordcount.py", "--db", "x.db"], ["weave", "HEAD"]):
        prefetch.start(argv)
        assert prefetch._pending is None, argv

