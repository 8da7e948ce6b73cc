"""A teammate's note is hostile input: malformed notes through every reader (blame, weave, pr,
relink) and through `lit sync` with a real bare remote. No traceback, no hang, nothing lost; what
is right in a note is read, and which commit's note was bad is said once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lit_fixtures import T1, build_story, commit_files, git, init_repo, make_note

from lit import blame as blame_module
from lit import pr as pr_module
from lit import weave as weave_module
from lit.git import notes, sync

DEEP = "[" * 100_000 + "]" * 100_000


def _t1(**changes) -> str:
    """T1's note (the story's), with some fields replaced, as JSON text."""
    return json.dumps({**_T1_NOTE, **changes})


_T1_NOTE: dict = {}

# name -> (note text, is anything of it still readable)
HOSTILE = {
    "string ranges": (lambda: _t1(files={"wordcount.py": "1-13"}), True),
    "mixed ranges": (lambda: _t1(files={"wordcount.py": [[1, "4", f"{T1}.3"], [5, 5, f"{T1}.6"], ["a", None, None],
                                                         [6, 2, f"{T1}.3"], [7, 7, 7], [8]]}), True),
    "NaN and Infinity": (lambda: _t1(files={"wordcount.py": [[5, 5, f"{T1}.6"]]})
                         .replace('"files": {', '"files": {"x.py": [[NaN, Infinity, "s"]], ')
                         .replace('"input_tokens": 18234', '"input_tokens": -Infinity'), True),
    "files as a list": (lambda: _t1(files=[["wordcount.py", 1, 13, f"{T1}.3"]]), True),
    "steps as a list": (lambda: _t1(steps=[f"{T1}.3", f"{T1}.6"]), True),
    "a step that is a string": (lambda: _t1(steps={f"{T1}.6": "Edit", f"{T1}.3": 7}), True),
    "string prompts": (lambda: _t1(prompts="count the words"), True),
    "prompts of strings": (lambda: _t1(prompts=["count the words", 5]), True),
    "models: 5": (lambda: _t1(models=5, usage="lots", agent=["x"], session=3), True),
    "integer step ids": (lambda: _t1(files={"wordcount.py": [[5, 5, 6], [1, 4, f"{T1}.3"]]},
                                     steps={"6": {"seq": "6", "kind": 6, "why": 6, "input": DEEP[:20] + DEEP[-20:]}}),
                         True),
    "a deep tool input": (lambda: _t1(steps={f"{T1}.6": {"kind": "tool_call", "tool": "Edit",
                                                         "input": json.loads("[" * 500 + "]" * 500)}}), True),
    "100,000-deep JSON": (lambda: DEEP, False),
    "100,000-deep inside a note": (lambda: _t1(files={"wordcount.py": [[5, 5, f"{T1}.6"]]})
                                   .replace('"steps": {', f'"steps": {{"deep": {DEEP}, ', 1), False),
    "a JSON list": (lambda: json.dumps([_T1_NOTE]), False),
    "a JSON string": (lambda: json.dumps("a note"), False),
    "no thread": (lambda: _t1(thread=None), False),
    "not JSON": (lambda: "just a remark", False),
    "bytes that are not UTF-8": (lambda: "\udcff" + _t1(), False),
}


@pytest.fixture
def story(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("LIT_DB", str(tmp_path / "no.db"))
    s = build_story(tmp_path / "repo")  # T1's note, T2 unknown (no DB), T3 a trailer
    monkeypatch.chdir(s.repo)
    _T1_NOTE.clear()
    _T1_NOTE.update(s.notes[s.commits["write"]])
    return s


def write_raw(repo, commit: str, text: str) -> None:
    subprocess.run(["git", "notes", "--ref=lit", "add", "-f", "-F", "-", commit], cwd=repo,
                   input=text.encode("utf-8", "surrogateescape"),
                   check=True, capture_output=True)


@pytest.mark.parametrize("case", list(HOSTILE))
def test_every_reader_reads_a_hostile_note(story, case, capfd):
    text, readable = HOSTILE[case][0](), HOSTILE[case][1]
    c1 = story.commits["write"]
    write_raw(story.repo, c1, text)
    notes._said.clear()
    capfd.readouterr()

    lines = {bl.text.strip(): bl for bl in blame_module.blame("wordcount.py").lines}
    line = lines["return len(text.split())"]
    if readable:  # the thread is still named by the note
        assert (line.thread, line.source) == (T1, "note")
    else:  # the note is ignored: the commit's trailer still names the thread
        assert (line.kind, line.thread, line.source) == ("thread", T1, "trailer")
    blame_module.render(list(lines.values()), full=True, notes=blame_module.blame("wordcount.py").notes)
    chapters = weave_module.resolve(c1)
    weave_module.render_page(chapters, "t")
    desc = pr_module.describe("HEAD~3..HEAD")
    pr_module.to_markdown(desc)
    pr_module.to_json(desc)
    sync.relink(story.repo, None, "HEAD")

    said = [line for line in capfd.readouterr().err.splitlines() if line]
    assert said == [said[0]] and said[0].startswith(f"lit: the note of commit {c1[:12]} in refs/notes/lit is "
                                                    "malformed ("), said  # once, whatever read it
    assert said[0].endswith("read what was right in it" if readable else "ignored it")


def test_what_is_right_in_a_note_is_kept(story, capfd):
    c1 = story.commits["write"]
    write_raw(story.repo, c1, HOSTILE["mixed ranges"][0]())
    note = notes.read(story.repo, c1)
    assert note.files == {"wordcount.py": [notes.Span(5, 5, f"{T1}.6")]}
    assert note.steps[f"{T1}.6"].tool == "Edit" and note.prompts[0].text.startswith("Write wordcount.py")
    write_raw(story.repo, c1, HOSTILE["models: 5"][0]())
    note = notes.read(story.repo, c1)
    assert (note.models, note.usage, note.agent, note.session) == ([], {}, None, None)
    assert note.files["wordcount.py"][1] == notes.Span(5, 5, f"{T1}.6")


@pytest.mark.parametrize("case", ["a JSON list", "100,000-deep JSON", "mixed ranges"])
def test_the_cli_says_one_line_and_no_traceback(story, case):
    write_raw(story.repo, story.commits["write"], HOSTILE[case][0]())
    for args in (["blame", "wordcount.py"], ["blame", "wordcount.py", "--json", "--full"],
                 ["weave", "HEAD~2", "-o", "w.html"], ["pr", "HEAD~3"], ["relink", "HEAD"]):
        out = subprocess.run([sys.executable, "-m", "lit", *args], cwd=story.repo, capture_output=True, text=True,
                             timeout=60, env=dict(os.environ))
        assert out.returncode == 0 and "Traceback" not in out.stderr, (args, out.stderr)
        assert out.stderr.count("is malformed") == 1, (args, out.stderr)


# --- lit sync ---------------------------------------------------------------------------------------------


def lit(args: list[str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lit", *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ))


@pytest.fixture
def team(tmp_path, monkeypatch):
    """alice and bob, clones of one bare remote, one commit (base) both have."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("LIT_DB", str(tmp_path / "no.db"))
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    alice = init_repo(tmp_path / "alice")
    base = commit_files(alice, {"a.py": "a = 1\nb = 2\n"}, "base")
    git(alice, "remote", "add", "origin", str(remote))
    git(alice, "push", "-q", "origin", "main")
    git(tmp_path, "clone", "-q", str(remote), str(tmp_path / "bob"))
    git(tmp_path / "bob", "config", "user.name", "Bob")
    git(tmp_path / "bob", "config", "user.email", "bob@example.com")
    return alice, tmp_path / "bob", base


def good(thread: str, commit: str, step: str | None) -> str:
    return json.dumps(make_note(commit, thread, files={"a.py": [[1, 1, step]]}, prompts=[{"step": f"{thread}.1",
                      "text": f"prompt of {thread}"}], steps={step: {"seq": 2, "kind": "tool_call", "tool": "Write",
                                                                    "input": {}, "why": "because"}} if step else {}))


def blob(repo, ref: str) -> bytes:
    return subprocess.run(["git", "cat-file", "-p", ref], cwd=repo, capture_output=True, check=True).stdout


SYNC_CASES = {
    # name -> (alice's note or None, bob's note)
    "theirs a JSON list, ours fine": (lambda b: good("aaaaaaaaaaaa", b, "aaaaaaaaaaaa.2"), lambda b: "[1, 2]"),
    "theirs deep, ours none": (lambda b: None, lambda b: DEEP),
    "theirs half right, ours fine": (lambda b: good("aaaaaaaaaaaa", b, None),
                                     lambda b: good("bbbbbbbbbbbb", b, "bbbbbbbbbbbb.2").replace(
                                         '"models": [', '"models": 5, "x": [')),
    "both unreadable": (lambda b: "not json", lambda b: "[null]"),
    "ours unreadable, theirs fine": (lambda b: "{", lambda b: good("bbbbbbbbbbbb", b, "bbbbbbbbbbbb.2")),
    "theirs NaN ranges, ours none": (lambda b: None, lambda b: good("bbbbbbbbbbbb", b, "bbbbbbbbbbbb.2").replace(
        "[[1, 1,", "[[NaN, 1,")),
}


@pytest.mark.parametrize("case", list(SYNC_CASES))
def test_sync_validates_a_teammates_notes_and_loses_nothing(team, case):
    alice, bob, base = team
    ours_text, theirs_text = SYNC_CASES[case][0](base), SYNC_CASES[case][1](base)
    if ours_text is not None:
        write_raw(alice, base, ours_text)
    write_raw(bob, base, theirs_text)
    git(bob, "push", "-q", "origin", "refs/notes/lit:refs/notes/lit")

    out = lit(["sync", "origin"], alice)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    git_dir = Path(git(alice, "rev-parse", "--absolute-git-dir"))
    assert not (git_dir / "NOTES_MERGE_PARTIAL").exists() and not (git_dir / "NOTES_MERGE_REF").exists()
    kept = git(alice, "for-each-ref", "--format=%(refname)", "refs/lit/unreadable/").split()
    # bob's note: in alice's notes if it read, else kept byte for byte (and said)
    theirs_problems: list[str] = []
    theirs = notes.decode(theirs_text, theirs_problems)
    if theirs_problems:
        assert f"refs/lit/unreadable/origin/{base}" in kept
        assert blob(alice, f"refs/lit/unreadable/origin/{base}").rstrip(b"\n") == theirs_text.encode()
        assert "refs/lit/unreadable/" in out.stdout
    ours_problems: list[str] = []
    ours = notes.decode(ours_text, ours_problems) if ours_text is not None else None
    final = subprocess.run(["git", "notes", "--ref=lit", "show", base], cwd=alice, capture_output=True).stdout
    if ours is None and theirs is None:
        # never the note `null`: ours stays as it was, or there is none
        assert final == (ours_text.encode() + b"\n" if ours_text is not None else b""), final
    else:
        note = notes.read(alice, base)
        assert note is not None
        if ours is not None:
            assert note.thread == ours.thread
        if theirs is not None and ours is not None:
            assert theirs.thread in note.merged_threads or note.thread == theirs.thread
        if ours is None and ours_text is not None:  # ours unreadable, replaced by theirs, kept aside
            assert blob(alice, f"refs/lit/unreadable/local/{base}").rstrip(b"\n") == ours_text.encode()
    # the next sync (and bob's) works: nothing half done is left behind
    again = lit(["sync", "origin"], alice)
    assert again.returncode == 0, again.stderr
    assert lit(["sync", "origin"], bob).returncode == 0


def test_sync_ends_a_notes_merge_left_half_done(team):
    alice, bob, base = team
    write_raw(alice, base, good("aaaaaaaaaaaa", base, "aaaaaaaaaaaa.2"))
    write_raw(bob, base, good("bbbbbbbbbbbb", base, "bbbbbbbbbbbb.2"))
    git(bob, "push", "-q", "origin", "refs/notes/lit:refs/notes/lit")
    git(alice, "fetch", "-q", "origin", "refs/notes/lit:refs/notes/theirs")
    stuck = subprocess.run(["git", "notes", "--ref=lit", "merge", "-s", "manual", "refs/notes/theirs"], cwd=alice,
                           capture_output=True, text=True)
    assert stuck.returncode != 0  # what an older lit left: a merge in progress
    out = lit(["sync", "origin"], alice)
    assert out.returncode == 0, out.stderr
    note = notes.read(alice, base)
    assert note.thread == "aaaaaaaaaaaa" and note.merged_threads == ["bbbbbbbbbbbb"]
