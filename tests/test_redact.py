"""Secrets never reach the DB, a note or a page: redaction on the way in, tested by writing secrets
through a full `lit record` session and grepping every file lit wrote; `lit redact` for what was
written before a pattern existed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lit import store
from lit.redact import Redactor
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
    "query-google-key": ("GET /maps?key=AIzaSyA1234567890abcdefghijklmnopqrstu", "AIzaSyA1234567890abcdefghijklmnopqrstu"),
    "query-api-key": ("https://api.example.com/v1?q=1&api_key=q8dj2k4l0s", "q8dj2k4l0s"),
    "query-token": ("wss://x.example.com/socket?token=a81b2c3d4e5f6a7b", "a81b2c3d4e5f6a7b"),
    "yaml-password": ("  password: 'Kub3rn3t3s!'", "Kub3rn3t3s!"),
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


def test_structured_values_headers_and_query():
    r = Redactor()
    data = {"password": "letmein", "db_password": "hunter2", "api_key": "ak_93jd82jd0s", "token": "abc",
            "sort_key": "name", "max_tokens": 100, "auth": {"password_field": "password"}}
    out = r.obj(data)
    assert out["password"] == out["db_password"] == "[REDACTED:password]" and out["api_key"] == "[REDACTED:secret]"
    assert out["token"] == "abc" and out["sort_key"] == "name" and out["max_tokens"] == 100
    assert out["auth"] == {"password_field": "password"}
    headers = r.headers({"X-Auth": "s3cr3t", "x-api-key": "sk-x", "Cookie": "a=b", "user-agent": "claude-cli/2",
                         "x-claude-code-session-id": "5f0c"})
    assert headers == {"X-Auth": "[REDACTED]", "x-api-key": "[REDACTED]", "Cookie": "[REDACTED]",
                       "user-agent": "claude-cli/2", "x-claude-code-session-id": "5f0c"}
    from lit.redact import redact_query

    assert redact_query("beta=true&token=a81b2c3d4e5f6a7b") == "beta=true&token=[REDACTED:query-secret]"
    assert Redactor().fingerprint == r.fingerprint != Redactor(["corp-[0-9]+"]).fingerprint


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


def test_secrets_through_a_full_session_reach_no_file(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    for args in (["init", "-q"], ["config", "user.email", "d@example.com"], ["config", "user.name", "D"]):
        sh(["git", *args], repo)
    config = tmp_path / "config.toml"
    config.write_text('[redact]\npatterns = ["corp-[0-9a-f]{16}"]\n')
    db = tmp_path / "lit.db"
    env_file = "".join(f"{k.upper().replace('-', '_')}_VALUE={v}\n" for k, v in SECRETS.items()
                       if k != "private-key")
    replies = [
        tool_message("write_file", {"path": "settings.py", "content": f"KEY = '{SECRETS['openai-key']}'\n"
                                    f"TEAM = '{CUSTOM}'\n"},
                     thinking=f"The user gave {SECRETS['anthropic-key']}; keep it out of the code."),
        tool_message("run_shell", {"command": f"echo '{SECRETS['private-key']}' > /dev/null; cat secrets.env"},
                     text=f"Checking {SECRETS['aws-access-key']}."),
        tool_message("run_shell", {"command": "git add settings.py && git commit -q -m settings"}),
        text_message(f"Done; rotate {SECRETS['github-token']}."),
    ]
    (repo / "secrets.env").write_text(env_file)
    (repo / ".gitignore").write_text("secrets.env\n")
    prompt = f"Use {SECRETS['slack-token']} and {SECRETS['anthropic-key']} to set things up"
    env = {**os.environ, "LIT_DB": str(db), "LIT_CONFIG": str(config), "ANTHROPIC_API_KEY": SECRETS["anthropic-key"]}
    with ScriptedUpstream(replies) as up:
        proc = subprocess.run([sys.executable, "-m", "lit", "record", "--upstream", up.url, "--", sys.executable,
                               str(AGENT), prompt], cwd=repo, env=env, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    assert "Lit-Thread:" in sh(["git", "log", "-1", "--format=%B"], repo)
    page = tmp_path / "page.html"
    weave = subprocess.run([sys.executable, "-m", "lit", "weave", "HEAD", "-o", str(page)], cwd=repo, env=env,
                           capture_output=True, text=True, timeout=60)
    assert weave.returncode == 0, weave.stderr

    written = b"".join(p.read_bytes() for p in tmp_path.glob("lit.db*"))
    notes = sh(["git", "notes", "--ref=lit", "show", "HEAD"], repo).encode()
    html = page.read_bytes()
    assert b"[REDACTED:" in written and b"[REDACTED:" in notes
    for secret in [*SECRETS.values(), CUSTOM]:
        for name, data in (("DB", written), ("note", notes), ("page", html)):
            probe = secret.splitlines()[1] if "PRIVATE KEY" in secret else secret
            assert probe.encode() not in data, f"{secret[:12]}... found in the {name}"


def test_lit_redact_rescrubs_old_rows_and_notes(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    for args in (["init", "-q"], ["config", "user.email", "d@example.com"], ["config", "user.name", "D"]):
        sh(["git", *args], repo)
    (repo / "f").write_text("x\n")
    sh(["git", "add", "f"], repo)
    sh(["git", "commit", "-q", "-m", "f"], repo)
    db_path = tmp_path / "lit.db"
    db = store.connect(db_path)
    with db.conn:
        db["sessions"].insert({"id": "s1", "started_at": 1.0})
        thread = store.open_thread(db, "s1", str(repo))
        db["steps"].insert({"id": f"{thread}.1", "thread_id": thread, "seq": 1, "kind": "thinking",
                            "text": f"the team id is {CUSTOM}"})
    sh(["git", "notes", "--ref=lit", "add", "-m", '{"version": 1, "why": "' + CUSTOM + '"}', "HEAD"], repo)
    db.conn.close()
    config = tmp_path / "config.toml"
    config.write_text('[redact]\npatterns = ["corp-[0-9a-f]{16}"]\n')
    env = {**os.environ, "LIT_DB": str(db_path), "LIT_CONFIG": str(config)}
    dry = subprocess.run([sys.executable, "-m", "lit", "redact", "--dry-run"], cwd=repo, env=env,
                         capture_output=True, text=True)
    assert "would change 1 steps" in dry.stdout and "1 notes" in dry.stdout
    assert CUSTOM.encode() in b"".join(p.read_bytes() for p in tmp_path.glob("lit.db*"))
    out = subprocess.run([sys.executable, "-m", "lit", "redact"], cwd=repo, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert CUSTOM.encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("lit.db*"))
    assert CUSTOM not in sh(["git", "notes", "--ref=lit", "show", "HEAD"], repo)
    hits = store.connect(db_path).execute("SELECT COUNT(*) FROM steps_fts WHERE steps_fts MATCH 'REDACTED'")
    assert hits.fetchone()[0] == 1
