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


def _thread_of_steps(path) -> tuple:
    """A DB holding one thread of STEPS, written as the recorder writes them (store.packed_step)."""
    db = store.connect(path)
    with db.conn:
        db["sessions"].insert({"id": "s1", "started_at": 1.0})
        thread = store.open_thread(db, "s1", None)
        for seq, s in enumerate(STEPS, 1):
            db["steps"].insert(store.packed_step({"id": f"{thread}.{seq}", "thread_id": thread, "session_id": "s1",
                                                  "seq": seq, **s}))
    return db, thread


OUTPUT = "".join(f"{i:>5}  def handler_{i}(request): return render(request, 'page_{i}.html')\n" for i in range(200))
STEPS = [
    {"kind": "prompt", "text": "Make the parser keep unknown blocks"},
    {"kind": "thinking", "text": "The parser drops unknown blocks; keep them raw instead."},
    {"kind": "tool_call", "tool_name": "Read", "tool_use_id": "toolu_1",
     "tool_input": json.dumps({"file_path": "views.py"})},
    {"kind": "tool_result", "tool_use_id": "toolu_1", "text": OUTPUT},
    {"kind": "tool_result", "tool_use_id": "toolu_2", "text": "handler_7 is short output"},
    {"kind": "text", "text": "Done: handlers kept."},
]


def search(db, words: str) -> list[str]:
    return [r[0] for r in db.execute("SELECT s.id FROM steps_fts JOIN steps s ON s.rowid = steps_fts.rowid"
                                     " WHERE steps_fts MATCH ? ORDER BY s.seq", [words])]


def test_search_finds_prompts_thinking_text_and_tool_names_not_tool_output(tmp_path):
    db, thread = _thread_of_steps(tmp_path / "lit.db")
    assert search(db, "unknown parser") == [f"{thread}.1", f"{thread}.2"]
    assert search(db, "handlers") == [f"{thread}.6"]
    assert search(db, "Read") == [f"{thread}.3"]  # a tool call, by its tool's name
    assert search(db, "handler") == search(db, "views") == search(db, "render") == []  # inputs and results
    assert db["steps"].detect_fts() == "steps_fts"  # Datasette's search box finds it
    # Moving steps to another thread (recorder._fold_into_bound) and deleting them keep the index right.
    with db.conn:
        db.execute("UPDATE steps SET thread_id = 'other' WHERE thread_id = ?", [thread])
    assert len(search(db, "parser")) == 2
    with db.conn:
        db.execute("DELETE FROM steps WHERE kind = 'thinking'")
    assert len(search(db, "parser")) == 1
    db.execute("INSERT INTO steps_fts(steps_fts, rank) VALUES('integrity-check', 0)")


def test_a_long_tool_result_is_stored_compressed_and_read_as_text(tmp_path):
    db, thread = _thread_of_steps(tmp_path / "lit.db")
    stored = dict(db.execute("SELECT seq, text FROM steps").fetchall())
    assert isinstance(stored[4], bytes) and len(stored[4]) < len(OUTPUT) / 4
    assert all(isinstance(stored[n], str) for n in (1, 2, 5, 6))  # prose, and short output, stay text
    assert [s["text"] for s in store.thread_steps(db, thread)] == [s.get("text") for s in STEPS]
    assert store.step_text(store.pack_text("context", OUTPUT)) == OUTPUT
    assert store.pack_text("thinking", OUTPUT) == OUTPUT


def test_a_db_of_an_older_lit_is_packed_and_reindexed_and_reads_the_same(tmp_path):
    """A DB made before m004 (every step's text plain, tool inputs and results searchable): opened by
    this lit, its long tool results are compressed, its index holds prose and tool names only, and
    every step reads as it did."""
    path = tmp_path / "lit.db"
    db = store.connect(path)
    with db.conn:
        db.execute("DELETE FROM _lit_migrations WHERE name >= 'm004'")
        for trigger in ("steps_ai", "steps_ad", "steps_au"):
            db.execute(f"DROP TRIGGER {trigger}")
        db.execute("DROP TABLE steps_fts")
        db.execute('CREATE VIRTUAL TABLE "steps_fts" USING FTS5 ("text", "tool_name", "tool_input", '
                   'content="steps", detail=column)')
        db.execute("""CREATE TRIGGER "steps_ai" AFTER INSERT ON "steps" BEGIN
  INSERT INTO "steps_fts" (rowid, "text", "tool_name", "tool_input") VALUES (new.rowid, new."text", new."tool_name",
  new."tool_input");
END""")
        db["sessions"].insert({"id": "s1", "started_at": 1.0})
        thread = store.open_thread(db, "s1", None)
        for seq, s in enumerate(STEPS, 1):  # as an older lit wrote them: plain
            db["steps"].insert({"id": f"{thread}.{seq}", "thread_id": thread, "session_id": "s1", "seq": seq, **s})
    assert search(db, "handler") == [f"{thread}.4", f"{thread}.5"]
    db.conn.close()
    db = store.connect(path)
    assert "m004_pack_tool_output" in {r[0] for r in db.execute("SELECT name FROM _lit_migrations")}
    assert db.execute("SELECT typeof(text) FROM steps WHERE seq = 4").fetchone() == ("blob",)
    assert [s["text"] for s in store.thread_steps(db, thread)] == [s.get("text") for s in STEPS]
    assert search(db, "handler") == [] and search(db, "parser") == [f"{thread}.1", f"{thread}.2"]
    assert search(db, "Read") == [f"{thread}.3"]
    # The index holds less than the table by design: its own check, as PRAGMA integrity_check runs it.
    db.execute("INSERT INTO steps_fts(steps_fts, rank) VALUES('integrity-check', 0)")
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


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
