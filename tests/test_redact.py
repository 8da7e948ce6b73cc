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


@pytest.mark.parametrize("code", [
    "password = self.password", "token = get_token(user)", "secret_key = settings.SECRET_KEY",
    "sk-learn is a library", "the AKIA prefix names AWS keys", "def api_key(self): ...",
])
def test_ordinary_code_is_left_alone(code):
    assert Redactor().text(code) == code


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
