"""Other tools' formats: Agent Trace out and in, git-ai's notes in, squash merges relinked by content.

Everything runs through the real CLI (`python -m lit`) in real git repositories. The Agent Trace
records are checked against the rules of the published schema (cursor/agent-trace,
`schemas/trace-record.json`), written out below as the facts they are.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from lit_fixtures import (
    BASE_TIME,
    add_db_thread,
    build_story,
    commit_files,
    git,
    init_repo,
    lit_in_process,
)

# --- the schema's rules (schemas/trace-record.json, draft 2020-12) ---------------------------------

VERSION = re.compile(r"^[0-9]+\.[0-9]+$")
UUID = re.compile(r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}"
                  r"|00000000-0000-0000-0000-000000000000|ffffffff-ffff-ffff-ffff-ffffffffffff)$")
# format date-time, and the schema's pattern: a UTC time ending in Z, seconds optional.
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z$")
CONTRIBUTOR_TYPES = {"human", "ai", "mixed", "unknown"}
VCS_TYPES = {"git", "jj", "hg", "svn"}
MAX_LINE = 9007199254740991


def _keys(obj, allowed: set[str], required: set[str], where: str) -> None:
    assert isinstance(obj, dict), f"{where} is not an object"
    assert set(obj) <= allowed, f"{where} has keys the schema does not allow: {set(obj) - allowed}"
    assert required <= set(obj), f"{where} lacks required keys: {required - set(obj)}"


def _contributor(c, where: str) -> None:
    _keys(c, {"type", "model_id"}, {"type"}, where)
    assert c["type"] in CONTRIBUTOR_TYPES, where
    if "model_id" in c:
        assert isinstance(c["model_id"], str) and len(c["model_id"]) <= 250, where


def _uri(value, where: str) -> None:
    assert isinstance(value, str) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", value), f"{where} is not a URI"


def check_record(r: dict) -> None:
    """Every rule of the published schema, one assertion each."""
    _keys(r, {"version", "id", "timestamp", "vcs", "tool", "files", "metadata"},
          {"version", "id", "timestamp", "files"}, "record")
    assert isinstance(r["version"], str) and VERSION.match(r["version"])
    assert isinstance(r["id"], str) and UUID.match(r["id"])
    assert isinstance(r["timestamp"], str) and TIMESTAMP.match(r["timestamp"])
    datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00"))  # a real date and time
    if "vcs" in r:
        _keys(r["vcs"], {"type", "revision"}, {"type", "revision"}, "vcs")
        assert r["vcs"]["type"] in VCS_TYPES and isinstance(r["vcs"]["revision"], str)
    if "tool" in r:
        _keys(r["tool"], {"name", "version"}, {"name", "version"}, "tool")
        assert isinstance(r["tool"]["name"], str) and isinstance(r["tool"]["version"], str)
    assert isinstance(r["files"], list)
    for f in r["files"]:
        _keys(f, {"path", "conversations"}, {"path", "conversations"}, "file")
        assert isinstance(f["path"], str) and isinstance(f["conversations"], list)
        for c in f["conversations"]:
            where = f"conversation of {f['path']}"
            _keys(c, {"url", "contributor", "ranges", "related"}, {"ranges"}, where)
            if "url" in c:
                _uri(c["url"], where)
            if "contributor" in c:
                _contributor(c["contributor"], where)
            assert isinstance(c["ranges"], list)
            for rg in c["ranges"]:
                _keys(rg, {"start_line", "end_line", "content_hash", "contributor"}, {"start_line", "end_line"},
                      f"range of {f['path']}")
                for k in ("start_line", "end_line"):
                    assert type(rg[k]) is int and 1 <= rg[k] <= MAX_LINE
                if "content_hash" in rg:
                    assert isinstance(rg["content_hash"], str)
                if "contributor" in rg:
                    _contributor(rg["contributor"], f"range of {f['path']}")
            for rel in c.get("related", []):
                _keys(rel, {"type", "url"}, {"type", "url"}, "related")
                assert isinstance(rel["type"], str)
                _uri(rel["url"], "related")
    if "metadata" in r:
        assert isinstance(r["metadata"], dict) and all(isinstance(k, str) for k in r["metadata"])


# --- running lit ------------------------------------------------------------------------------------


def lit(cwd, *args: str, db: Path, input: str | None = None, ok: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "LIT_DB": str(db), "COLUMNS": "200"}
    proc = lit_in_process(list(args), cwd, env=env, input=input)
    assert "Traceback" not in proc.stderr, proc.stderr
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def blame_json(cwd, path: str, db: Path) -> list[dict]:
    return json.loads(lit(cwd, "blame", path, "--json", db=db).stdout)


def per_line(lines: list[dict]) -> list[tuple]:
    return [(b["line"], b["kind"], b["model"], b["step"]) for b in lines]


OPUS_FILE = "def shout(text):\n    return text.upper() + '!'\n"


@pytest.fixture
def story(tmp_path):
    """build_story (T1 in a note, T2 in the DB, T3 a trailer only), and a fourth commit whose
    thread was written by another model (claude-opus-4-6), with a person's line in it."""
    db = tmp_path / "lit.db"
    s = build_story(tmp_path / "repo", db_path=db)
    c4 = commit_files(s.repo, {"shout.py": OPUS_FILE + "# reviewed\n"}, "Add shout()\n\nLit-Thread: 7a6b5c4d3e2f",
                      when=BASE_TIME + 1800)
    add_db_thread(db, thread="7a6b5c4d3e2f", commit=c4, repo_root=str(s.repo), session="b1c2d3e4f5a6",
                  model="claude-opus-4-6", started_at=BASE_TIME + 1500, steps=[
                      {"kind": "prompt", "text": "Add shout()."},
                      {"kind": "tool_call", "tool_name": "Write", "tool_use_id": "toolu_01Shout",
                       "tool_input": {"file_path": "shout.py", "content": OPUS_FILE}},
                      {"kind": "tool_result", "tool_use_id": "toolu_01Shout", "text": "File created"}],
                  line_map={"shout.py": [[1, 2, "7a6b5c4d3e2f.2"], [3, 3, None]]})
    s.commits["shout"] = c4
    return s


# --- Agent Trace out ---------------------------------------------------------------------------------


def test_export_gives_one_valid_record_per_commit_with_lits_ids(story, tmp_path):
    db = story.db_path
    proc = lit(story.repo, "export", "main~4..main", "--format", "agent-trace", db=db)
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    for r in records:
        check_record(r)
    # The person's commit has no thread and the trailer-only one no line map: no record, and said so.
    assert [r["vcs"]["revision"] for r in records] == [story.commits[k] for k in ("write", "lines", "shout")]
    assert "no record" in proc.stderr and story.commits["tidy"][:10] in proc.stderr
    write, lines, shout = records
    assert write["vcs"] == {"type": "git", "revision": story.commits["write"]}
    convs = write["files"][0]["conversations"]
    assert convs[0]["contributor"] == {"type": "ai", "model_id": "anthropic/claude-sonnet-4-6"}
    assert [(r["start_line"], r["end_line"]) for r in convs[0]["ranges"]] == [(1, 4), (5, 5), (6, 12)]
    assert convs[1] == {"contributor": {"type": "human"},
                        "ranges": [{"start_line": 13, "end_line": 13, "content_hash": convs[1]["ranges"][0]
                                    ["content_hash"]}]}
    assert shout["files"][0]["conversations"][0]["contributor"]["model_id"] == "anthropic/claude-opus-4-6"
    # content_hash: murmur3 (x86, 32 bits) of the range's lines, in the form the spec's examples use.
    assert re.fullmatch(r"murmur3:[0-9a-f]{8}", convs[0]["ranges"][0]["content_hash"])
    from lit.formats.agent_trace import murmur3_32

    assert murmur3_32(b"The quick brown fox jumps over the lazy dog") == 0x2E4FF723  # the reference's value
    text = git(story.repo, "show", f"{story.commits['shout']}:shout.py").splitlines()
    assert shout["files"][0]["conversations"][0]["ranges"][0]["content_hash"] == \
        f"murmur3:{murmur3_32(chr(10).join(text[0:2]).encode()):08x}"
    # A reader can come back to lit: the threads and steps, under a reverse-DNS key.
    meta = lines["metadata"]["dev.lit"]
    assert meta["threads"][0]["id"] == story.threads["lines"]
    assert meta["line_map"] == {"wordcount.py": [[8, 11, story.steps["lines"], story.threads["lines"]]]}
    # Deterministic: the same records again (so --write can add each once).
    again = lit(story.repo, "export", "main~4..main", "--format", "agent-trace", db=db).stdout
    assert again == proc.stdout


def test_export_write_appends_each_record_once(story):
    db = story.db_path
    out = lit(story.repo, "export", "main~4..main", "--format", "agent-trace", "--write", db=db).stdout
    assert "3 of 3 records added to .agent-trace/traces.jsonl" in out
    out = lit(story.repo, "export", "main~4..main", "--format", "agent-trace", "--write", db=db).stdout
    assert "0 of 3 records added" in out
    traces = (story.repo / ".agent-trace" / "traces.jsonl").read_text().splitlines()
    assert len(traces) == 3
    for line in traces:
        check_record(json.loads(line))


def test_export_of_an_unknown_rev_is_one_line(story):
    proc = lit(story.repo, "export", "no-such-branch", "--format", "agent-trace", db=story.db_path, ok=False)
    assert proc.returncode == 1 and proc.stderr.strip().count("\n") == 0 and "not a commit" in proc.stderr
    proc = lit(story.repo, "export", story.commits["person"], "--format", "agent-trace", db=story.db_path, ok=False)
    assert proc.returncode == 1 and "no commit of" in proc.stderr


def test_round_trip_gives_the_same_kinds_and_models_per_line(story, tmp_path):
    """lit -> Agent Trace -> a fresh DB and a clone -> lit blame: the same kinds and models per line."""
    traces = tmp_path / "traces.jsonl"
    lit(story.repo, "export", "main~4..main", "--format", "agent-trace", "-o", str(traces), db=story.db_path)
    before = {p: per_line(blame_json(story.repo, p, story.db_path)) for p in ("wordcount.py", "shout.py")}
    assert {m for lines in before.values() for _, kind, m, _ in lines if kind == "step"} == \
        {"claude-sonnet-4-6", "claude-opus-4-6"}
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--no-tags", str(story.repo), str(clone))  # no notes travel with a clone
    fresh = tmp_path / "fresh.db"
    out = lit(clone, "import", "agent-trace", str(traces), db=fresh).stdout
    assert "3 threads added" in out
    after = {p: per_line(blame_json(clone, p, fresh)) for p in ("wordcount.py", "shout.py")}
    assert after == before
    # The reasoning stayed in lit: the page says the source had none, rather than nothing.
    shout = blame_json(clone, "shout.py", fresh)
    assert shout[0]["why"] == "no reasoning recorded in the source (agent-trace)" and shout[2]["kind"] == "human"
    # Idempotent, from stdin too.
    again = lit(clone, "import", "agent-trace", "-", db=fresh, input=traces.read_text()).stdout
    assert "0 threads added, 3 already in the DB" in again
    assert per_line(blame_json(clone, "shout.py", fresh)) == before["shout.py"]


# --- Agent Trace in, from another tool -----------------------------------------------------------------


def test_import_of_another_tools_records_and_hostile_ones(tmp_path):
    repo = init_repo(tmp_path / "repo")
    body = "".join(f"line {n} of the parser\n" for n in range(1, 11))
    sha = commit_files(repo, {"src/parser.ts": body}, "Add the parser")
    from lit.formats.agent_trace import content_hash

    lines = body.splitlines()
    record = {
        "version": "0.1.0", "id": "550e8400-e29b-41d4-a716-446655440000", "timestamp": "2026-01-23T14:30:00Z",
        "vcs": {"type": "git", "revision": sha}, "tool": {"name": "cursor", "version": "2.4.0"},
        "files": [{"path": "src/parser.ts", "conversations": [
            {"url": "https://api.cursor.com/v1/conversations/12345",
             "contributor": {"type": "ai", "model_id": "anthropic/claude-opus-4-5-20251101"},
             "ranges": [{"start_line": 1, "end_line": 4, "content_hash": content_hash(lines[0:4])},
                        {"start_line": 5, "end_line": 5, "contributor": {"type": "human"}},
                        {"start_line": 6, "end_line": 7, "content_hash": "murmur3:00000000"},
                        {"start_line": 8, "end_line": 9223372036854775807}],
             "related": [{"type": "session", "url": "https://api.cursor.com/v1/sessions/67890"}]},
            {"contributor": {"type": "ai", "model_id": "openai/gpt-4o"},
             "ranges": [{"start_line": 9, "end_line": 10}]},
            {"contributor": {"type": "unknown"}, "ranges": [{"start_line": 10, "end_line": 10}]}]}],
        "metadata": {"confidence": 0.95, "dev.cursor": {"workspace_id": "ws-abc123"}},
    }
    hostile = [
        "{not json",
        json.dumps({**record, "id": "elsewhere", "vcs": {"type": "git", "revision": "f" * 40}}),
        json.dumps({**record, "id": "flag", "vcs": {"type": "git", "revision": "--output=/tmp/x"}}),
        json.dumps({"version": "1.0", "files": "all of them"}),
        json.dumps([1, 2, 3]),
    ]
    path = tmp_path / "traces.jsonl"
    path.write_text("\n".join([json.dumps(record), *hostile]) + "\n")
    db = tmp_path / "lit.db"
    proc = lit(repo, "import", "agent-trace", str(path), db=db)
    assert "2 threads added" in proc.stdout
    warnings = proc.stderr.splitlines()
    assert all(w.startswith("lit import: warning: ") for w in warnings)
    said = proc.stderr
    assert "not JSON" in said and "not a commit of this repository" in said and "no version" not in said
    assert "9223372036854775807 is outside the file's 10 lines; dropped" in said
    assert "lines 6-7 do not match their content_hash; dropped" in said
    got = {b["line"]: (b["kind"], b["model"], b["tool"]) for b in blame_json(repo, "src/parser.ts", db)}
    assert got[1] == got[4] == ("step", "claude-opus-4-5-20251101", "cursor")
    assert got[5][0] == "human"
    assert got[6][0] == got[7][0] == got[8][0] == "thread"  # dropped: not in the line map
    assert got[9] == ("step", "gpt-4o", "cursor")
    assert got[10][0] == "thread"  # unknown: a later range says nobody is known for it
    assert "2 already in the DB" in lit(repo, "import", "agent-trace", str(path), db=db).stdout


def test_import_agent_trace_errors_are_one_line(tmp_path):
    repo = init_repo(tmp_path / "repo")
    commit_files(repo, {"a.txt": "a\n"}, "a")
    db = tmp_path / "lit.db"
    for args in (["import", "agent-trace", str(tmp_path / "missing.jsonl")], ["import", "agent-trace"]):
        proc = lit(repo, *args, db=db, ok=False)
        assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


# --- git-ai in --------------------------------------------------------------------------------------------

MAIN_RS = "".join(f"fn line_{n}() {{}}\n" for n in range(1, 13))
LIB_RS = "".join(f"pub mod m{n};\n" for n in range(1, 6))


def _git_ai_repo(tmp_path) -> tuple[Path, str, str]:
    repo = init_repo(tmp_path / "repo")
    base = commit_files(repo, {"README.md": "hello\n"}, "Start", when=BASE_TIME)
    sha = commit_files(repo, {"src/main.rs": MAIN_RS, "src/my file.rs": LIB_RS}, "Add main and my file",
                       when=BASE_TIME + 60)
    note = f"""src/main.rs
  s_c9883b05a2487d::t_9f8e7d6c5b4a32 1-3,5
  s_c9883b05a2487d::t_a1b2c3d4e5f678 4
  h_31dce776f88375 6-7
  abcd1234abcd1234 8-9
  abcd1234abcd1234 10-9223372036854775807
  zzzz 11
"src/my file.rs"
  s_e7f2a90b31cc48::t_deadbeef012345 1-5
---
{{
  "schema_version": "authorship/3.0.0",
  "git_ai_version": "1.4.5",
  "base_commit_sha": "{base}",
  "prompts": {{
    "abcd1234abcd1234": {{
      "agent_id": {{"tool": "cursor", "id": "old_session_id", "model": "gpt-4"}},
      "human_author": "Developer <dev@example.com>",
      "messages": [
        {{"type": "user", "text": "Add two helpers at the end"}},
        {{"type": "assistant", "text": "I'll add line_8 and line_9 as stubs for now."}}
      ],
      "total_additions": 2, "total_deletions": 0, "accepted_lines": 2, "overriden_lines": 0
    }}
  }},
  "humans": {{"h_31dce776f88375": {{"author": "Developer <dev@example.com>"}}}},
  "sessions": {{
    "s_c9883b05a2487d": {{"agent_id": {{"tool": "claude", "id": "conv_abc123",
                                       "model": "claude-sonnet-4-5-20250514"}},
                         "human_author": "dev@example.com"}},
    "s_e7f2a90b31cc48": {{"agent_id": {{"tool": "codex", "id": "conv_def456", "model": "gpt-5-codex"}},
                         "custom_attributes": {{"team": "backend"}}}}
  }}
}}
"""
    git(repo, "notes", "--ref=ai", "add", "-F", "-", sha, input=note)
    return repo, base, sha


def test_git_ai_note_with_sessions_humans_and_a_legacy_prompt_is_blamed_line_by_line(tmp_path):
    repo, _base, sha = _git_ai_repo(tmp_path)
    db = tmp_path / "lit.db"
    proc = lit(repo, "import", "git-ai", db=db)
    assert "3 threads added" in proc.stdout
    # The hostile range is dropped, not expanded; the unknown key skipped; both said in one line each.
    assert "range 10-9223372036854775807 is outside the file's 12 lines; dropped" in proc.stderr
    assert "'zzzz' is not a session, human or prompt key" in proc.stderr
    got = {b["line"]: b for b in blame_json(repo, "src/main.rs", db)}
    expect = {1: ("step", "claude", "claude-sonnet-4-5-20250514"), 4: ("step", "claude", "claude-sonnet-4-5-20250514"),
              5: ("step", "claude", "claude-sonnet-4-5-20250514"), 6: ("human", None, None), 7: ("human", None, None),
              8: ("step", "cursor", "gpt-4"), 9: ("step", "cursor", "gpt-4"),
              10: ("thread", None, None), 11: ("thread", None, None), 12: ("thread", None, None)}
    for n, (kind, tool, model) in expect.items():
        assert (got[n]["kind"], got[n]["tool"], got[n]["model"]) == (kind, tool, model), n
    # Two checkpoints of one session: one thread, two steps; the legacy prompt kept its reasoning.
    assert got[1]["thread"] == got[4]["thread"] and got[1]["step"] != got[4]["step"]
    assert got[1]["why"] == "no reasoning recorded in the source (git-ai)"
    assert got[8]["why"] == "I'll add line_8 and line_9 as stubs for now."
    quoted = blame_json(repo, "src/my file.rs", db)
    assert {(b["kind"], b["tool"], b["model"]) for b in quoted} == {("step", "codex", "gpt-5-codex")}
    # The terminal view says where it came from.
    view = lit(repo, "blame", "src/main.rs", "-L", "1,2", db=db).stdout
    assert "claude (claude-sonnet-4-5-20250514, from git-ai) · no reasoning recorded in the source" in view
    # weave and pr read the same threads.
    page = tmp_path / "page.html"
    lit(repo, "weave", sha, "-o", str(page), db=db)
    assert "No reasoning recorded in the source (git-ai" in page.read_text()
    pr = lit(repo, "pr", "HEAD~1..HEAD", db=db).stdout
    assert "gpt-5-codex" in pr and "claude-sonnet-4-5-20250514" in pr
    # Idempotent.
    again = lit(repo, "import", "git-ai", db=db).stdout
    assert "0 threads added, 3 already in the DB" in again
    # And on to Agent Trace: git-ai's attribution in the field's format.
    record = json.loads(lit(repo, "export", sha, "--format", "agent-trace", db=db).stdout)
    check_record(record)
    main = next(f for f in record["files"] if f["path"] == "src/main.rs")
    assert [(c["contributor"], [(r["start_line"], r["end_line"]) for r in c["ranges"]])
            for c in main["conversations"]] == [
        ({"type": "ai", "model_id": "anthropic/claude-sonnet-4-5-20250514"}, [(1, 3), (4, 4), (5, 5)]),
        ({"type": "ai", "model_id": "openai/gpt-4"}, [(8, 9)]),
        ({"type": "human"}, [(6, 7)])]


def test_git_ai_old_json_notes_and_damaged_notes(tmp_path):
    repo = init_repo(tmp_path / "repo")
    one = commit_files(repo, {"app.py": "a = 1\nb = 2\nc = 3\n"}, "one", when=BASE_TIME)
    two = commit_files(repo, {"app.py": "a = 1\nb = 2\nc = 3\nd = 4\n"}, "two", when=BASE_TIME + 60)
    three = commit_files(repo, {"app.py": "a = 1\nb = 2\nc = 3\nd = 4\ne = 5\n"}, "three", when=BASE_TIME + 120)
    old = {"files": {"app.py": {"file": "app.py", "authors": [
        {"author": "Claude", "lines": [[1, 2]], "agent_metadata": None},
        {"author": "Ann Person", "lines": [3], "agent_metadata": None}]}},
        "schema_version": "authorship/0.0.1"}
    blob = git(repo, "hash-object", "-w", "--stdin", input=json.dumps(old))
    git(repo, "update-ref", f"refs/ai/authorship/{one}", blob)
    git(repo, "notes", "--ref=ai", "add", "-m", "not an authorship log at all", two)
    git(repo, "notes", "--ref=ai", "add", "-F", "-", three,
        input='app.py\n  abcd1234abcd1234 5\n---\n{"schema_version": "authorship/3.0.0", "prompts": [1]}\n')
    db = tmp_path / "lit.db"
    proc = lit(repo, "import", "git-ai", db=db)
    assert "1 threads added" in proc.stdout
    assert f"git-ai note on {two[:12]}: no '---' line" in proc.stderr
    assert f"git-ai note on {three[:12]}: abcd1234abcd1234 has no record in its metadata; skipped" in proc.stderr
    got = [(b["line"], b["kind"], b["tool"]) for b in blame_json(repo, "app.py", db)]
    assert got[:3] == [(1, "step", "Claude"), (2, "step", "Claude"), (3, "human", None)]
    assert got[3][1] == got[4][1] == "commit"  # nothing imported for them


# --- relink by content ----------------------------------------------------------------------------------

PARSER_V1 = """def parse(text):
    items = []
    for raw in text.split(","):
        value = raw.strip()
        if value:
            items.append(value)
    return items
"""
PARSER_V2 = PARSER_V1 + """

def parse_pairs(text):
    pairs = {}
    for item in parse(text):
        key, _, value = item.partition("=")
        pairs[key.strip()] = value.strip()
    return pairs
"""


def test_a_squash_merge_without_trailers_is_relinked_by_content(tmp_path):
    db = tmp_path / "lit.db"
    repo = init_repo(tmp_path / "repo")
    commit_files(repo, {"README.md": "parsers\n"}, "Start", when=BASE_TIME)
    git(repo, "checkout", "-q", "-b", "feature")
    t1, t2 = "1a2b3c4d5e6f", "2b3c4d5e6f7a"
    c1 = commit_files(repo, {"parse.py": PARSER_V1}, f"Add parse()\n\nLit-Thread: {t1}", when=BASE_TIME + 60)
    c2 = commit_files(repo, {"parse.py": PARSER_V2}, f"Add parse_pairs()\n\nLit-Thread: {t2}", when=BASE_TIME + 120)
    add_db_thread(db, thread=t1, commit=c1, repo_root=str(repo), started_at=BASE_TIME + 30, steps=[
        {"kind": "prompt", "text": "Write parse()."},
        {"kind": "thinking", "text": "Split on commas and drop empty items."},
        {"kind": "tool_call", "tool_name": "Write", "tool_use_id": "toolu_1",
         "tool_input": {"file_path": "parse.py", "content": PARSER_V1}}],
        line_map={"parse.py": [[1, 7, f"{t1}.3"]]})
    add_db_thread(db, thread=t2, commit=c2, repo_root=str(repo), session="c2d3e4f5a6b7", model="claude-opus-4-6",
                  started_at=BASE_TIME + 90, steps=[
                      {"kind": "prompt", "text": "Add parse_pairs()."},
                      {"kind": "thinking", "text": "Reuse parse() and split each item on the first '='."},
                      {"kind": "tool_call", "tool_name": "Edit", "tool_use_id": "toolu_2",
                       "tool_input": {"file_path": "parse.py", "new_string": "def parse_pairs"}}],
                  line_map={"parse.py": [[8, 15, f"{t2}.3"]]})
    # The host squashes the branch into one commit whose message names no thread, then deletes it.
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--squash", "feature")
    git(repo, "commit", "-q", "-m", "Parsers (#12)", when=BASE_TIME + 600)
    squash = git(repo, "rev-parse", "HEAD")
    git(repo, "branch", "-q", "-D", "feature")
    before = blame_json(repo, "parse.py", db)
    assert {b["kind"] for b in before} == {"commit"}
    out = lit(repo, "relink", db=db).stdout
    assert f"{squash[:10]}  thread {t1}  relinked by content (no trailer): 7 of its 7 lines found (100%)" in out
    assert f"{squash[:10]}  thread {t2}  relinked by content (no trailer): 6 of its 6 lines found (100%)" in out
    assert f"{squash[:10]}  15 of its 15 added lines given to those threads' steps" in out
    after = blame_json(repo, "parse.py", db)
    assert [b["step"] for b in after] == [f"{t1}.3"] * 7 + [f"{t2}.3"] * 8
    assert after[0]["why"] == "Split on commas and drop empty items."
    assert after[9]["model"] == "claude-opus-4-6"
    # The note travels: a clone with the notes blames the same without the DB.
    assert git(repo, "notes", "--ref=lit", "list", squash)
    # Run again: nothing more to do.
    assert "relinked by content" not in lit(repo, "relink", db=db).stdout


def test_relink_by_content_needs_most_of_a_threads_lines(tmp_path):
    db = tmp_path / "lit.db"
    repo = init_repo(tmp_path / "repo")
    commit_files(repo, {"README.md": "parsers\n"}, "Start", when=BASE_TIME)
    git(repo, "checkout", "-q", "-b", "feature")
    t1 = "3c4d5e6f7a8b"
    c1 = commit_files(repo, {"parse.py": PARSER_V2}, f"Add parsers\n\nLit-Thread: {t1}", when=BASE_TIME + 60)
    add_db_thread(db, thread=t1, commit=c1, repo_root=str(repo), steps=[
        {"kind": "prompt", "text": "Write the parsers."},
        {"kind": "tool_call", "tool_name": "Write", "tool_use_id": "toolu_1",
         "tool_input": {"file_path": "parse.py", "content": PARSER_V2}}],
        line_map={"parse.py": [[1, 15, f"{t1}.2"]]})
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-q", "-D", "feature")
    # A person's commit that shares a few of its lines: too few to say it is the thread's work.
    commit_files(repo, {"other.py": "def parse(text):\n    items = []\n    return items\n"}, "Stub",
                 when=BASE_TIME + 600)
    out = lit(repo, "relink", db=db).stdout
    assert "relinked by content" not in out


def test_relink_by_content_from_notes_alone(tmp_path):
    """A clone with the notes and no DB: the squash commit gets a note built from the threads' notes."""
    from lit_fixtures import add_note, make_note

    db = tmp_path / "none.db"  # never created: lit works from the notes
    repo = init_repo(tmp_path / "repo")
    commit_files(repo, {"README.md": "parsers\n"}, "Start", when=BASE_TIME)
    git(repo, "checkout", "-q", "-b", "feature")
    t1 = "4d5e6f7a8b9c"
    c1 = commit_files(repo, {"parse.py": PARSER_V2}, f"Add parsers\n\nLit-Thread: {t1}", when=BASE_TIME + 60)
    steps = {f"{t1}.2": {"seq": 2, "kind": "tool_call", "tool": "Write", "input": {"file_path": "parse.py"},
                         "why": "One module for both parsers.", "prompt": f"{t1}.1"}}
    add_note(repo, c1, make_note(c1, t1, files={"parse.py": [[1, 15, f"{t1}.2"]]}, steps=steps,
                                 prompts=[{"step": f"{t1}.1", "text": "Write the parsers."}]))
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--squash", "feature")
    git(repo, "commit", "-q", "-m", "Parsers (#3)", when=BASE_TIME + 600)
    squash = git(repo, "rev-parse", "HEAD")
    git(repo, "branch", "-q", "-D", "feature")
    out = lit(repo, "relink", db=db).stdout
    assert f"{squash[:10]}  thread {t1}  relinked by content (no trailer): 13 of its 13 lines found (100%)" in out
    note = json.loads(git(repo, "notes", "--ref=lit", "show", squash))
    assert note["thread"] == t1 and note["relinked_from"] == c1 and note["files"] == {"parse.py": [[1, 15, f"{t1}.2"]]}
    after = blame_json(repo, "parse.py", db)
    assert {(b["kind"], b["step"], b["why"]) for b in after} == {("step", f"{t1}.2", "One module for both parsers.")}
    assert not db.exists()


def test_hostile_names_and_sizes_are_said_safely(tmp_path):
    repo = init_repo(tmp_path / "repo")
    sha = commit_files(repo, {"a.txt": "one line here\n"}, "a")
    evil = "src/\x1b]0;pwned\x07name.py"
    note = (f"{evil}\n  abcd1234abcd1234 1\na.txt\n  abcd1234abcd1234 1,1-1,1-1\n"
            + "".join("  abcd1234abcd1234 1-1\n" for _ in range(3))
            + '---\n{"schema_version": "authorship/3.0.0", "prompts": {"abcd1234abcd1234": {"agent_id": '
            '{"tool": "cur\\u001b[31msor", "id": "x", "model": "gpt-4\\u001b[2J"}}}}\n')
    git(repo, "notes", "--ref=ai", "add", "-F", "-", sha, input=note)
    db = tmp_path / "lit.db"
    proc = lit(repo, "import", "git-ai", db=db)
    assert "\x1b" not in proc.stdout + proc.stderr
    assert "the commit has no such file" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    got = blame_json(repo, "a.txt", db)
    assert got[0]["kind"] == "step" and got[0]["model"] == "gpt-4\x1b[2J"  # kept as data, JSON-escaped
    view = lit(repo, "blame", "a.txt", db=db).stdout
    assert "\x1b" not in view and "(gpt-4, from git-ai)" in view  # the whole sequence goes
    # A record whose lit ids are not lit's shapes gets ids of its own; a thread id is never a path.
    record = {"version": "0.1", "id": "r1", "timestamp": "2026-01-01T00:00:00Z",
              "vcs": {"type": "git", "revision": sha},
              "files": [{"path": "a.txt", "conversations": [{"contributor": {"type": "ai", "model_id": "x/y"},
                                                             "ranges": [{"start_line": 1, "end_line": 1}]}]}],
              "metadata": {"dev.lit": {"threads": [{"id": "../../etc"}],
                                       "line_map": {"a.txt": [[1, 1, "../../etc.1", "../../etc"]]}}}}
    db2 = tmp_path / "lit2.db"
    lit(repo, "import", "agent-trace", "-", db=db2, input=json.dumps(record))
    got = blame_json(repo, "a.txt", db2)
    assert re.fullmatch(r"[0-9a-f]{12}", got[0]["thread"]) and got[0]["model"] == "y"


def _snapshot(repo: Path, parent: str | None, files: dict[str, str], tmp: Path) -> str:
    """A snapshot commit as lit's snapshots are: the tree of HEAD plus `files`, on a chain."""
    env = {**os.environ, "GIT_INDEX_FILE": str(tmp / "snapshot-index")}
    subprocess.run(["git", "read-tree", "HEAD"], cwd=repo, env=env, check=True)
    for path, content in files.items():
        blob = git(repo, "hash-object", "-w", "--stdin", input=content)
        subprocess.run(["git", "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}"], cwd=repo, env=env,
                       check=True)
    tree = subprocess.run(["git", "write-tree"], cwd=repo, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()
    return git(repo, "commit-tree", tree, *(["-p", parent] if parent else []), "-m", "lit snapshot", when=BASE_TIME)


def test_a_pending_threads_work_committed_without_hooks_is_relinked_by_content(tmp_path):
    """The session ended with its thread pending; a person committed its work without lit's hooks
    (no trailer), then edited one line. relink finds the thread from its snapshots' lines."""
    from lit import store

    db_path = tmp_path / "lit.db"
    repo = init_repo(tmp_path / "repo")
    commit_files(repo, {"README.md": "parsers\n"}, "Start", when=BASE_TIME - 60)
    start = _snapshot(repo, None, {}, tmp_path)
    after_write = _snapshot(repo, start, {"parse.py": PARSER_V2}, tmp_path)
    tid, sid = "5e6f7a8b9c0d", "e5f6a7b8c9d0"
    db = store.connect(db_path)
    with db.conn:
        db["sessions"].insert({"id": sid, "started_at": BASE_TIME, "argv": "[]", "repo_root": str(repo),
                               "agent": "claude-cli/2.1.197"})
        db["threads"].insert({"id": tid, "session_id": sid, "seq": 1, "started_at": BASE_TIME, "status": "pending",
                              "repo_root": str(repo), "title": "Write the parsers."})
        for seq, row in enumerate([
                {"kind": "prompt", "text": "Write the parsers."},
                {"kind": "thinking", "text": "Both parsers in one module; parse_pairs() reuses parse()."},
                {"kind": "tool_call", "tool_name": "Write", "tool_use_id": "toolu_9",
                 "tool_input": json.dumps({"file_path": "parse.py", "content": PARSER_V2})}], 1):
            db["steps"].insert({"id": f"{tid}.{seq}", "thread_id": tid, "session_id": sid, "seq": seq,
                                "created_at": BASE_TIME + seq, "model": "claude-sonnet-4-6", **row})
        for seq, (commit, steps) in enumerate([(start, []), (after_write, [f"{tid}.3"])], 1):
            db["snapshots"].insert({"session_id": sid, "thread_id": tid, "seq": seq, "commit_sha": commit,
                                    "reason": "turn", "step_ids": json.dumps(steps), "taken_at": BASE_TIME + seq})
    db.conn.close()
    edited = PARSER_V2.replace("    return items\n", "    return items  # never None\n")
    commit = commit_files(repo, {"parse.py": edited}, "Add the parsers", when=BASE_TIME + 300,
                          author=("Ann Person", "ann@example.com"))
    out = lit(repo, "relink", db=db_path).stdout
    assert f"{commit[:10]}  thread {tid}  relinked by content (no trailer): 12 of its 13 lines found (92%); " \
           "it was pending" in out
    assert f"{commit[:10]}  14 of its 15 added lines given to those threads' steps" in out
    got = [(b["line"], b["kind"], b["step"]) for b in blame_json(repo, "parse.py", db_path)]
    assert got[6] == (7, "human", None) and {k for _, k, _ in got[:6] + got[7:]} == {"step"}
    why = blame_json(repo, "parse.py", db_path)[0]["why"]
    assert why == "Both parsers in one module; parse_pairs() reuses parse()."


def test_line_ranges_are_never_expanded_past_the_file():
    """Whatever numbers a note holds, what is kept lies inside the file; nothing is expanded to check."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from lit.importers.attribution import Result, checked_ranges
    from lit.importers.git_ai import NoteError, parse_ranges

    number = st.one_of(st.integers(0, 40), st.integers(0, 10**20))
    spec = st.lists(st.tuples(number, st.one_of(st.none(), number)), min_size=1, max_size=8).map(
        lambda parts: ",".join(f"{a}" if b is None else f"{a}-{b}" for a, b in parts))

    @settings(max_examples=300, deadline=None)
    @given(spec, st.integers(0, 30))
    def check(text: str, lines: int) -> None:
        try:
            ranges = parse_ranges(text)
        except NoteError:
            return  # a number over 20 digits: not read at all
        kept = checked_ranges(ranges, lines, "f", Result())
        assert all(1 <= a <= b <= lines for a, b in kept)
        assert set(kept) <= set(ranges)

    check()
    assert checked_ranges(parse_ranges("1-9223372036854775807"), 12, "f", Result()) == []
