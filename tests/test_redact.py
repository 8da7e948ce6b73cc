"""Secrets never reach the DB, a note or a page: redaction on the way in, tested by writing secrets
through a full `lit record` session and grepping every file lit wrote; `lit redact` for what was
written before a pattern existed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lit_fixtures import init_repo, lit_in_process

from lit import store
from lit.redact import CachedRedactor, Redactor
from lit.scripted import ScriptedUpstream, text_message, tool_message

AGENT = Path(__file__).resolve().parent.parent / "examples" / "agent.py"
# Made-up secrets shaped like real ones.
SECRETS = {
    "anthropic-key": "sk-ant-api03-" + "Qm9ndXNLZXlGb3JUZXN0" * 4 + "-AAAA",
    "openai-key": "sk-proj-" + "Zm9vYmFyYmF6cXV4" * 3,
    "aws-access-key": "AKIA" + "Z7Q2M4X9P3L8K5N1",
    "github-token": "ghp_" + "T3stT0kenValue0123456789abcdefABCDEF",
    "slack-token": "xoxb-1234567890-0987654321-" + "abcdefghijklmnopqrstuvwx",
    "private-key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAtestonly\n"
                   "-----END OPENSSH PRIVATE KEY-----",
}
CUSTOM = "corp-7f3a9c2e5b1d4f6a"


@pytest.mark.parametrize("kind,secret", SECRETS.items())
def test_each_kind_is_redacted_and_redaction_is_idempotent(kind, secret):
    r = Redactor()
    text = f"config: {secret}\nmore"
    out = r.text(text)
    assert f"[REDACTED:{kind}]" in out and secret not in out
    assert r.text(out) == out


# Shapes the provider patterns do not name: (text, the secret in it).
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Ha2Lm4T"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvZSJ9."
       "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
SHAPES = {
    "jwt": (f"session: {JWT}", JWT),
    "postgres-url": ("DATABASE_URL is postgres://app:Pg5ecret-77@db.internal:5432/app", "Pg5ecret-77"),
    "https-url": ("git clone https://deploy:Gh0stWr1ter@git.example.com/x.git", "Gh0stWr1ter"),
    "password-in-code": ('DB_PASSWORD = "Tr0ub4dor&3"', "Tr0ub4dor&3"),
    "secret-in-code": ("client_secret = 'c1s-9f8e7d6c5b4a'", "c1s-9f8e7d6c5b4a"),
    "token-in-code": ('SLACK_BOT_TOKEN = "tok-88a1-bb2c"', "tok-88a1-bb2c"),
    "key-in-code": ('STRIPE_KEY = "k3y-0f-the-shop"', "k3y-0f-the-shop"),
    "password-in-json": ('{"db_password": "hunter2hunter2"}', "hunter2hunter2"),
    "key-in-escaped-json": ('{"text": "{\\"api_key\\": \\"ak_93jd82jd0s\\"}"}', "ak_93jd82jd0s"),
    "password-flag": ("mysql -u root --password=Sw0rdf1sh -h db", "Sw0rdf1sh"),
    "password-flag-space": ("pg_dump --password Sw0rdf1sh2 app", "Sw0rdf1sh2"),
    "dotenv": ("SECRET_KEY=django-insecure-7c1x$9q!z\nDEBUG=1", "django-insecure-7c1x$9q!z"),
    "dotenv-quoted": ('X_SECRET="open sesame 42"', "open sesame 42"),
    "dotenv-export": ("export GITHUB_TOKEN=abcdef0123456789abcd", "abcdef0123456789abcd"),
    "aws-secret-unlabelled": (f"the key is {AWS_SECRET} for prod", AWS_SECRET),
    "aws-secret-labelled": (f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET),
    "custom-header": ('curl -H "X-Auth: f00b4rb4zqux" https://api.example.com', "f00b4rb4zqux"),
    "api-key-header": ("X-Api-Key: 7f3a9c2e5b1d4f6a8c0e", "7f3a9c2e5b1d4f6a8c0e"),
    "basic-auth-header": ("Authorization: Basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy"),
    "bearer": ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345", "abcdefghijklmnopqrstuvwxyz012345"),
    "query-google-key": ("GET /maps?key=AIzaSyA1234567890abcdefghijklmnopqrstu",
                         "AIzaSyA1234567890abcdefghijklmnopqrstu"),
    "query-api-key": ("https://api.example.com/v1?q=1&api_key=q8dj2k4l0s", "q8dj2k4l0s"),
    "query-token": ("wss://x.example.com/socket?token=a81b2c3d4e5f6a7b", "a81b2c3d4e5f6a7b"),
    "yaml-password": ("  password: 'Kub3rn3t3s!'", "Kub3rn3t3s!"),
    "curl-user": ("curl -u admin:Adm1nPa55 https://api.example.com", "Adm1nPa55"),
    "google-oauth": ('{"token": "ya29.a0AfH6SMBx-abcdefghijklmnopqrstuvwxyz"}',
                     "ya29.a0AfH6SMBx-abcdefghijklmnopqrstuvwxyz"),
    "azure-connection": ("AccountKey=Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9v==;EndpointSuffix=core.windows.net",
                         "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9v=="),
}


@pytest.mark.parametrize("name", SHAPES)
def test_each_shape_is_redacted(name):
    text, secret = SHAPES[name]
    out = Redactor().text(text)
    assert secret not in out and "[REDACTED:" in out, out
    assert Redactor().text(out) == out


# What must survive: code that names secrets without holding one.
ORDINARY = [
    "token_count = 3", "max_tokens = 1024", '"max_tokens": 1024, "input_tokens": 5, "token_type": "bearer"',
    "password_field = forms.CharField()", "password = self.password", "token = get_token(user)",
    "secret_key = settings.SECRET_KEY", "sk-learn is a library", "the AKIA prefix names AWS keys",
    "def api_key(self): ...", 'headers = {"x-api-key": api_key}', "token: str", "password: str | None = None",
    "authorization: Optional[str] = None", "connect(password=password, user=user)", "sort --key=2,2 names.txt",
    'cache_key = "user:%s" % uid', 'USERNAME_FIELD = "email"; PASSWORD_FIELD = "password"',
    "PASSWORD_MIN_LENGTH=8", "TOKEN_TTL=3600", "OLDPWD=/home/dev", 'BYTES_KEY = "cygwin"',
    "Use the --password option, or https://user:pass@host in the docs", "Authorization: Bearer skips CSRF",
    "class BetaAsyncAbstractComputerToolset20260801:", "commit 8c722c8e0f6b2bd8a5c1a0a3b1e2d4f6a7b8c9d0",
    "image: data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk",
    "password = getpass.getpass()", "self.assertEqual(key, 'abc')", "if not secret: raise ValueError",
    "git push -u origin main", 'toolskey = "VS%0.f0COMNTOOLS" % version', 'key = "../data/file1.txt"',
    "CACHE_KEY = f'user:{uid}'", "ssl_key = 'certs/server2.key'",
    '{"type": "thinking", "thinking": "hm", "signature": "EqQBCkYIARgCIkC3sm9xTkVrZ3Bq2w8oLnsKQ2Jw7fP/k9Wb+q3Z"}',
    "X-Hub-Signature-256: sha256=7d38cdd689735b008b3c702edd92eea23791c5f6",
]


@pytest.mark.parametrize("code", ORDINARY)
def test_ordinary_code_is_left_alone(code):
    assert Redactor().text(code) == code


def test_false_positives_on_the_standard_library():
    """The Python standard library (its modules, not its tests: those hold test passwords on
    purpose) holds no secret; the redactor may touch at most a line in 100,000 of it."""
    import sysconfig

    root = Path(sysconfig.get_paths()["stdlib"])
    r = Redactor()
    lines, hits = 0, []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(("test/", "site-packages/", "idlelib/idle_test/")) or "/tests/" in rel:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        lines += text.count("\n")
        out = r.text(text)
        if out != text:
            hits += [f"{rel}: {a.strip()}" for a, b in zip(text.splitlines(), out.splitlines(), strict=False) if a != b]
    assert lines > 300_000
    assert len(hits) <= lines / 100_000, hits


@pytest.mark.parametrize("text", [
    "password: a" + " " * 50_000 + "x", "KEY_" * 12_500, "Authorization: " + "A" * 50_000, "eyJ" * 16_000,
    "?" + "key=" * 12_500, "token=" * 8_000, 'password = "' * 4_000, "X-Auth-" * 7_000, "https://a:" * 5_000,
    "-----BEGIN PRIVATE KEY-----" + "a" * 50_000, "github_pat_" * 4_500, "sk-ant-api03-" + "a" * 50_000,
])
def test_hostile_text_takes_linear_time(text):
    """Tool results are anyone's text: no input makes a rule backtrack for minutes (50 kB here;
    a quadratic rule took 14 s on 20 kB)."""
    import time

    r = Redactor()
    r.text("warm up")
    t0 = time.perf_counter()
    r.text(text)
    assert time.perf_counter() - t0 < 10


def test_structured_values_headers_and_query():
    r = Redactor()
    data = {"password": "letmein", "db_password": "hunter2", "api_key": "ak_93jd82jd0s", "token": "abc",
            "sort_key": "name", "max_tokens": 100, "auth": {"password_field": "password"}}
    out = r.obj(data)
    assert out["password"] == out["db_password"] == "[REDACTED:password]" and out["api_key"] == "[REDACTED:secret]"
    assert out["token"] == "abc" and out["sort_key"] == "name" and out["max_tokens"] == 100
    assert out["auth"] == {"password_field": "password"}
    thinking = {"type": "thinking", "thinking": "hm", "signature": "EqQBCkYIARgCIkC3sm9xTkVrZ3Bq2w8oLnsKQ2Jw7fP"}
    assert r.obj(thinking) == thinking  # the model's own opaque bytes, sent back as they came
    headers = r.headers({"X-Auth": "s3cr3t", "x-api-key": "sk-x", "Cookie": "a=b", "user-agent": "claude-cli/2",
                         "x-claude-code-session-id": "5f0c"})
    assert headers == {"X-Auth": "[REDACTED]", "x-api-key": "[REDACTED]", "Cookie": "[REDACTED]",
                       "user-agent": "claude-cli/2", "x-claude-code-session-id": "5f0c"}
    from lit.redact import redact_query

    assert redact_query("beta=true&token=a81b2c3d4e5f6a7b") == "beta=true&token=[REDACTED:query-secret]"
    assert Redactor().fingerprint == r.fingerprint != Redactor(["corp-[0-9]+"]).fingerprint


def test_the_cached_redactor_scans_each_distinct_text_once_and_answers_the_same():
    """The recorder's redactor: the same result as the rules', each distinct long text scanned
    once (kept by a hash of its content, not by the object), within a bound of memory."""
    plain, cached = Redactor(["corp-[0-9a-f]{16}"]), CachedRedactor.of(Redactor(["corp-[0-9a-f]{16}"]))
    filler = "".join(f"line {n}: nothing secret here\n" for n in range(40))
    texts = [filler + text for text, _ in SHAPES.values()] + [filler + CUSTOM, filler + "clean", "short"]
    for text in texts + texts:
        assert cached.text(text) == plain.text(text)
    assert (cached.scanned, cached.reused) == (len(texts) - 1, len(texts) - 1)  # "short" is below the floor
    again = "".join(list(filler + CUSTOM))  # equal content, another object
    assert again is not texts[-3] and cached.text(again) == filler + "[REDACTED:custom]"
    assert cached.reused == len(texts)
    assert cached.obj({"a": [filler + CUSTOM]}) == {"a": [filler + "[REDACTED:custom]"]}
    # The memory is bounded: the oldest texts are forgotten, and scanned again when met again.
    small = CachedRedactor(max_bytes=10 * CachedRedactor._ENTRY)
    for n in range(30):
        small.text(filler + str(n))
    assert small.text(filler + "0") == filler + "0" and small.scanned == 31


def test_labelled_values_and_json_structure():
    r = Redactor(["corp-[0-9a-f]{16}"])
    data = {"env": "export DB_PASSWORD=s3cr3tpassw0rd", "json": '{"api_key": "abcd1234efgh5678"}',
            "list": ["Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345", CUSTOM], "n": 3}
    out = r.obj(data)
    assert out["n"] == 3 and set(out) == set(data)
    assert "s3cr3tpassw0rd" not in str(out) and "abcd1234efgh5678" not in str(out)
    assert "abcdefghijklmnopqrstuvwxyz012345" not in str(out) and out["list"][1] == "[REDACTED:custom]"


def sh(cmd, cwd, **kw):
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True, **kw).stdout


# Every shape a session can carry, each a made-up value: (name, value). Values that only a secret
# store holds (.env, a private key file) must not even reach the repository's object store.
ATTACK = {
    "anthropic": SECRETS["anthropic-key"], "openai": SECRETS["openai-key"], "aws-id": SECRETS["aws-access-key"],
    "github": SECRETS["github-token"], "slack": SECRETS["slack-token"], "jwt": JWT,
    "pg-password": "Pg5ecret-77", "url-password": "Gh0stWr1ter", "code-password": "Tr0ub4dor&3",
    "code-token": "tok-88a1-bb2c", "code-key": "k3y-0f-the-shop", "json-password": "hunter2hunter2",
    "flag-password": "Sw0rdf1sh", "commit-token": "cm7-a81b2c3d4e5f", "x-auth": "f00b4rb4zqux",
    "query-google": "AIzaSyA1234567890abcdefghijklmnopqrstu", "query-api-key": "q8dj2k4l0s93",
    "prompt-password": "Prompt-Pa55w0rd", "custom": CUSTOM,
}
STORE_ONLY = {  # in .env, id_ed25519 and certs/server.pem only (never committed, never ignored)
    "env-secret-key": "django-insecure-7c1x9qz42", "env-quoted": "open sesame 42", "aws-secret": AWS_SECRET,
    "env-url": "Env-Db-Pa55", "ssh-key": "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUtZXN0b3Jl", "pem": "TUlJRXZRSUJBREFOQmdr",
}
WRAPPER = """import runpy, sys
import anthropic

class Client(anthropic.Anthropic):  # the agent's own SDK client, with a custom auth header and query
    def __init__(self, **kw):
        super().__init__(default_headers={"X-Auth": %r}, default_query={"key": %r, "api_key": %r}, **kw)

anthropic.Anthropic = Client
sys.argv = [%r, *sys.argv[1:]]
runpy.run_path(%r, run_name="__main__")
"""


@pytest.mark.slow
def test_every_secret_shape_through_a_whole_session_reaches_nothing_lit_writes(tmp_path):
    """An attacker's view: a real `lit record` session (the anthropic SDK agent, a real git repo, a
    commit) carries every shape, in the prompt, reasoning, tool inputs and results, a header, the
    query string and the commit message; then every file and output lit made is searched."""
    repo = init_repo(tmp_path / "repo", {"README.md": "app\n"})
    config = tmp_path / "config.toml"
    config.write_text('[redact]\npatterns = ["corp-[0-9a-f]{16}"]\n')
    db = tmp_path / "lit.db"
    a, st = ATTACK, STORE_ONLY
    (repo / ".env").write_text(f"SECRET_KEY={st['env-secret-key']}\nX_SECRET=\"{st['env-quoted']}\"\n"
                               f"{st['aws-secret']}\nDATABASE_URL=postgres://app:{st['env-url']}@db:5432/app\n")
    (repo / "id_ed25519").write_text(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{st['ssh-key']}\n"
                                     "-----END OPENSSH PRIVATE KEY-----\n")
    (repo / "certs").mkdir()
    (repo / "certs" / "server.pem").write_text(f"-----BEGIN PRIVATE KEY-----\n{st['pem']}\n-----END PRIVATE KEY-----\n")
    (repo / ".env.example").write_text("SECRET_KEY=\n")
    settings = (f'DB_PASSWORD = "{a["code-password"]}"\nSLACK_BOT_TOKEN = "{a["code-token"]}"\n'
                f'STRIPE_KEY = "{a["code-key"]}"\nDATABASE_URL = "postgres://app:{a["pg-password"]}@db/app"\n'
                f'OPENAI = "{a["openai"]}"\nTEAM = "{a["custom"]}"\n')
    replies = [
        tool_message("write_file", {"path": "settings.py", "content": settings},
                     thinking=f"The user gave {a['anthropic']} and the token {a['jwt']}; keep them out."),
        tool_message("write_file", {"path": "config.json", "content": f'{{"db_password": "{a["json-password"]}"}}\n'},
                     text=f"Cloning https://deploy:{a['url-password']}@git.example.com/x.git for reference."),
        tool_message("run_shell", {"command": f"cat .env id_ed25519 certs/server.pem; echo mysql --password="
                                              f"{a['flag-password']} -h db; echo {a['aws-id']}"}),
        tool_message("run_shell", {"command": "git add settings.py config.json .env.example && git commit -q -m "
                                              f"'Add settings (API_TOKEN={a['commit-token']})'"}),
        text_message(f"Done. Rotate {a['github']} and {a['slack']}; try curl -H 'X-Auth: {a['x-auth']}' "
                     f"'https://maps.example.com/api?key={a['query-google']}&api_key={a['query-api-key']}'"),
    ]
    wrapper = tmp_path / "agent_with_headers.py"
    wrapper.write_text(WRAPPER % (a["x-auth"], a["query-google"], a["query-api-key"], str(AGENT), str(AGENT)))
    prompt = (f"Set up settings. My DB password is --password={a['prompt-password']} and the Slack token is "
              f"{a['slack']}; the session JWT is {a['jwt']}")
    env = {**os.environ, "LIT_DB": str(db), "LIT_CONFIG": str(config), "ANTHROPIC_API_KEY": a["anthropic"]}
    with ScriptedUpstream(replies) as up:
        proc = subprocess.run([sys.executable, "-m", "lit", "record", "--upstream", up.url, "--", sys.executable,
                               str(wrapper), prompt], cwd=repo, env=env, capture_output=True, text=True, timeout=120)
        sent = up.requests
    assert proc.returncode == 0, proc.stderr
    assert any(r["query"] and a["query-api-key"] in r["query"] for r in sent)  # the attack went out, as sent
    assert any(r["headers"].get("X-Auth") == a["x-auth"] for r in sent)
    assert "Lit-Thread:" in sh(["git", "log", "-1", "--format=%B"], repo)

    def lit(*args: str) -> str:
        out = lit_in_process(list(args), repo, env=env)
        assert out.returncode == 0, out.stderr
        return out.stdout + out.stderr

    page, export = tmp_path / "page.html", tmp_path / "thread.jsonl"
    thread = sh(["git", "log", "-1", "--format=%(trailers:key=Lit-Thread,valueonly)"], repo).strip()
    outputs = {
        "lit record's own lines": "".join(x for x in (proc.stdout + proc.stderr).splitlines(True)
                                          if x.startswith("lit")).encode(),
        "the DB and its WAL": b"".join(p.read_bytes() for p in tmp_path.glob("lit.db*")),
        "the note": sh(["git", "notes", "--ref=lit", "show", "HEAD"], repo).encode(),
        "lit weave": (lit("weave", "HEAD", "-o", str(page)) and page.read_bytes()),
        "lit pr": (lit("pr", "HEAD~1") + lit("pr", "HEAD~1", "--format", "json")).encode(),
        "lit export": (lit("export", thread, "-o", str(export)) and export.read_bytes()),
        "lit show": lit("show", thread).encode(),
        "lit threads, sessions": (lit("threads", "--json") + lit("sessions", "--json")).encode(),
        # blame prints the file's own lines as they are, like git blame; all else it prints is lit's
        "lit blame --full (reasoning)": "".join(x for x in lit("blame", "settings.py", "--full").splitlines(True)
                                                if " │ " not in x).encode(),
    }
    refs = sh(["git", "for-each-ref", "--format=%(refname)", "refs/lit/"], repo).split()
    assert refs == [], f"snapshots outlived the note: {refs}"
    objects = subprocess.run(["git", "cat-file", "--batch-all-objects", "--batch"], cwd=repo,
                             capture_output=True, check=True).stdout
    assert b"[REDACTED:" in outputs["the DB and its WAL"] and b"[REDACTED:" in outputs["the note"]
    leaks = [f"{name} ({v[:10]}...) in {where}" for where, data in outputs.items()
             for name, v in {**a, **st}.items() if v.encode() in data]
    leaks += [f"{name} ({v[:10]}...) in a git object" for name, v in st.items() if v.encode() in objects]
    db_row = store.connect(db).execute("SELECT upstream FROM sessions").fetchone()[0]
    assert leaks == [], "\n".join(leaks)
    assert "@" not in (db_row or "")


def test_lit_redact_rescrubs_old_rows_and_notes(tmp_path):
    repo = init_repo(tmp_path / "repo", {"f": "x\n"})
    db_path = tmp_path / "lit.db"
    db = store.connect(db_path)
    with db.conn:
        db["sessions"].insert({"id": "s1", "started_at": 1.0})
        thread = store.open_thread(db, "s1", str(repo))
        db["steps"].insert({"id": f"{thread}.1", "thread_id": thread, "seq": 1, "kind": "thinking",
                            "text": f"the team id is {CUSTOM}"})
        # A long tool result, stored compressed: its secret is not in the file's bytes as such.
        output = "".join(f"line {n}: nothing to see\n" for n in range(100)) + f"TEAM={CUSTOM}\n"
        db["steps"].insert(store.packed_step({"id": f"{thread}.2", "thread_id": thread, "seq": 2,
                                              "kind": "tool_result", "text": output}))
    sh(["git", "notes", "--ref=lit", "add", "-m", '{"version": 1, "why": "' + CUSTOM + '"}', "HEAD"], repo)
    db.conn.close()
    config = tmp_path / "config.toml"
    config.write_text('[redact]\npatterns = ["corp-[0-9a-f]{16}"]\n')
    env = {**os.environ, "LIT_DB": str(db_path), "LIT_CONFIG": str(config)}
    dry = subprocess.run([sys.executable, "-m", "lit", "redact", "--dry-run"], cwd=repo, env=env,
                         capture_output=True, text=True)
    assert "would change 2 steps" in dry.stdout and "1 notes" in dry.stdout
    assert CUSTOM.encode() in b"".join(p.read_bytes() for p in tmp_path.glob("lit.db*"))
    out = subprocess.run([sys.executable, "-m", "lit", "redact"], cwd=repo, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert CUSTOM.encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("lit.db*"))
    assert CUSTOM not in sh(["git", "notes", "--ref=lit", "show", "HEAD"], repo)
    db = store.connect(db_path)
    assert db.execute("SELECT COUNT(*) FROM steps_fts WHERE steps_fts MATCH 'REDACTED'").fetchone()[0] == 1
    packed = db.execute("SELECT text FROM steps WHERE seq = 2").fetchone()[0]
    assert isinstance(packed, bytes) and store.step_text(packed) == output.replace(CUSTOM, "[REDACTED:custom]")


def test_lit_redact_reaches_every_column(tmp_path):
    """A DB written before these rules (here, by hand): a secret in every column that holds content."""
    a = ATTACK
    db_path = tmp_path / "lit.db"
    db = store.connect(db_path)
    headers = store.put_blob(db, store.canonical_json({"X-Auth": a["x-auth"], "user-agent": "agent/1"}), "headers")
    body = store.put_blob(db, f'{{"broken": "{a["github"]}"', "request")
    with db.conn:
        db["sessions"].insert({"id": "s1", "started_at": 1.0,
                               "argv": json.dumps(["agent", f"--password={a['flag-password']}"]),
                               "upstream": f"https://bob:{a['url-password']}@up.example.com",
                               "notes": f"could not write {a['jwt']}"})
        thread = store.open_thread(db, "s1", None)
        db["threads"].update(thread, {"title": f"use {a['slack']}"})
        db["exchanges"].insert({"id": "s1.1", "session_id": "s1", "seq": 1,
                                "query": f"key={a['query-google']}&api_key={a['query-api-key']}",
                                "error": f"upstream https://bob:{a['url-password']}@up.example.com refused",
                                "request_headers": headers, "request_blob": body,
                                "params": json.dumps({"metadata": {"user_id": a["anthropic"]}}),
                                "response_headers": json.dumps({"x-auth-token": a["code-token"]})})
        db.execute("INSERT INTO messages (key, role, content) VALUES ('m1', 'user', ?)",
                   [store.pack_content([{"type": "text", "text": f"DB_PASSWORD={a['code-password']}"}])])
        db["steps"].insert({"id": f"{thread}.1", "thread_id": thread, "seq": 1, "kind": "tool_call",
                            "text": a["openai"], "tool_input": json.dumps({"password": a["json-password"]}),
                            "raw": json.dumps({"t": a["aws-id"]})})
    db.conn.close()
    env = {**os.environ, "LIT_DB": str(db_path)}
    out = subprocess.run([sys.executable, "-m", "lit", "redact", "--no-notes"], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "lit: changed 1 steps, 1 messages, 2 blobs, 1 exchanges, 1 threads, 1 sessions, 0 notes\n"
    data = b"".join(p.read_bytes() for p in tmp_path.glob("lit.db*"))
    assert [k for k, v in a.items() if v.encode() in data] == []
    assert json.loads(store.connect(db_path).execute("SELECT tool_input FROM steps").fetchone()[0]) == {
        "password": "[REDACTED:password]"}



def test_lit_import_redacts_and_never_adds_steps_to_a_thread_it_has(tmp_path):
    """A crafted export file: a new thread whose step holds a secret, and a forged prompt for a thread
    the DB already has (thread ids are public, in every trailer)."""
    from lit.portable import EXPORT_VERSION

    db_path = tmp_path / "lit.db"
    db = store.connect(db_path)
    with db.conn:
        db["sessions"].insert({"id": "s1", "started_at": 1.0})
        known = store.open_thread(db, "s1", None)
        db["steps"].insert({"id": f"{known}.1", "thread_id": known, "seq": 1, "kind": "prompt", "text": "mine"})
    db.conn.close()
    rows = [{"table": "sessions", "row": {"id": "s2", "started_at": 2.0}},
            {"table": "threads", "row": {"id": "aaaaaaaaaaaa", "session_id": "s2", "seq": 1, "status": "pending"}},
            {"table": "steps", "row": {"id": "aaaaaaaaaaaa.1", "thread_id": "aaaaaaaaaaaa", "seq": 1, "kind": "prompt",
                                       "text": f"deploy with {SECRETS['github-token']}"}},
            {"table": "steps", "row": {"id": f"{known}.2", "thread_id": known, "seq": 2, "kind": "prompt",
                                       "text": "a forged prompt"}}]
    path = tmp_path / "crafted.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in [
        {"lit_export": EXPORT_VERSION, "thread": "aaaaaaaaaaaa", "session": "s2"}, *rows]) + "\n")
    out = subprocess.run([sys.executable, "-m", "lit", "import", str(path)], env={**os.environ, "LIT_DB": str(db_path)},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    db = store.connect(db_path)
    assert [r[0] for r in db.execute("SELECT text FROM steps WHERE thread_id = ?", [known])] == ["mine"]
    assert db.execute("SELECT text FROM steps WHERE id = 'aaaaaaaaaaaa.1'").fetchone()[0] == \
        "deploy with [REDACTED:github-token]"
    db.conn.close()
    assert SECRETS["github-token"].encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("lit.db*"))


def test_upstream_credentials_never_stored(tmp_path):
    """`--upstream https://user:password@host`: the password reaches neither the DB nor lit's output,
    whether the upstream answers or is unreachable (its error names it, masked)."""
    env = {**os.environ, "LIT_DB": str(tmp_path / "lit.db"), "ANTHROPIC_API_KEY": SECRETS["anthropic-key"]}
    password = "Up5tream-Pa55w0rd"
    outputs = []
    with ScriptedUpstream([text_message("hi")]) as up:
        for url in (up.url.replace("http://", f"http://bob:{password}@"), f"http://bob:{password}@127.0.0.1:9"):
            proc = subprocess.run([sys.executable, "-m", "lit", "record", "--upstream", url, "--", sys.executable,
                                   str(AGENT), "hello"], cwd=tmp_path, env=env, capture_output=True, text=True,
                                  timeout=60)
            outputs.append(proc.stderr)
    assert "lit: recorded" in outputs[0] and "Traceback" not in "".join(outputs)
    data = b"".join(p.read_bytes() for p in tmp_path.glob("lit.db*"))
    assert password.encode() not in data and password not in "".join(outputs)
    upstreams = [r[0] for r in store.connect(tmp_path / "lit.db").execute("SELECT upstream FROM sessions")]
    assert len(upstreams) == 2 and all(password not in u and "@127.0.0.1:" in u for u in upstreams)


def test_an_upstream_error_that_echoes_a_key_is_redacted(tmp_path):
    """Some upstreams repeat what they were sent in their error: exchanges.error holds none of it."""
    key = SECRETS["openai-key"]
    env = {**os.environ, "LIT_DB": str(tmp_path / "lit.db"), "ANTHROPIC_API_KEY": SECRETS["anthropic-key"]}
    refusal = {"status": 401, "body": {"type": "error", "error": {
        "type": "authentication_error", "message": f"invalid x-api-key {SECRETS['anthropic-key']} (or {key})"}}}
    with ScriptedUpstream([refusal] * 5) as up:
        subprocess.run([sys.executable, "-m", "lit", "record", "--upstream", up.url, "--", sys.executable, str(AGENT),
                        "hello"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    errors = [r[0] for r in store.connect(tmp_path / "lit.db").execute("SELECT error FROM exchanges")]
    assert errors and all("authentication_error" in e and "[REDACTED:" in e for e in errors)
    data = b"".join(p.read_bytes() for p in tmp_path.glob("lit.db*"))
    assert key.encode() not in data and SECRETS["anthropic-key"].encode() not in data
