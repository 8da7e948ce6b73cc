"""`lit pr`'s markdown is inert by construction: whatever a prompt, a model's reasoning, a commit
subject or a teammate's note holds, the rendered body (CommonMark with GitHub's tables and
strikethrough, raw HTML allowed as GitHub allows it) has no image, no raw HTML of theirs, no
link and no @mention or #123 that would notify or cross-reference."""

from __future__ import annotations

import re

import pytest
from lit_fixtures import add_note, commit_files, git, init_repo, make_note
from markdown_it import MarkdownIt

from lit import pr

TA = "abcabcabcabc"
ATTACKS = [
    "see `this\n\n@octocat <img src=x onerror=alert(1)> fixes #5 ![t](https://evil.example/t.png)` ok",
    "![tracker](https://evil.example/pixel.png) and [click](javascript:alert(1)) and <https://evil.example>",
    "<details open><summary>x</summary><script>alert(1)</script></details> &#64;octocat &lt;b&gt;",
    "[ref]: https://evil.example/ref.png\n\n![a][ref] [^1]\n\n[^1]: https://evil.example",
    "``` \n<img src=x>\n```\n\\`@octocat\\` \\<img src=x> \\\\@octocat",
    "| a | b |\n|---|---|\n| <img src=x> | @octocat |\n\n~~#9~~ <!-- hidden -->",
    "    <img src=x> indented @octocat\n> quoted <img src=y> #3\n# heading @octocat #4\n- list <b>x</b>",
]


def render(md: str) -> str:
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(md)


@pytest.fixture
def body(tmp_path, monkeypatch):
    monkeypatch.setenv("LIT_DB", str(tmp_path / "lit.db"))
    repo = init_repo(tmp_path / "r")
    commit_files(repo, {"a.txt": "a\n"}, "A")
    git(repo, "checkout", "-q", "-b", "f")
    for i, attack in enumerate(ATTACKS):
        subject = attack.splitlines()[0]
        sha = commit_files(repo, {f"b{i}.txt": "b\n"}, f"{subject}\n\nLit-Thread: {TA[:-1]}{i}")
        tid = f"{TA[:-1]}{i}"
        add_note(repo, sha, make_note(sha, tid, models=[attack, "claude-sonnet-4-6"],
                                      prompts=[{"step": f"{tid}.1", "text": attack}],
                                      files={f"b{i}.txt": [[1, 1, f"{tid}.2"]]},
                                      steps={f"{tid}.2": {"seq": 2, "kind": "tool_call", "tool": "Write",
                                                          "input": {"file_path": f"b{i}.txt", "content": "b\n"},
                                                          "why": attack.replace("\n", " "), "prompt": f"{tid}.1"}}))
    desc = pr.describe("main..f", cwd=repo)
    desc.summary, desc.summary_model = "\n\n".join(ATTACKS), ATTACKS[0]
    return pr.to_markdown(desc)


def test_the_rendered_body_is_inert(body):
    html = render(body)
    assert "<img" not in html and "<script" not in html and "<details" not in html and "<summary" not in html
    assert "<!--" not in html and "<b>" not in html
    # the only raw HTML is lit's own <sub> lines; no link at all (no --weave-dir); formatting
    # (a table, a strikethrough, a heading in a summary) is harmless and may stay
    assert set(re.findall(r"<(?!/)([a-z0-9]+)", html)) <= {
        "h1", "h2", "h3", "p", "ul", "li", "strong", "em", "code", "blockquote", "sub", "hr", "pre",
        "table", "thead", "tbody", "tr", "th", "td", "s"}
    # GitHub links mentions and #123 in text, never in code: what is left outside <code> must not
    text = re.sub(r"<[^>]+>", "", re.sub(r"<code>.*?</code>", "", html, flags=re.DOTALL))
    assert "@octocat" not in text
    # a commit subject's own "(#12)" is this repository's issue 12 and stays (the <h3> of each commit)
    outside_subjects = re.sub(r"<[^>]+>", "", re.sub(r"<h3>.*?</h3>|<code>.*?</code>", "", html, flags=re.DOTALL))
    assert re.search(r"(?<![\w\u200b])#\d", outside_subjects) is None
    assert "@\u200boctocat" in text  # said, not mentioned


def test_what_was_written_still_reads_the_same(body):
    text = re.sub(r"<[^>]+>", "", render(body))
    for words in ("fixes #\u200b5", "![tracker](https://evil.example/pixel.png)", "[click](javascript:alert(1))",
                  "&lt;script&gt;alert(1)&lt;/script&gt;", "&amp;#64;octocat"):
        assert words in text, words


def test_a_code_span_stays_a_code_span_on_its_line():
    html = render(pr.prose("keep `a < b` and ``x ` y`` as written, then `open"))
    assert "<code>a &lt; b</code>" in html and "<code>x ` y</code>" in html and "`open" in html
