"""The woven page in a real browser (headless Chromium): what a person sees at desktop and phone
widths, in dark mode and in print.

Headless Chromium will not make a window narrower than 500 CSS px, so "phone" here is 500 px:
narrower than the 900 px where the rows turn from two columns into one.

Also makes the README's screenshot:  python tests/test_browser_weave.py docs/weave.png
"""

from __future__ import annotations

import html as html_module
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from lit_fixtures import build_story  # noqa: E402

from lit import weave as weave_module  # noqa: E402

# Measures the second row (the Write) once the page has loaded; only in the test's copy of the page,
# which itself has no script.
PROBE = """<script>
addEventListener('load', function () {
  function box(sel) { var r = document.querySelector(sel).getBoundingClientRect();
                      return [r.left, r.top, r.right, r.bottom]; }
  document.body.setAttribute('data-probe', JSON.stringify({
    prose: box('section.row:nth-of-type(2) .prose'), code: box('section.row:nth-of-type(2) .code'),
    background: getComputedStyle(document.body).backgroundColor, width: innerWidth}));
});
</script></body>"""


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("chromium is not installed: these tests need a real browser "
                    "(Debian: apt-get install chromium; .ci/run installs it)")
    return path


def run_chromium(tmp_path: Path, *args: str, timeout: float = 60) -> str:
    """One headless Chromium run, offline, its whole process group ended afterwards."""
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium-profile'}", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its renderer and zygote processes too
        except ProcessLookupError:
            pass
    assert proc.returncode == 0, err[-2000:]
    return out


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("weave")
    old_home = os.environ.get("HOME")
    os.environ["HOME"] = str(tmp)
    try:
        story = build_story(tmp / "repo", db_path=tmp / "lit.db")
        path = weave_module.weave(story.commits["write"], tmp / "page.html", cwd=story.repo,
                                  db_path=str(tmp / "lit.db"))
    finally:
        if old_home is not None:
            os.environ["HOME"] = old_home
    return path


def probe(page: Path, tmp_path: Path, *flags: str) -> dict:
    copy = tmp_path / "probe.html"
    copy.write_text(page.read_text().replace("</body>", PROBE))
    dom = run_chromium(tmp_path, *flags, "--dump-dom", copy.as_uri())
    m = re.search(r'data-probe="([^"]*)"', dom)
    assert m, "the page did not load in Chromium"
    return json.loads(html_module.unescape(m.group(1))) | {"dom": dom}


def test_desktop_two_columns_with_the_steps_text(page, tmp_path):
    seen = probe(page, tmp_path, "--window-size=1280,900")
    prose, code = seen["prose"], seen["code"]
    assert code[0] >= prose[2] - 1 and abs(code[1] - prose[1]) < 1  # side by side, same top
    assert prose[2] - prose[0] > 300 and code[2] - code[0] > 500
    assert "Splitting on a single space counts runs of spaces as words." in seen["dom"]
    assert "count_words" in seen["dom"] and "Written by a person" in seen["dom"]
    assert seen["background"] == "rgb(253, 253, 251)"


def test_phone_width_interleaves_prose_then_code(page, tmp_path):
    seen = probe(page, tmp_path, "--window-size=500,900")
    prose, code = seen["prose"], seen["code"]
    assert seen["width"] <= 500
    assert code[1] >= prose[3] - 1 and abs(code[0] - prose[0]) < 1  # below it, same left edge
    assert code[2] <= seen["width"]  # nothing wider than the screen


def test_dark_mode(page, tmp_path):
    seen = probe(page, tmp_path, "--window-size=1280,900", "--force-dark-mode")
    assert seen["background"] == "rgb(13, 17, 23)"


def test_screenshot_and_print(page, tmp_path):
    shot = tmp_path / "shot.png"
    run_chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,900", page.as_uri())
    assert png_size(shot) == (1280, 900) and shot.stat().st_size > 20_000  # a page, not a blank
    pdf = tmp_path / "page.pdf"
    run_chromium(tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", page.as_uri())
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 10_000


if __name__ == "__main__":
    # The README's screenshot: the story's first agent commit, at desktop width.
    import tempfile

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/weave.png").resolve()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        os.environ["HOME"] = tmp
        story = build_story(tmp_path / "repo", db_path=tmp_path / "lit.db")
        page_path = weave_module.weave(story.commits["write"], tmp_path / "page.html", cwd=story.repo,
                                       db_path=str(tmp_path / "lit.db"))
        run_chromium(tmp_path, f"--screenshot={out}", "--window-size=1200,1350", page_path.as_uri())
    print(out, out.stat().st_size, "bytes")
