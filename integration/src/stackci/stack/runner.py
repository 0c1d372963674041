"""The one subprocess runner to stack environments.

Every module CLI the harness drives (`python -m npu_compiler run`, `npu_driver skus`, pytest,
the node suite...) starts here, with the same environment: the assembled environment alone on
the path (PYTHONPATH and PYTHONHOME of the harness removed, VIRTUAL_ENV set when the
interpreter belongs to a venv) plus what the caller adds.

Each process starts in a process group of its own (a session), registered here under the
thread that started it (a nightly job's thread is named after the job), so the whole group,
children included, is killed when the job ends, times out or the run stops: nothing the
harness starts outlives what started it (docs/design.md, "Faults").
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

# pgid -> the name of the thread that started it (a nightly job's thread: "job <key>").
_LIVE: dict[int, str] = {}
_LIVE_LOCK = threading.Lock()
# Called with no arguments whenever a group starts or ends (a run's lease records them).
WATCHERS: list = []


def stack_environment(python: str | Path, extra: dict | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    venv = Path(python).parent.parent
    if (venv / "pyvenv.cfg").is_file():
        env["VIRTUAL_ENV"] = str(venv)
    env.update(extra or {})
    return env


def run_in_env(python: str | Path, args: list[str], timeout_s: float | None = None, *,
               cwd: Path | None = None, extra_env: dict | None = None
               ) -> subprocess.CompletedProcess:
    """`python args...` in its environment, output captured as text; raises
    subprocess.TimeoutExpired past `timeout_s` and OSError when `python` cannot start.
    Whatever way it ends, its process group is killed (children left behind included)."""
    # Output goes to files, not pipes: a child left behind holding a pipe would keep a
    # reader waiting after the process itself has ended.
    with _output() as out, _output() as err:
        process = subprocess.Popen([str(python), *args], stdout=out, stderr=err,
                                   cwd=cwd, env=stack_environment(python, extra_env),
                                   start_new_session=True)
        register(process.pid)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise subprocess.TimeoutExpired(process.args, timeout_s, *_read(out, err)) from None
        finally:
            kill_group(process.pid)  # the job ended: its group, children included, goes too
            if process.poll() is None:
                process.kill()
                process.wait()
            unregister(process.pid)
        return subprocess.CompletedProcess(process.args, process.returncode, *_read(out, err))


def _output():
    # Undecodable bytes from a tool become U+FFFD: its message still gets through.
    return tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")


def _read(*files) -> list[str]:
    found = []
    for file in files:
        file.seek(0)
        found.append(file.read())
    return found


def register(pgid: int) -> None:
    """A process group the harness started (its leader's pid), owned by this thread."""
    with _LIVE_LOCK:
        _LIVE[pgid] = threading.current_thread().name
    _notify()


def unregister(pgid: int) -> None:
    with _LIVE_LOCK:
        _LIVE.pop(pgid, None)
    _notify()


def _notify() -> None:
    for watcher in list(WATCHERS):
        watcher()


def kill_group(pgid: int) -> None:
    """SIGKILL to the whole group; a group already gone is fine."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def live_groups() -> list[int]:
    with _LIVE_LOCK:
        return sorted(_LIVE)


def kill_groups(owner: str | None = None) -> list[int]:
    """Kill the groups started by thread `owner` (every group when None); their pgids."""
    with _LIVE_LOCK:
        chosen = [pgid for pgid, name in _LIVE.items() if owner is None or name == owner]
    for pgid in chosen:
        kill_group(pgid)
    return chosen


def one_line(text: str) -> str:
    return " ".join(text.split())


def last_line(text: str, default: str = "(no output)") -> str:
    """The last non-empty line of a tool's output, on one line (what an error message quotes)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return one_line(lines[-1]) if lines else default


def tail(text: str, lines: int = 40) -> str:
    """The last `lines` lines of a tool's output (kept in a job's details)."""
    return "\n".join(text.strip().splitlines()[-lines:])
