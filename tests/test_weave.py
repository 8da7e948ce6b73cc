"""lit weave on a real repository: the page's rows, links and header, from a note, from the DB and
for a range; hostile prompts and code run nothing; the page fetches nothing."""

from __future__ import annotations

import os
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from lit_fixtures import T1, T2, T3, add_note, build_story, commit_files, git, make_note
from typer.testing import CliRunner

from lit import weave as weave_module
from lit.cli import app
from lit.paths import weave_dir

HOSTILE = ("<script>alert('prompt')</script> [click me](javascript:alert(1)) [data](data:text/html,<b>x</b>) "
           "<img src=x onerror=alert(2)> <a href=\"javascript:alert(3)\">a</a> ![t](http://evil.example/t.png) "
           "<javascript:alert(6)> [y](JaVaScRiPt:alert(7)) [z](java&#x09;script:alert(8)) "
           "<div><b>unclosed <style>body{display:none}</style>")


class Page(HTMLParser):
    """The elements of a page, as a browser's parser sees them."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.ids: set[str] = set()
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        d = {k: v or "" for k, v in attrs}
        self.tags.append((tag, d))
        if "id" in d:
            self.ids.add(d["id"])

    def handle_data(self, data):
        self.text.append(data)

    def hrefs(self) -> list[str]:
        return [a["href"] for t, a in self.tags if t == "a" and "href" in a]

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def weave_page(target: str, tmp_path, **kw) -> tuple[str, Page]:
    path = weave_module.weave(target, tmp_path / "page.html", **kw)
    html = path.read_text()
    return html, Page(html)


def test_commit_page_rows_links_and_header(story, tmp_path):
    html, page = weave_page(story.commits["write"], tmp_path)
    text = page.all_text
    for expected in (story.commits["write"], "Add wordcount.py, a small wc -w", T1, "claude-cli/2.1.197",
                     "claude-sonnet-4-6", "18,234 in, 1,620 out", "12 min 10 s", "the note in refs/notes/lit"):
        assert expected in text
    write, edit = story.steps["write"], story.steps["edit"]
    # Each step its own anchor, in thread order: the prompt, the Write, the Edit, then the person.
    rows = [a["id"] for t, a in page.tags if t == "section"]
    assert rows == [f"step-{story.steps['prompt']}", f"step-{write}", f"step-{edit}", "human-c0"]
    # Line 5 (the Edit's) links to its step, and the step links back to the line.
    line5 = next(a for t, a in page.tags if a.get("id") == "c0-f0-L5")
    assert line5["class"] == "w-l w-add"
    assert f"#step-{edit}" in page.hrefs() and "#c0-f0-L5" in page.hrefs()
    assert html.index('id="c0-f0-L5"') > html.index(f'id="step-{edit}"')
    # The person's line is marked and sits in the person's row.
    line13 = next(a for t, a in page.tags if a.get("id") == "c0-f0-L13")
    assert "w-hum" in line13["class"] and html.index('id="c0-f0-L13"') > html.index('id="human-c0"')
    # Every in-page link has its target; the file index points at the file's first lines.
    assert "#c0-f0" in page.hrefs()
    assert all(h[1:] in page.ids for h in page.hrefs() if h.startswith("#"))
    # Markdown rendered, code highlighted.
    assert "<code>count_words()</code>" in html and '<span class="kn">import</span>' in html


def test_the_page_fetches_nothing_and_runs_nothing(story, tmp_path):
    html, page = weave_page(f"{story.commits['person']}..HEAD", tmp_path)
    assert not [t for t, _ in page.tags if t in ("script", "img", "iframe", "link", "object", "embed")]
    assert not [a for _, a in page.tags if "src" in a]
    assert "url(" not in html and "@import" not in html and "http://" not in html.split("<body>")[0]


def test_hostile_prompt_reasoning_and_code_show_as_text(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    story = build_story(tmp_path / "repo", hostile=HOSTILE)
    # Hostile code and a hostile file name and commit message too.
    evil = commit_files(story.repo, {"x<script>.html": "</div></pre><script>alert(4)</script>\n<a onclick=x>\n"},
                        "<script>alert(5)</script> & <b>bold</b>")
    # A hostile note: ids, tool names and models that try to leave their attributes.
    bad_id = 'e.1" onmouseover="alert(9)"><script>alert(9)</script>'
    add_note(story.repo, evil, make_note(evil, '"><script>alert(10)</script>', models=["<script>m</script>"],
                                         files={"x<script>.html": [[1, 2, bad_id]]}, prompts=[], steps={
        bad_id: {"seq": 1, "kind": "tool_call", "tool": "<img src=x onerror=alert(11)>",
                 "input": {"file_path": "\"><script>alert(12)</script>"}, "why": HOSTILE}}))
    monkeypatch.chdir(story.repo)
    html, page = weave_page(f"{story.commits['write']}^..HEAD", tmp_path)
    assert not [t for t, _ in page.tags if t in ("script", "img", "iframe", "object")]
    assert [t for t, _ in page.tags].count("style") == 1  # the page's own stylesheet only
    assert not [(t, k) for t, a in page.tags for k in a if k.lower().startswith("on")]
    assert not [h for h in page.hrefs() if not h.startswith(("#", "http://", "https://"))]
    assert "http://evil.example/t.png" in page.hrefs()  # the image became a plain link...
    assert not [a for _, a in page.tags if "src" in a]  # ...and loads nothing
    assert "<script>alert('prompt')</script>" in page.all_text  # shown as text
    assert "File created successfully at: wordcount.py\n<script>alert('prompt')</script>" in page.all_text
    assert "</div></pre><script>alert(4)</script>" in page.all_text
    assert "<script>alert(5)</script> & <b>bold</b>" in page.all_text
    assert "x<script>.html" in page.all_text
    assert f"step-{bad_id}" in page.ids and "<img src=x onerror=alert(11)>" in page.all_text


def test_from_the_db_when_a_commit_has_no_note(story, tmp_path):
    html, page = weave_page(story.commits["lines"], tmp_path)
    assert "lit's DB" in page.all_text
    assert "Counting newline characters matches what" in page.all_text
    line = next(a for t, a in page.tags if a.get("id") == "c0-f0-L9")
    assert line["class"] == "w-l w-add"
    assert f"#step-{story.steps['lines']}" in page.hrefs()
    assert "Also count lines, like wc -l." in page.all_text  # the prompt
    # How the thread ended: the agent's last text, after its last tool call, is a row too.
    assert "Done: <code>count_lines()</code> is in." in html
    assert html.index("Done: <code>") > html.index(f'id="step-{story.steps["lines"]}"')


def test_the_db_is_preferred_to_the_note_it_has_every_step(story, tmp_path):
    from lit_fixtures import add_db_thread

    c1 = story.commits["write"]
    add_db_thread(story.db_path, thread=T1, commit=c1, session="b0b1c2d3e4f5", steps=[
        {"kind": "prompt", "text": "Write wordcount.py."},
        {"kind": "text", "text": "First, what is there."},
        {"kind": "tool_call", "tool_name": "Bash", "tool_use_id": "toolu_01L", "tool_input": {"command": "ls"}},
        {"kind": "tool_result", "tool_use_id": "toolu_01L", "text": "README.md"},
        {"kind": "tool_call", "tool_name": "Write", "tool_use_id": "toolu_01W",
         "tool_input": {"file_path": "wordcount.py", "content": "..."}},
    ], line_map={"wordcount.py": [[1, 13, f"{T1}.5"]]})
    html, page = weave_page(c1, tmp_path)
    assert "lit's DB" in page.all_text
    assert f"step-{T1}.3" in page.ids  # the Bash call: no lines, not in the note, in the DB
    assert "First, what is there." in page.all_text


def test_thread_ids_resolve_from_the_db_and_from_notes(story, tmp_path, monkeypatch):
    assert weave_module.resolve(T2)[0].commit == story.commits["lines"]
    monkeypatch.setenv("LIT_DB", str(tmp_path / "none.db"))
    from_notes = weave_module.resolve(T1[:6])  # from the notes alone
    assert from_notes[0].commit == story.commits["write"]
    page = Page(weave_module.render_page(from_notes, "t"))
    assert "Splitting on a single space" in page.all_text and "the note in refs/notes/lit" in page.all_text
    with pytest.raises(Exception, match="not a commit, a range"):
        weave_module.resolve(T2)  # no DB and no note: only a trailer, not searchable


def test_a_thread_not_yet_committed(story, tmp_path):
    from lit_fixtures import add_db_thread

    add_db_thread(story.db_path, thread="0123456789ab", commit=None, line_map={}, steps=[
        {"kind": "prompt", "text": "Try a *faster* split."},
        {"kind": "text", "text": "Reading the file first."},
        {"kind": "tool_call", "tool_name": "Read", "tool_use_id": "toolu_01R", "tool_input": {"file_path": "wc.py"}},
    ])
    html, page = weave_page("0123456789ab", tmp_path)
    assert "thread 0123456789ab (not committed)" in page.all_text
    assert "step-0123456789ab.3" in page.ids and "Reading the file first." in page.all_text
    assert "<em>faster</em>" in html


def test_a_range_is_a_book(story, tmp_path):
    html, page = weave_page(f"{story.commits['person']}..HEAD", tmp_path)
    chapters = [a["id"] for t, a in page.tags if t == "article"]
    assert chapters == ["c0", "c1", "c2"]
    assert ["#c0", "#c1", "#c2"] == [h for h in page.hrefs() if h in ("#c0", "#c1", "#c2")][:3]
    assert "3 commits" in page.all_text
    # The trailer-only commit has its thread named, and its lines in a plain row.
    assert T3 in page.all_text and "the Lit-Thread trailer only" in page.all_text
    assert "other-c2" in page.ids


def test_cli_default_name_and_open(story, tmp_path, monkeypatch):
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.py"
    browser.write_text(f"import sys; open({str(opened)!r}, 'w').write(sys.argv[1])\n")
    monkeypatch.setenv("BROWSER", f"{sys.executable} {browser} %s")
    out = CliRunner().invoke(app, ["weave", "HEAD", "--open"])
    assert out.exit_code == 0, out.output
    # Written outside the working tree (git status stays clean), where the output says.
    page = Path(out.output.strip())
    assert page.name == f"lit-weave-{story.commits['tidy'][:8]}.html" and page.exists()
    assert page.parent == weave_dir() and story.repo not in page.parents
    assert git(story.repo, "status", "--porcelain") == ""
    for _ in range(50):  # webbrowser starts the browser in the background
        if opened.exists() and opened.read_text():
            break
        time.sleep(0.05)
    assert opened.read_text() == page.resolve().as_uri()
    bad = CliRunner().invoke(app, ["weave", "no-such-ref"])
    assert bad.exit_code == 1


def test_renames_deletions_and_binary_files(story, tmp_path):
    git(story.repo, "mv", "app.py", "hello app.py")
    git(story.repo, "rm", "-q", "wordcount.py")
    (story.repo / "logo.png").write_bytes(bytes(range(256)))
    git(story.repo, "add", "logo.png")
    git(story.repo, "commit", "-q", "-m", "Shuffle")
    files = {f.name: f for f in weave_module.resolve("HEAD")[0].files}
    assert files["hello app.py"].status == "renamed" and files["hello app.py"].old_path == "app.py"
    assert files["wordcount.py"].status == "deleted" and files["wordcount.py"].removed == 21
    assert files["logo.png"].status == "binary"


def test_a_hunk_is_cut_where_its_owner_changes():
    from lit.weave import OTHER, DiffLine, FileDiff, fragments

    f = FileDiff(0, "a.py", "a.py", "modified")
    f.hunks = [[DiffLine(" ", 1, 1, "ctx"), DiffLine("-", 2, None, "old"), DiffLine("+", None, 2, "new", owner="t.3"),
                DiffLine("+", None, 3, "mine", owner="human"), DiffLine(" ", 3, 4, "ctx2"),
                DiffLine("-", 4, None, "gone")]]
    got = [(fr.owner, [ln.text for ln in fr.lines]) for fr in fragments(f)]
    assert got == [("t.3", ["ctx", "old", "new"]), ("human", ["mine"]), (OTHER, ["ctx2", "gone"])]


@pytest.mark.parametrize("lines", [5000])
def test_big_diff_page_stays_small(tmp_path, monkeypatch, lines):
    monkeypatch.setenv("HOME", str(tmp_path))
    repo = tmp_path / "big"
    from lit_fixtures import init_repo

    init_repo(repo)
    commit_files(repo, {"big.py": "".join(f"value_{i} = {i} * 2  # line {i}\n" for i in range(lines))}, "Big")
    html, page = weave_page("HEAD", tmp_path, cwd=repo)
    assert len(html) < 5_000_000
    assert f"c0-f0-L{lines}" in page.ids
    assert os.path.getsize(tmp_path / "page.html") == len(html.encode())
