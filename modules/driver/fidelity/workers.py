"""SCALE-Sim worker processes (scalesim_worker.py in SCALE-Sim's interpreter), up to N at once.

One process per layer run: a process's memory goes back to the system when its layer is done
(the big layers hold several GB of per-cycle operand matrices), and a crash names its layer.
Stopping the pool kills the processes still running, so a killed run leaves no orphan
simulating for another minute.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterable

WORKER = Path(__file__).resolve().parent / "scalesim_worker.py"


class WorkerFailed(Exception):
    """A worker process exited with an error; the message says how."""


def exit_reason(status: int) -> str:
    if status < 0:
        name = signal.Signals(-status).name
        hint = " (out of memory?)" if -status == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited with status {status}"


class WorkerPool:
    """Runs jobs (scalesim_worker.py's stdin JSON) on `jobs` worker processes at once."""

    def __init__(self, python: str, jobs: int):
        self.python = python
        self.jobs = jobs
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen] = set()
        self._stopping = False

    def run(self, job: dict) -> list[dict]:
        """The worker's result lines for `job`, once it has finished."""
        with self._lock:
            if self._stopping:
                raise WorkerFailed("was not started: the run is stopping")
            process = subprocess.Popen([self.python, str(WORKER)], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True)
            self._running.add(process)
        try:
            output, _ = process.communicate(json.dumps(job))
        finally:
            with self._lock:
                self._running.discard(process)
        if process.returncode != 0:
            raise WorkerFailed(f"SCALE-Sim worker ({self.python}) "
                               f"{exit_reason(process.returncode)}")
        try:
            return [json.loads(line) for line in output.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise WorkerFailed(f"SCALE-Sim worker ({self.python}) printed a line that is not "
                               f"JSON: {exc}") from None

    def map(self, items: Iterable, job_of: Callable, on_done: Callable) -> None:
        """Run `job_of(item)` for every item; `on_done(item, lines_or_failure)` in this thread,
        in the order they finish."""
        executor = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="scalesim")
        try:
            futures = {executor.submit(self.run, job_of(item)): item for item in items}
            for future in as_completed(futures):
                try:
                    outcome = future.result()
                except WorkerFailed as failure:
                    outcome = failure
                on_done(futures[future], outcome)
        finally:
            self.stop()
            executor.shutdown(wait=True, cancel_futures=True)

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            for process in self._running:
                process.kill()
