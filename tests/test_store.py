"""The DB: migrations applied once, concurrent first opens, search over steps."""

from __future__ import annotations

import json
import subprocess
import sys

from lit import store
from lit.redact import redact_obj


def test_migrations_apply_once_and_are_recorded(tmp_path):
    db = store.connect(tmp_path / "lit.db")
    names = [r[0] for r in db.execute("SELECT name FROM _lit_migrations ORDER BY name")]
    assert names == sorted(fn.__name__ for fn in store.MIGRATIONS)
    assert store.migrate(db) == []
    assert {"sessions", "exchanges", "threads", "steps", "snapshots", "line_map"} <= set(db.table_names())


def test_eight_processes_opening_a_new_db_at_once(tmp_path):
    path = tmp_path / "lit.db"
    code = "import sys; from lit import store; store.connect(sys.argv[1]); print('ok')"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(8)]
    results = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    db = store.connect(path)
    assert db.execute("SELECT COUNT(*) FROM _lit_migrations").fetchone()[0] == len(store.MIGRATIONS)


def test_steps_are_searchable(tmp_path):
    db = store.connect(tmp_path / "lit.db")
    with db.conn:
        db["sessions"].insert({"id": "s1", "started_at": 1.0})
        thread = store.open_thread(db, "s1", None)
        db["steps"].insert({"id": f"{thread}.1", "thread_id": thread, "seq": 1, "kind": "thinking",
                            "text": "The parser drops unknown blocks; keep them raw instead."})
    hits = db.execute("SELECT rowid FROM steps_fts WHERE steps_fts MATCH 'unknown parser'").fetchall()
    assert len(hits) == 1
    assert db["steps"].detect_fts() == "steps_fts"


def test_messages_are_stored_once_as_the_recorder_stores_them(tmp_path):
    """A conversation as an agent sends it: each request resends the history. Stored once by key,
    forks share their prefix, a block a step holds is a reference, content is redacted on the way in."""
    db = store.connect(tmp_path / "lit.db")
    secret = "sk-ant-api03-" + "St0re" * 16 + "-AA"
    ask = {"role": "user", "content": [{"type": "text", "text": f"use the key {secret}"}]}
    call = {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Read",
                                              "input": {"file_path": "a.py"}}]}
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "x = 1"}]}
    with db.conn:
        db["steps"].insert({"id": "t1.2", "thread_id": "t1", "seq": 2, "kind": "tool_call", "tool_name": "Read",
                            "tool_use_id": "toolu_1", "tool_input": json.dumps({"file_path": "a.py"})})
    written: set[str] = set()  # the recorder's memory of what it wrote
    first = [ask]
    second = [ask, call, result]
    fork = [ask, {"role": "assistant", "content": [{"type": "text", "text": "No."}]}]
    with db.conn:
        assert store.put_messages(db, first, store.message_keys(first), stored=written, prepare=redact_obj) == 1
        # The step holds the tool call: the message keeps a reference to it.
        contents = [ask["content"], [{"$step": "t1.2"}], result["content"]]
        assert store.put_messages(db, second, store.message_keys(second), contents, stored=written,
                                  prepare=redact_obj) == 2
        assert store.put_messages(db, fork, store.message_keys(fork), stored=written, prepare=redact_obj) == 1
        # Another writer (a second process) that has not seen these keys adds nothing either.
        assert store.put_messages(db, second, store.message_keys(second), contents, prepare=redact_obj) == 0
    assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 4
    chain = store.message_chain(db, store.message_keys(second)[-1])
    assert [m["role"] for m in chain] == ["user", "assistant", "user"]
    assert chain[1] == call and chain[2] == result
    assert secret not in json.dumps(chain) and "[REDACTED:anthropic-key]" in chain[0]["content"][0]["text"]
    assert store.message_keys(fork)[0] == store.message_keys(second)[0]
    depths = [r[0] for r in db.execute("SELECT depth FROM messages ORDER BY depth")]
    assert depths == [0, 1, 1, 2]
    # A request that sends only what is new after a stored response (the Responses API's
    # previous_response_id) continues that chain.
    tip = store.message_keys(second)[-1]
    more = [{"role": "user", "content": [{"type": "text", "text": "and now?"}]}]
    with db.conn:
        keys = store.message_keys(more, parent=tip)
        assert store.put_messages(db, more, keys, parent=tip, stored=written, prepare=redact_obj) == 1
    assert keys == store.message_keys([*second, *more])[-1:]
    assert [m["role"] for m in store.message_chain(db, keys[0])] == ["user", "assistant", "user", "user"]
    assert db.execute("SELECT depth FROM messages WHERE key = ?", keys).fetchone()[0] == 3
