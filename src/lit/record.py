"""`lit record -- COMMAND`: run an agent with its API calls going through lit's relay, and record
the session.

The order matters: the relay listens and the DB opens before the child starts, so that any
failure there is said in one line while nothing has run yet. The child keeps the terminal (same
process group, inherited stdin/stdout/stderr), so an interactive agent behaves as without lit.
When the child ends, lit finishes writing, says one line, and exits with the child's code.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from lit import agents, store
from lit.errors import LitError
from lit.git import hooks
from lit.proxy.relay import SYNC_PATH, Relay, shown
from lit.recording import HOOKS_OWNER, RecorderProcess
from lit.summary import Summary

DEFAULT_UPSTREAM = "https://api.anthropic.com"
DEFAULT_OPENAI_UPSTREAM = "https://api.openai.com/v1"
OPENAI_PREFIX = "/openai"  # the child's OpenAI clients reach the relay under this path
PR_SET_PDEATHSIG = 1  # linux/prctl.h
FORWARDED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def resolve_upstream(upstream: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """--upstream, else the ANTHROPIC_BASE_URL lit was started with, else the Anthropic API."""
    return (upstream or environ.get("ANTHROPIC_BASE_URL") or DEFAULT_UPSTREAM).rstrip("/")


def resolve_openai_upstream(upstream: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """--openai-upstream, else the OPENAI_BASE_URL (or OPENAI_API_BASE) lit was started with,
    else the OpenAI API."""
    return (upstream or environ.get("OPENAI_BASE_URL") or environ.get("OPENAI_API_BASE")
            or DEFAULT_OPENAI_UPSTREAM).rstrip("/")


def child_env(base: Mapping[str, str], *, relay_url: str, session_id: str,
              db_path: str | os.PathLike, hooks_folder: Path | None = None) -> dict[str, str]:
    """The child's environment: the one place where lit adds to it (the relay's URL for each
    protocol, the session and DB its git hooks write to, and the hooks themselves)."""
    env = dict(base)
    if hooks_folder is not None:
        env.update(hooks.session_env(base, hooks_folder))
    env["ANTHROPIC_BASE_URL"] = relay_url
    env["OPENAI_BASE_URL"] = env["OPENAI_API_BASE"] = relay_url + OPENAI_PREFIX
    # The relay is local: an agent honouring HTTP(S)_PROXY must not send its calls to the proxy.
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = ",".join(filter(None, [env.get(name), "127.0.0.1", "localhost"]))
    env["LIT_SESSION"] = session_id
    env["LIT_DB"] = str(db_path)
    # Where the session's hooks ask the recorder to catch up before they bind a thread.
    env.pop("LIT_SYNC", None)
    if hooks_folder is not None:
        env["LIT_SYNC"] = relay_url + SYNC_PATH
    return env


def find_command(argv: list[str], env: Mapping[str, str]) -> str:
    """The executable argv[0] names; LitError with exit code 127 (as a shell says) if none."""
    if not argv:
        raise LitError("no command to record: put it after --, e.g. lit record -- claude", exit_code=2)
    name = argv[0]
    if os.sep in name:
        if os.path.isfile(name) and os.access(name, os.X_OK):
            return name
        if os.path.exists(name):
            raise LitError(f"{name}: not an executable file", exit_code=126)
        raise LitError(f"{name}: no such file", exit_code=127)
    found = shutil.which(name, path=env.get("PATH", os.defpath))
    if not found:
        raise LitError(f"{name}: command not found", exit_code=127)
    return found


def _die_with_lit() -> Callable[[], None] | None:
    """On Linux, a function for the child to run before exec so that it gets SIGTERM if lit
    itself is killed (SIGKILL, the OOM killer): an agent whose relay is gone cannot do anything
    useful, and must not be left running orphaned. Looked up here, before the fork, so that the
    child only makes one libc call."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes  # noqa: PLC0415 - only on Linux, only for lit record

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def set_parent_death_signal() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # lit died between the fork and the prctl
            os.kill(os.getpid(), signal.SIGTERM)

    return set_parent_death_signal


def exit_code_of(returncode: int) -> int:
    """A shell's convention: 128 + N when the child was killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def _typed_at_the_terminal() -> bool:
    """Whether a SIGINT most likely came from Ctrl-C in lit's terminal: then the child, in the same
    foreground process group, got it from the terminal already, and a second one would mean
    "press twice to quit" to an interactive agent. (A `kill -INT` from elsewhere while lit runs in
    the foreground is not forwarded; Ctrl-C is.)"""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | getattr(os, "O_NOCTTY", 0))
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


def run(argv: list[str], *, db: str | os.PathLike | None = None, upstream: str | None = None, port: int = 0,
        say: Callable[[str], None] | None = None, openai_upstream: str | None = None) -> int:
    """Record one session of `argv`; returns the exit code for lit (the child's)."""
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    upstream_url = resolve_upstream(upstream)
    openai_url = resolve_openai_upstream(openai_upstream)
    executable = find_command(argv, os.environ)
    db_path = Path(os.path.abspath(store.resolve_db_path(db)))
    session_id = store.new_id()

    try:
        relay = Relay(upstream_url, None, port=port, routes={OPENAI_PREFIX: openai_url})
    except ValueError as e:
        raise LitError(f"--upstream: {e}", exit_code=2) from e
    try:
        bound = relay.start()
    except OSError as e:
        raise LitError(f"cannot listen on 127.0.0.1:{port}: {e.strerror or e}") from e
    try:
        # The recorder is a process of its own, fed by the relay's spool (see lit.recording).
        rec = RecorderProcess(db_path, argv=list(argv), cwd=os.getcwd(), upstream=shown(upstream_url),
                              session_id=session_id, port=bound)
    except BaseException:
        relay.stop()
        raise
    relay.spool, relay.gate, relay.sync_session = rec.spool, rec.gate, session_id

    hooks_folder = hooks.make_session_hooks(rec.repo_root) if rec.repo_root else None
    if hooks_folder:
        (hooks_folder / HOOKS_OWNER).write_text(str(os.getpid()))
    env = child_env(os.environ, relay_url=relay.url, session_id=session_id, db_path=db_path,
                    hooks_folder=hooks_folder)
    code: int | None = None
    child: subprocess.Popen | None = None

    def forward(signum: int, _frame: object) -> None:
        if child is None or child.poll() is not None:
            return
        if signum == signal.SIGINT and _typed_at_the_terminal():
            return
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    previous = {s: signal.signal(s, forward) for s in FORWARDED_SIGNALS}
    try:
        try:
            # Popen from this (the main) thread: the parent-death signal follows the thread that forked.
            child = subprocess.Popen(agents.relay_arguments(argv, relay.url + OPENAI_PREFIX), executable=executable,
                                     env=env, preexec_fn=_die_with_lit())
        except OSError as e:
            code = 127 if isinstance(e, FileNotFoundError) else 126
            raise LitError(f"{argv[0]}: {e.strerror or e}", exit_code=code) from e
        code = exit_code_of(child.wait())
    finally:
        relay.stop()
        summary = rec.finish(code, say)
        hooks.remove_session_hooks(hooks_folder)
        for s, handler in previous.items():
            signal.signal(s, handler)
    say(summary_line(summary, relay.spool_lost, relay.spool.broken if relay.spool else None))
    return code


def summary_line(summary: Summary, relay_errors: int = 0, relay_problem: str | None = None) -> str:
    """The one line lit says at exit."""
    line = f"lit: recorded {_count(summary.exchanges, 'exchange')}, {_count(summary.steps, 'step')}"
    threads = [(tid, commit, status) for tid, commit, status in summary.threads]
    if len(threads) == 1:
        line += f" in thread {_thread(*threads[0])}"
    elif 1 < len(threads) <= 3:
        line += " in threads " + ", ".join(_thread(*t) for t in threads)
    elif threads:
        bound = sum(1 for t in threads if t[1])
        line += f" in {len(threads)} threads ({bound} bound to commits)"
    else:
        line += f" (session {summary.session_id})"
    if summary.repo_root is None:
        line += "; not in a git repository, so commits cannot be linked"
    missed = summary.unrecorded + relay_errors
    if missed:
        why = next((p for p in summary.problems if not p.startswith(("snapshot:", "unreadable:"))), None) \
            or relay_problem or "see `lit sessions`"
        line += f"; {missed} not recorded ({why})"
    unclosed = next((p for p in summary.problems if p.startswith("the session was not closed")), None)
    if unclosed and not missed:
        line += f"; {unclosed}"
    if summary.unreadable:
        why = next((p for p in summary.problems if p.startswith("unreadable:")), "").removeprefix("unreadable: ")
        line += (f"; {_count(summary.unreadable, 'request')} kept raw, not read into steps ({why})")
    if summary.snapshot_failures:
        why = next((p for p in summary.problems if p.startswith("snapshot:")), "")
        line += f"; {summary.snapshot_failures} snapshots failed, so their lines count as a person's ({why})"
    return line


def _thread(thread_id: str, commit: str | None, status: str) -> str:
    if commit:
        return f"{thread_id} (bound to {commit[:7]})"
    return f"{thread_id} ({'not committed yet' if status == 'pending' else status})"


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
