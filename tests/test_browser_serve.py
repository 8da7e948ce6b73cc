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
