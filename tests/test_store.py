"""The DB: migrations applied once, concurrent first opens, search over steps."""

from __future__ import annotations

import subprocess
import sys

from lit import store


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


def test_message_keys_chain_and_share_prefixes(tmp_path):
    db = store.connect(tmp_path / "lit.db")
    a = {"role": "user", "content": [{"type": "text", "text": "hi"}]}
    b = {"role": "assistant", "content": [{"type": "text", "text": "hello"}]}
    with db.conn:
        k1 = store.put_messages(db, [a, b])
        k2 = store.put_messages(db, [a, {"role": "assistant", "content": [{"type": "text", "text": "yo"}]}])
    assert k1[0] == k2[0] and k1[1] != k2[1]
    assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 3
    assert store.message_chain(db, k1[1]) == [a, b]
