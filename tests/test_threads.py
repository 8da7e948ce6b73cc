"""lit.threads: one reading of a thread reference for every command (show, export, replay, weave,
serve, pr), on a real repository with a note, a DB thread and a trailer-only thread."""

from __future__ import annotations

import json
import sqlite3
import subprocess

import pytest
from lit_fixtures import LINES_WHY, T1, T2, T3, add_db_thread, lit_in_process

from lit import serve, threads
from lit.errors import LitError


def lit(*args: str, cwd) -> subprocess.CompletedProcess:
    return lit_in_process(list(args), cwd)


def test_show_takes_a_revision_and_a_prefix_of_any_length(story):
    by_rev = lit("show", "HEAD~1", cwd=story.repo)
    assert by_rev.returncode == 0, by_rev.stderr
    assert by_rev.stdout.startswith(f"thread {T2}")
    for ref in (T2, T2[:1], T2[:3], story.commits["lines"], story.commits["lines"][:7], "main~1"):
        out = lit("show", ref, "--json", cwd=story.repo)
        assert out.returncode == 0, (ref, out.stderr)
        assert json.loads(out.stdout)["id"] == T2


def test_a_thread_known_only_from_git_is_said_in_one_line(story):
    head = lit("show", "HEAD", cwd=story.repo)  # T3: only its trailer
    assert head.returncode == 1 and head.stderr.count("\n") == 1
    assert f"thread {T3} is not in the lit DB" in head.stderr and "trailer only" in head.stderr
    noted = lit("show", T1[:4], cwd=story.repo)  # T1: its note
    assert noted.returncode == 1 and "has its note: lit weave and lit blame read it" in noted.stderr
    person = lit("show", "HEAD~3", cwd=story.repo)  # a person's commit
    assert person.returncode == 1 and "has no thread" in person.stderr and "Traceback" not in person.stderr


def test_an_ambiguous_prefix_says_so(story):
    add_db_thread(story.db_path, thread=T2[:3] + "000000000", commit=None, steps=[{"kind": "prompt", "text": "x"}],
                  line_map={}, session="b0b1c2d3e4f5")
    out = lit("show", T2[:3], cwd=story.repo)
    assert out.returncode == 1 and out.stderr.count("\n") == 1
    assert f"'{T2[:3]}' is ambiguous: it starts 2 threads ({T2[:3]}000000000, {T2})" in out.stderr
    assert json.loads(lit("show", T2[:4], "--json", cwd=story.repo).stdout)["id"] == T2


def test_every_command_reads_the_same_references(story, tmp_path):
    # export, weave and pr take HEAD~1 and a short prefix as show does
    exported = lit("export", "HEAD~1", "-o", str(tmp_path / "t.jsonl"), cwd=story.repo)
    assert exported.returncode == 0 and f"thread {T2}" in exported.stderr
    page = lit("weave", T2[:2], "-o", str(tmp_path / "w.html"), cwd=story.repo)
    assert page.returncode == 0, page.stderr
    assert "Add count_lines()" in (tmp_path / "w.html").read_text()
    assert threads.resolve("HEAD~1", db=sqlite3.connect(story.db_path), cwd=story.repo) == threads.Ref(
        T2, story.commits["lines"])
    # serve has no repository: thread ids, prefixes and bound commits from the DB
    conn = sqlite3.connect(story.db_path)
    for ref in (T2, T2[:2], story.commits["lines"][:8]):
        assert serve.thread_page(conn, ref)["thread"]["id"] == T2, ref
    assert serve.thread_page(conn, "HEAD") is None


def test_load_reads_the_db_else_the_note(story):
    db = sqlite3.connect(story.db_path)
    from_db = threads.load(T2, db=db, cwd=story.repo)
    assert from_db.source == "db" and from_db.files["wordcount.py"][0].step == f"{T2}.3"
    assert from_db.steps[f"{T2}.3"].why == LINES_WHY  # the reasoning before the call
    assert from_db.steps[f"{T2}.5"].kind == "text"  # the closing words
    from_note = threads.load(T1, db=db, cwd=story.repo)
    assert from_note.source == "note" and from_note.commit == story.commits["write"]
    with pytest.raises(LitError, match="no thread"):
        threads.load("000000000000", db=db, cwd=story.repo)


def test_a_prefix_reads_only_the_notes_that_name_it(story, capsys):
    # A note written compactly, one whose step (not the note) names a thread "abd…", and a note that
    # is not JSON: a prefix finds the first, not the second, and never reads the third.
    person, tidy = story.commits["person"], story.commits["tidy"]
    compact = {"version": 1, "thread": "abc000000001", "steps": {
        "abd000000002.4": {"seq": 4, "kind": "tool_call", "thread": "abd000000002"}}}
    subprocess.run(["git", "notes", "--ref=lit", "add", "-f", "-m", json.dumps(compact, separators=(",", ":")),
                    person], cwd=story.repo, check=True)
    subprocess.run(["git", "notes", "--ref=lit", "add", "-f", "-m", "not JSON", tidy], cwd=story.repo, check=True)
    assert threads.resolve("abc", cwd=story.repo) == threads.Ref("abc000000001", person)
    assert threads.load("abc000000001", cwd=story.repo).source == "note"
    with pytest.raises(threads.NoThread):
        threads.resolve("abd", cwd=story.repo)
    assert threads.resolve(T1[:2], cwd=story.repo) == threads.Ref(T1, story.commits["write"])
    assert capsys.readouterr().err == ""  # the note that is not JSON was not read, so not complained of
