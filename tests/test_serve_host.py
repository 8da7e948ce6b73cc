"""`lit serve` answers only this machine: a foreign Host (DNS rebinding) and a cross-site request
from a web page are refused, and see nothing; `--host 0.0.0.0` asked on purpose is said once."""

from __future__ import annotations

import http.client
import subprocess
import sys

import pytest

from lit import store

SECRET_PROMPT = "the prompt only this machine may read"


@pytest.fixture
def served(tmp_path):
    db_path = tmp_path / "lit.db"
    db = store.connect(db_path)
    db["sessions"].insert({"id": "s1", "started_at": 1.0})
    thread = store.open_thread(db, "s1", None)
    db["steps"].insert({"id": f"{thread}.1", "thread_id": thread, "seq": 1, "kind": "prompt", "text": SECRET_PROMPT})
    db.conn.close()
    servers = []

    def serve(*args: str) -> tuple[int, subprocess.Popen]:
        proc = subprocess.Popen([sys.executable, "-m", "lit", "serve", "--db", str(db_path), "--port", "0", *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        servers.append(proc)
        line = proc.stdout.readline()
        assert line.startswith("lit serve: http://"), proc.stderr.read() if proc.poll() is not None else line
        return int(line.split()[2].rstrip("/").rsplit(":", 1)[1]), proc

    yield serve
    for proc in servers:
        proc.terminate()
        proc.wait(timeout=10)


def get(port: int, path: str, headers: dict[str, str]) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("GET", path, skip_host=True)
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read().decode()
    conn.close()
    return resp.status, body


def test_lit_serve_refuses_a_foreign_host_and_a_cross_site_request(served):
    port, _ = served()
    steps = "/lit/steps.json?_shape=array"
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"LOCALHOST:{port}"):
        status, body = get(port, steps, {"Host": host})
        assert status == 200 and SECRET_PROMPT in body, (host, status)
    # DNS rebinding: evil.example resolves to 127.0.0.1, the browser says whose name it used.
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1", f"127.0.0.1:{port + 1}"):
        status, body = get(port, steps, {"Host": host})
        assert status == 403 and SECRET_PROMPT not in body, (host, status)
        assert body.startswith("lit: refused: Host")
    # A page on another site fetching the API, as a browser sends it.
    browser = {"Host": f"127.0.0.1:{port}", "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site",
               "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}
    status, body = get(port, steps, browser)
    assert status == 403 and SECRET_PROMPT not in body and "another site (https://evil.example)" in body
    status, _ = get(port, steps, {**browser, "Origin": "null"})
    assert status == 403
    no_cors = {k: v for k, v in browser.items() if k != "Origin"}  # <script src=...>: no Origin sent
    assert get(port, steps, {**no_cors, "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "script"})[0] == 403
    # lit's own pages: same origin, or a link followed from elsewhere (a navigation reads nothing back).
    own = {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}", "Sec-Fetch-Site": "same-origin",
           "Sec-Fetch-Mode": "cors"}
    assert get(port, steps, own)[0] == 200
    assert get(port, "/lit/threads", {**no_cors, "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"})[0] == 200


def test_lit_serve_on_every_address_is_what_was_asked_and_said_once(served):
    port, proc = served("--host", "0.0.0.0")
    status, body = get(port, "/lit/steps.json?_shape=array", {"Host": f"devbox.lan:{port}"})
    assert status == 200 and SECRET_PROMPT in body
    cross = {"Host": f"devbox.lan:{port}", "Origin": "https://evil.example"}
    assert get(port, "/lit/steps.json", cross)[0] == 403  # still not for another site's page
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    assert err.splitlines() == ["lit serve: listening on 0.0.0.0: any machine that reaches it can read every thread"]


def test_the_rule_itself():
    from lit.loopback import is_loopback, refusal

    assert refusal({"host": "localhost:8001"}, 8001) is None
    assert refusal({"host": "localhost"}, 80) is None  # a browser names no port 80
    assert refusal({"host": "localhost"}, 8001) is not None
    assert refusal({"host": "127.0.0.2:8001"}, 8001, listen="127.0.0.2") is None
    assert refusal({"host": "127.0.0.1:8001", "origin": "null"}, 8001) is not None
    assert refusal({"host": "127.0.0.1:8001", "sec-fetch-site": "same-site", "sec-fetch-mode": "cors"}, 8001)
    assert refusal({"host": "anything:8001"}, 8001, listen="0.0.0.0", any_host=True) is None
    assert [is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]", "127.9.9.9", "0.0.0.0", "10.0.0.1",
                                     "example.com")] == [True, True, True, True, True, False, False, False]
