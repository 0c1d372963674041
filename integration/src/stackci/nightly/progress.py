"""Progress in a plain log (CI, `| tee`, a file): where a live display cannot draw.

A line when a stage starts and when its last job ends, a line for every job that did not pass,
and a status line at least every `every_s` seconds: jobs done / running / left, time used
against the budget, and the ETA (the estimates of what is left, shared among the workers and
scaled by how the finished jobs compared with their estimates).
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import datetime, timezone

from stackci.durations import format_duration
from stackci.model import NOT_RUN, PASSED, Job


class PlainProgress:
    def __init__(self, stream=None, every_s: float = 30.0, clock=time.monotonic):
        self.stream = stream or sys.stdout
        self.every_s, self._clock = every_s, clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._jobs: dict[str, Job] = {}
        self._estimates: dict[str, float] = {}
        self._budget = None
        self._workers = 1
        self._running: dict[str, float] = {}  # key -> when it started
        self._ended: set[str] = set()
        self._ratio = [0.0, 0.0]  # sum of actual, sum of estimated durations of finished jobs
        self._stage_left: dict[str, int] = {}
        self._stages_started: set[str] = set()
        self.total = 0

    # -- the reporter protocol (nightly/executor.py) -------------------------------------------

    def begin(self, total: int, already_done: int, *, jobs=(), estimates=None, budget=None,
              workers: int = 1, done=()) -> None:
        with self._lock:
            self.total = total
            self._jobs = {job.key: job for job in jobs}
            self._estimates = dict(estimates or {})
            self._budget, self._workers = budget, max(1, workers)
            self._ended = set(done)
            for job in self._jobs.values():
                if job.key not in self._ended:
                    self._stage_left[job.stage] = self._stage_left.get(job.stage, 0) + 1
            self._say(f"{total} jobs planned, {already_done} already done; "
                      f"{self._status()}")
        self._ticker = threading.Thread(target=self._tick, daemon=True, name="progress")
        self._ticker.start()

    def started(self, job: Job) -> None:
        with self._lock:
            self._running[job.key] = self._clock()
            if job.stage not in self._stages_started:
                self._stages_started.add(job.stage)
                self._say(f"stage {job.stage} started ({self._stage_left.get(job.stage, 0)} "
                          "jobs)")

    def finished(self, job: Job, status: str) -> None:
        with self._lock:
            began = self._running.pop(job.key, None)
            if job.key in self._ended:
                return
            self._ended.add(job.key)
            estimate = self._estimates.get(job.key)
            if began is not None and estimate and status != NOT_RUN:
                self._ratio[0] += self._clock() - began
                self._ratio[1] += estimate
            if status not in (PASSED, NOT_RUN):
                self._say(f"{status} {job.key}")
            left = self._stage_left.get(job.stage)
            if left is not None:
                self._stage_left[job.stage] = left - 1
                if left - 1 == 0:
                    self._say(f"stage {job.stage} finished; {self._status()}")

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=1.0)

    # -- the status line -----------------------------------------------------------------------

    def _tick(self) -> None:
        while not self._stop.wait(self.every_s):
            with self._lock:
                self._say(self._status())

    def _status(self) -> str:
        done, running = len(self._ended), len(self._running)
        left = max(0, self.total - done - running)
        text = f"{done} done, {running} running, {left} left"
        if self._budget is not None:
            text += (f"; used {format_duration(self._budget.used())} of "
                     f"{format_duration(self._budget.total_s)}")
        eta = self.eta_s()
        if eta is not None:
            text += f"; ETA {format_duration(eta)}"
        if self._running:
            names = sorted(self._running)[:3]
            text += "; running " + ", ".join(names) + (" ..." if running > 3 else "")
        return text

    def eta_s(self) -> float | None:
        """Seconds until the last planned job ends, by the estimates, or None without any."""
        if not self._estimates:
            return None
        now = self._clock()
        scale = self._ratio[0] / self._ratio[1] if self._ratio[1] else 1.0
        work = 0.0
        for key, job in self._jobs.items():
            if key in self._ended:
                continue
            estimate = self._estimates.get(key, 0.0) * scale
            if key in self._running:
                estimate = max(0.0, estimate - (now - self._running[key]))
            work += estimate
        return work / self._workers

    def _say(self, text: str) -> None:
        stamp = datetime.now(timezone.utc).strftime("%H:%M:%S")
        print(f"stackci: {stamp} {text}", file=self.stream, flush=True)
