"""A thread page served by a real `lit serve` process, read by a real headless Chromium: what a person
sees is the prompt, the reasoning as formatted text, tool calls folded, and nothing the recorded
text tried to inject."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser

from test_serve import build

from lit import store

INJECTED = "<img src=x onerror=\"document.body.setAttribute('data-pwned', '1')\">"


class Visible(HTMLParser):
    """The text a person sees: no script or style, and inside a closed <details> only its summary."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.skip = 0  # depth inside script/style or a closed details' body
        self.stack: list[tuple[str, bool]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        hidden = tag in ("script", "style") or (tag == "details" and "open" not in attrs)
        if tag == "summary" and self.stack and self.stack[-1][0] == "details" and self.stack[-1][1]:
            self.skip -= 1  # a closed details still shows its summary
            self.stack.append(("summary", True))
            return
        self.stack.append((tag, hidden))
        self.skip += hidden

    def handle_endtag(self, tag):
        while self.stack:
            name, hidden = self.stack.pop()
            if name == "summary" and hidden:
                self.skip += 1
            elif hidden:
                self.skip -= 1
            if name == tag:
                break

    def handle_data(self, data):
        if not self.skip:
            self.text.append(data)


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium is not installed: apt-get install -y chromium (.ci/run does it)"
    return path


def test_a_person_reads_a_thread_in_chromium(tmp_path):
    story = build(tmp_path)
    db = store.connect(story.db_path)
    with db.conn:  # recorded text that tries to run in the reader's browser
        db["steps"].update(f"{story.bound}.3", {"text": "I'll write `src/app.py`. " + INJECTED})
    db.conn.close()
    env = {**os.environ, "HOME": str(tmp_path), "LIT_DB": str(story.db_path)}
    server = subprocess.Popen([sys.executable, "-m", "lit", "serve", "--port", "0"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = server.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert match, (line, server.stderr.read() if server.poll() is not None else "")
        url = f"{match.group(0)}-/lit/thread/{story.bound}"
        started = time.monotonic()
        proc = subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium'}", "--dump-dom", url],
            capture_output=True, text=True, timeout=90, env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        dom = proc.stdout
        assert time.monotonic() - started < 90
    finally:
        server.terminate()
        server.wait(timeout=10)

    visible = Visible()
    visible.feed(dom)
    text = " ".join("".join(visible.text).split())
    # The title, the prompt with the hostile text shown as text, the reasoning, the commit.
    assert "Write app.py that prints hi" in text
    assert "<script>alert('x')</script> and [a link](javascript:alert(1))" in text
    assert "The user wants a script; print is enough." in text  # markdown, formatted
    assert "<strong>a script</strong>" in dom
    assert story.commit[:12] in text
    # Tool calls are folded: their names show, their inputs and results wait for a click.
    assert "Write src/app.py" in text and "Bash pytonh src/app.py failed" in text
    assert "bash: pytonh: command not found" not in text and "bash: pytonh: command not found" in dom
    # Nothing injected ran: no attribute set, no <img> made, no live javascript: link.
    assert "data-pwned" not in dom.split("<body", 1)[1].split(">", 1)[0]
    assert "<img" not in dom and 'href="javascript:' not in dom
    assert INJECTED.replace('"', "") in text.replace('"', "")


def _dump(tmp_path, url: str, *flags: str) -> str:
    proc = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium'}", *flags, url],
        capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_lit_serve_opens_on_lits_front_page_in_chromium(tmp_path):
    """What `lit serve` opens on, as a person sees it: the newest threads with their first prompt,
    repository, status, commit, models and time; a search box over prompts and reasoning; the
    repositories with their thread counts; the tables one click away. And a screenshot of it."""
    story = build(tmp_path)
    env = {**os.environ, "HOME": str(tmp_path), "LIT_DB": str(story.db_path)}
    server = subprocess.Popen([sys.executable, "-m", "lit", "serve", "--port", "0"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
    shot = tmp_path / "front.png"
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+/", server.stdout.readline()).group(0)
        dom = _dump(tmp_path, url, "--dump-dom")
        _dump(tmp_path, url, f"--screenshot={shot}", "--window-size=1280,800")
        # the search box's form, submitted as a browser submits it
        results = _dump(tmp_path, f"{url}lit/steps?_search=script&kind__in=prompt%2Cthinking%2Ctext", "--dump-dom")
    finally:
        server.terminate()
        server.wait(timeout=10)
    visible = Visible()
    visible.feed(dom)
    text = " ".join("".join(visible.text).split())
    assert "Recent threads" in text and "Repositories" in text and "Tables" in text
    # newest first: first prompt, repository, status, commit, models, when, steps
    assert ("Add a README repo pending - - 2026-11-28 19:51 UTC 2 "
            f"Write app.py that prints hi repo bound {story.commit[:7]} claude-sonnet-4-6 "
            "2026-11-28 19:40 UTC 12") in text
    assert "<td>2</td><td>1</td>" in dom  # the repository: 2 threads, 1 of them committed
    assert "Search prompts and reasoning" in text and '<input id="lit-q" type="search" name="_search"' in dom
    for table in ("sessions", "threads", "steps", "exchanges", "line_map", "snapshots"):
        assert f'<a href="/lit/{table}">{table}</a>' in dom
    assert f'href="/-/lit/thread/{story.bound}"' in dom and f'href="/-/lit/commit/{story.commit}"' in dom
    assert "<img" not in dom and "data-pwned" not in dom
    assert "2 rows where search matches" in " ".join(results.split())
    assert shot.stat().st_size > 20_000  # a page, not a blank


if __name__ == "__main__":
    # The README's screenshot of the front page, over the DB `lit demo` makes.
    import tempfile
    from pathlib import Path

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/serve.png").resolve()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        env = {**os.environ, "HOME": tmp, "LIT_DB": str(tmp_path / "demo" / "lit.db")}
        subprocess.run([sys.executable, "-m", "lit", "demo", "-q", str(tmp_path / "demo")], env=env, check=True,
                       capture_output=True)
        server = subprocess.Popen([sys.executable, "-m", "lit", "serve", "--port", "0"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env)
        try:
            url = re.search(r"http://127\.0\.0\.1:\d+/", server.stdout.readline()).group(0)
            _dump(tmp_path, url, f"--screenshot={out}", "--window-size=1200,760")
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(out, out.stat().st_size, "bytes")
