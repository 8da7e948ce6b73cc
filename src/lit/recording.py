"""The recorder's process: `lit record` starts it, the relay feeds it through the spool.

Why a process: the relay must never wait for the recorder, and in one Python process it does,
whatever the threads: the recorder holds the GIL for whole C calls (json.loads of a 1.4 MB
request, a regex over 300 kB), and the relay needs the GIL a dozen times before an answer's
first byte. Here the recorder has a core of its own; the relay only appends to a pipe.

    lit record                                   recorder process (python -m lit.recording)
    relay --spool pipe (records)---------------> reader thread: records -> exchanges -> Recorder
          --gate pipe ("<seq>\\n")-------------> snapshot thread: takes the turn's snapshot now
          <-done pipe ("<seq>\\n")-------------- (the relay holds the answer's end until then)
          --spool (Y: a hook's sync)-----------> reader -> writer thread: all before it written
          <-done pipe ("s<number>\\n")--------- (then the hook binds its thread)
    main  <-stdout (JSON lines)----------------- ready / progress / summary

The first spool record (S) carries the session's settings; the last (F) the child's exit code.
A spool that ends without F means lit was killed: what was spooled is written, the calls in
flight are kept as incomplete, and the session is left open, so `lit sessions` says
"interrupted". The process ignores the terminal's SIGINT and SIGHUP: lit tells it when to stop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from lit.proxy import spool as sp
from lit.errors import LitError
from lit.summary import Summary

HOOKS_OWNER = ".lit-pid"  # in a session's hooks folder: the pid of the lit that made it
WAIT_QUIETLY = 1.0  # seconds lit waits for the recorder at exit before it says so
WAIT_AT_MOST = 600.0  # then the recorder goes on in the background, and lit says so


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def clean_stale(db, repo_root: str | None) -> int:
    """What a lit killed with SIGKILL could not remove: its session's hooks folder in $TMPDIR and
    its snapshots' private index in .git/lit/ (with the session's excludes and lock files). Removed
    when the lit that made them is gone (or its session ended); returns how many were removed."""
    import tempfile  # noqa: PLC0415

    removed = 0
    for folder in Path(tempfile.gettempdir()).glob("lit-hooks-*"):
        try:
            pid = int((folder / HOOKS_OWNER).read_text())
        except (OSError, ValueError):
            continue  # not ours to judge: made by a lit that did not say whose it is
        if not _alive(pid):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    if repo_root:
        from lit.git.run import GitError, git_dir  # noqa: PLC0415
        from lit.git.snapshot import session_files  # noqa: PLC0415

        try:
            indexes = list((git_dir(repo_root) / "lit").glob("index-*"))
        except (GitError, OSError):
            indexes = []
        for index in indexes:
            session_id = index.name.removeprefix("index-")
            if not re.fullmatch(r"[0-9a-f]{12}", session_id):
                continue  # a lock or a file of another kind: never ours to remove
            row = db.execute("SELECT ended_at, pid FROM sessions WHERE id = ?", [session_id]).fetchone()
            if row is None:  # a session of another DB: removed only once it has long stopped using it
                stale = time.time() - index.stat().st_mtime > 3600
            else:
                stale = row[0] is not None or not (row[1] and _alive(row[1]))
            if stale:
                for path in session_files(index.parent, session_id):
                    path.unlink(missing_ok=True)
                removed += 1
    return removed


# --- lit's side ----------------------------------------------------------------------------------


class SnapshotGate:
    """The relay's side of the gate (see lit.proxy.relay.Gate): asks the recorder process for a
    snapshot and resolves a future when it says the snapshot is taken; and a hook's sync, resolved
    when the recorder says it has written everything spooled before it."""

    def __init__(self, ask_fd: int, done_fd: int):
        self.ask_fd, self.done_fd = ask_fd, done_fd
        self._waiting: dict[int, asyncio.Future] = {}
        self._syncs: dict[int, asyncio.Future] = {}
        self._buffer = b""
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    def _listen(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            os.set_blocking(self.done_fd, False)
            loop.add_reader(self.done_fd, self._read)
        return loop

    def sync(self, number: int) -> asyncio.Future | None:
        if self.closed:
            return None
        future = self._syncs[number] = self._listen().create_future()
        return future

    def open(self, seq: int) -> asyncio.Future | None:
        if self.closed:
            return None
        loop = self._listen()
        try:
            os.write(self.ask_fd, b"%d\n" % seq)
        except OSError:  # the recorder is gone: nothing to wait for
            self.closed = True
            return None
        future = self._waiting[seq] = loop.create_future()
        return future

    def _read(self) -> None:
        try:
            data = os.read(self.done_fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.closed = True
            assert self._loop is not None
            self._loop.remove_reader(self.done_fd)
            for future in [*self._waiting.values(), *self._syncs.values()]:
                if not future.done():
                    future.set_result(None)
            self._waiting.clear()
            self._syncs.clear()
            return
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            if line.startswith(b"s"):
                future = self._syncs.pop(int(line[1:]), None)
            else:
                future = self._waiting.pop(int(line), None)
            if future is not None and not future.done():
                future.set_result(True)

    def close(self) -> None:
        for fd in (self.ask_fd, self.done_fd):
            try:
                os.close(fd)
            except OSError:
                pass


class RecorderProcess:
    """Start the recorder process for one session; `spool` and `gate` are for the relay.

    Raises StoreError (one line) if the DB cannot be opened or written: before the agent starts."""

    def __init__(self, db_path: str | os.PathLike, *, argv: list[str], cwd: str, upstream: str | None,
                 session_id: str, port: int | None = None, snapshots: bool = True, pid: int | None = None):
        spool_r, spool_w = sp.pipe()
        ask_r, ask_w = os.pipe()
        done_r, done_w = os.pipe()
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lit.recording", str(ask_r), str(done_w)], stdin=spool_r,
            stdout=subprocess.PIPE, pass_fds=(ask_r, done_w), env=env, cwd=cwd)
        for fd in (spool_r, ask_r, done_w):
            os.close(fd)
        self.spool = sp.SpoolWriter(spool_w)
        settings = {"db": str(db_path), "argv": argv, "cwd": cwd, "upstream": upstream, "session_id": session_id,
                    "port": port, "snapshots": snapshots, "pid": pid or os.getpid()}
        self.spool.write_now(sp.START, 0, json.dumps(settings).encode())
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        said = json.loads(line) if line.strip() else {"error": "the recorder did not start"}
        if "error" in said:
            self.spool.close()
            self.proc.wait(10)
            os.close(ask_w)
            os.close(done_r)
            raise LitError(said["error"])
        self.session_id, self.db_path = session_id, db_path
        self.repo_root: str | None = said.get("repo_root")
        self.gate = SnapshotGate(ask_w, done_r) if said.get("snapshots") else None
        if self.gate is None:
            os.close(ask_w)
            os.close(done_r)

    def _count_written(self, summary: Summary) -> None:
        """What a recorder that stopped had written, read back from the DB."""
        from lit import store  # noqa: PLC0415 - only when the recorder could not say it

        try:
            db = store.connect(self.db_path, create=False)
            summary.exchanges = db.execute("SELECT COUNT(*) FROM exchanges WHERE session_id = ? AND status IS NOT NULL",
                                           [self.session_id]).fetchone()[0]
            summary.steps = db.execute("SELECT COUNT(*) FROM steps WHERE session_id = ?",
                                       [self.session_id]).fetchone()[0]
            db.close()
        except Exception:  # noqa: BLE001 - the counts stay unknown (0); the line says why
            pass

    def finish(self, exit_code: int | None, say: Callable[[str], None] | None = None) -> Summary:
        """Hand over the rest of the spool and the exit code; wait for the recorder to write it all
        (saying so once if that takes more than a second); returns what it recorded."""
        self.spool.close(exit_code)
        if self.gate:
            self.gate.close()
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        result: list[dict] = []

        def read() -> None:
            for line in stdout:
                said = json.loads(line)
                if "summary" in said:
                    result.append(said["summary"])

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(WAIT_QUIETLY)
        if reader.is_alive() and say:
            say("lit: writing the rest of the session to the DB...")
        reader.join(WAIT_AT_MOST)
        if not result:
            summary = Summary(self.session_id, repo_root=self.repo_root)
            summary.problems.append(f"the recorder did not finish writing in time (pid {self.proc.pid} goes on)"
                                    if self.proc.poll() is None else
                                    f"the recorder stopped (exit code {self.proc.returncode})")
            self._count_written(summary)
            return summary
        self.proc.wait(10)
        data = result[0]
        data["threads"] = [tuple(t) for t in data.get("threads", [])]
        return Summary(**data)


# --- the recorder's side ---------------------------------------------------------------------------


def _say(data: dict) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def _snapshots(rec, ask_fd: int, done_fd: int) -> None:
    """Take each turn's snapshot as soon as the relay asks (before the request is even parsed)."""
    with os.fdopen(ask_fd, "rb", buffering=0) as asks:
        buffer = b""
        while data := asks.read(4096):
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                seq = int(line)

                def captured(seq: int = seq) -> None:  # the relay lets the answer's end go
                    try:
                        os.write(done_fd, b"%d\n" % seq)
                    except OSError:
                        pass

                rec.capture_turn(f"{rec.session_id}.{seq}", captured)


def _say_synced(done_fd: int, number: bytes) -> None:
    try:
        os.write(done_fd, b"s" + number + b"\n")
    except OSError:
        pass


def main(argv: list[str]) -> int:
    for s in (signal.SIGINT, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    ask_fd, done_fd = int(argv[0]), int(argv[1])
    records = sp.read_records(0)
    try:
        kind, _, _, payload = next(records)
    except StopIteration:
        return 0
    if kind != sp.START:
        _say({"error": "lit: the recorder's spool did not start with the session"})
        return 1
    settings = json.loads(payload)
    from lit.recorder import Recorder  # noqa: PLC0415 - after the pipes are read: lit waits on "ready"
    from lit.store import StoreError  # noqa: PLC0415

    try:
        rec = Recorder(settings["db"], argv=settings["argv"], cwd=settings["cwd"], upstream=settings["upstream"],
                       session_id=settings["session_id"], snapshots=settings["snapshots"], pid=settings["pid"])
    except StoreError as e:
        _say({"error": str(e)})
        return 1
    if settings.get("port"):
        rec.set_port(settings["port"])
    try:
        clean_stale(rec.db, rec.repo_root)
    except Exception:  # noqa: BLE001 - tidying after an earlier lit must never stop this one
        pass
    _say({"ready": True, "repo_root": rec.repo_root, "snapshots": rec.snapshots})
    if rec.snapshots:
        threading.Thread(target=_snapshots, args=(rec, ask_fd, done_fd), name="lit-snapshots", daemon=True).start()
    else:
        os.close(ask_fd)
        os.close(done_fd)
    assembler = sp.ExchangeAssembler(rec.session_id, rec.request, rec.response, rec.websocket)
    exit_code: int | None = None
    finished = False
    for kind, seq, at, payload in records:
        if kind == sp.SYNC:  # only a relay with a gate (the done pipe, open while snapshots are) sends one
            if rec.snapshots:
                rec.sync(functools.partial(_say_synced, done_fd, payload))
            continue
        if kind == sp.FINISH:
            exit_code = json.loads(payload).get("exit_code")
            finished = True
            break
        try:
            assembler.feed(kind, seq, at, payload)
        except Exception as e:  # noqa: BLE001 - a record that cannot be read is counted, never fatal
            rec._problem(f"spool: {type(e).__name__}: {e}")  # noqa: SLF001
    if finished:
        assembler.close("lit stopped during the call")
        summary = rec.finish(exit_code)
    else:
        assembler.close("lit was killed during the call")
        summary = rec.abandon()
    data = dataclasses.asdict(summary)
    _say({"summary": {k: data[k] for k in (f.name for f in dataclasses.fields(Summary)) if k in data}})
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    # Everything is written and said: lit waits for this process to end, and the interpreter's
    # teardown (freeing every object of a session, 0.1-0.2 s after 15 MB of answers) gains nothing.
    sys.stdout.flush()
    os._exit(code)
