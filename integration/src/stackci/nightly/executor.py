"""Runs a DAG of jobs on local worker threads within a time budget, storing each result as
the job ends: the only writer of job results (stages return outcomes; this stores them, with
the evidence they carry, and the time the run has used).

Each worker runs one job at a time (the heavy work is in subprocesses of the assembled
environment, so threads are enough). Before a job starts, its estimate is checked against what
is left of the budget: a job that would not fit is `not_run` ("out of budget"), carried to the
next night, not a failure. A job whose dependency did not pass is `not_run` naming it.
"""

from __future__ import annotations

import queue
import re
import subprocess
import threading
import time
import traceback
from pathlib import Path
from typing import Protocol

from stackci.durations import format_duration
from stackci.errors import StackciError, StackError
from stackci.model import (BUDGET, DEPENDENCY, ERROR, INTERRUPTED, NOT_APPLICABLE, NOT_RUN,
                           OUT_OF_BUDGET, PASSED, REUSED, TIMEOUT, Job, JobContext, Outcome)
from stackci.nightly.budget import Budget
from stackci.nightly.recording import Recorder
from stackci.nightly.resources import Resources
from stackci.results.journal import Journal
from stackci.stack import runner


class Reporter(Protocol):
    def started(self, job: Job) -> None: ...
    def finished(self, job: Job, status: str) -> None: ...


class SilentReporter:
    def started(self, job: Job) -> None:
        pass

    def finished(self, job: Job, status: str) -> None:
        pass


class Executor:
    """One run's jobs. `done` holds the outcomes (status, reason) of jobs finished by an
    earlier session of the same run (resume); those are not run again."""

    def __init__(self, store, run_id: int, jobs: list[Job], resources: Resources, *,
                 budget: Budget, estimates: dict[str, float], job_timeout_s: float,
                 workers: int = 2, workdir: Path, done: dict[str, str] | None = None,
                 reporter: Reporter | None = None, reuse=None, grace_s: float = 60.0,
                 poll_s: float = 0.2, journal: Journal | None = None):
        self.store, self.run_id, self.resources = store, run_id, resources
        self.recorder = Recorder(store, run_id, journal)
        self.jobs = {job.key: job for job in jobs}
        self.budget, self.estimates = budget, estimates
        self.job_timeout_s, self.grace_s, self.poll_s = job_timeout_s, grace_s, poll_s
        self.workers = max(1, workers)
        self.workdir = workdir
        self.reporter = reporter or SilentReporter()
        self.reuse = reuse  # a nightly.reuse.Reuse, or None: every job runs
        # key -> (status, reason) of every job that has ended; reason: "budget" | "dependency"
        # | "not-applicable" (the combination lacks an interface version the job needs)
        # | "interrupted" for not_run, "" otherwise.
        self.ended: dict[str, tuple[str, str]] = {key: (status, "") for key, status in
                                                  (done or {}).items()}
        self._ended_lock = threading.Lock()
        self._events: queue.Queue[str] = queue.Queue()
        self._running: dict[str, float] = {}  # key -> monotonic deadline
        for job in jobs:
            for dep in (*job.needs, *job.after):
                if dep not in self.jobs:
                    raise StackciError(f"job {job.key} depends on unknown job {dep}")

    def run(self) -> dict[str, tuple[str, str]]:
        pending = sorted((job for key, job in self.jobs.items() if key not in self.ended),
                         key=lambda job: job.order)
        try:
            while pending or self._running:
                pending = self._start_ready(pending)
                self._wait()
        except KeyboardInterrupt as stop:
            by = str(stop) or "SIGINT"
            for key in list(self._running):
                self._end(self.jobs[key], Outcome(NOT_RUN, f"{INTERRUPTED} ({by})"), None,
                          reason=INTERRUPTED)
                runner.kill_groups(job_thread(key))
            raise
        return self.ended

    def run_now(self, job: Job) -> tuple[str, str]:
        """Run one job at once on this thread, whatever the budget (the publish job, after
        the summary); its (status, reason)."""
        self.jobs[job.key] = job
        self.ended.pop(job.key, None)
        self.recorder.start_job(job.key, self.estimates.get(job.key))
        self.reporter.started(job)
        started = time.monotonic()
        outcome = run_action(job, self._context(job))
        self._end(job, outcome, time.monotonic() - started)
        return self.ended[job.key]

    def leave_out(self, job: Job, message: str, details: dict) -> None:
        """Record a job the plan left out before the night began (not run for the budget:
        carried over to the next night)."""
        self._end(job, Outcome(NOT_RUN, message, details=details), None, reason=BUDGET)

    # -- scheduling --------------------------------------------------------------------------

    def _start_ready(self, pending: list[Job]) -> list[Job]:
        still: list[Job] = []
        busy = False  # once a ready job waits for a worker, no job after it may go first
        for job in pending:
            blocked = self._blocked(job)
            if blocked is not None:
                self._end(job, Outcome(NOT_RUN, blocked[0]), None, reason=blocked[1])
            elif not self._ready(job):
                still.append(job)
            elif busy or len(self._running) >= self.workers:
                busy = True
                still.append(job)
            elif not self.budget.fits(self.estimates.get(job.key, 0.0)):
                self._end(job, Outcome(NOT_RUN, OUT_OF_BUDGET, details={
                    "estimate_s": self.estimates.get(job.key), "used_s": self.budget.used(),
                    "budget_s": self.budget.total_s}), None, reason=BUDGET)
            else:
                self._start(job)
        return still

    def _blocked(self, job: Job) -> tuple[str, str] | None:
        """(message, reason) if a job it needs ended without passing."""
        with self._ended_lock:
            for dep in job.needs:
                if dep not in self.ended or self.ended[dep][0] == PASSED:
                    continue
                status, reason = self.ended[dep]
                if reason == BUDGET:
                    return f"{OUT_OF_BUDGET} (needs {dep}, not run)", BUDGET
                if reason == NOT_APPLICABLE:  # what needs a job that does not apply neither
                    return f"not applicable (needs {dep}, not applicable)", NOT_APPLICABLE
                return f"dependency {dep} {status.replace('_', ' ')}", DEPENDENCY
        return None

    def _ready(self, job: Job) -> bool:
        with self._ended_lock:
            return all(dep in self.ended for dep in (*job.needs, *job.after))

    def _start(self, job: Job) -> None:
        self.recorder.start_job(job.key, self.estimates.get(job.key))
        self._running[job.key] = time.monotonic() + self.job_timeout_s + self.grace_s
        self.reporter.started(job)
        context = self._context(job)
        # Daemon threads: a job that hangs past its deadline is abandoned, not waited for.
        threading.Thread(target=self._work, args=(job, context), daemon=True,
                         name=job_thread(job.key)).start()

    def _context(self, job: Job) -> JobContext:
        workdir = self.workdir / re.sub(r"[^A-Za-z0-9_.-]+", "_", job.key)
        workdir.mkdir(parents=True, exist_ok=True)
        return JobContext(timeout_s=self.job_timeout_s, workdir=workdir,
                          resources=self.resources)

    def _wait(self) -> None:
        if not self._running:
            return
        try:
            self._events.get(timeout=self.poll_s)
        except queue.Empty:
            pass
        now = time.monotonic()
        for key, deadline in list(self._running.items()):
            if now > deadline:
                self._end(self.jobs[key], Outcome(
                    TIMEOUT, f"no result {format_duration(self.job_timeout_s)} after it "
                    "started; abandoned"), self.job_timeout_s + self.grace_s)
                runner.kill_groups(job_thread(key))  # what it started ends with it

    # -- one job -----------------------------------------------------------------------------

    def _work(self, job: Job, context: JobContext) -> None:
        started = time.monotonic()
        inputs, outcome = self._reused(job)
        if outcome is not None:
            self._end(job, outcome, None, reason=REUSED)
            return
        outcome = run_action(job, context)
        if inputs is not None:
            outcome.details["inputs"] = inputs
        self._end(job, outcome, time.monotonic() - started)

    def _reused(self, job: Job) -> tuple[str | None, Outcome | None]:
        """(the job's inputs key, the stored result with those inputs or None to run it)."""
        if self.reuse is None:  # nightly/reuse.py: the same inputs give the stored result
            return None, None
        try:
            inputs = self.reuse.inputs_key(job)
            return inputs, self.reuse.lookup(job, inputs)
        except Exception:  # noqa: BLE001 - a key that cannot be made: run the job
            return None, None

    def _end(self, job: Job, outcome: Outcome, duration_s: float | None, *,
             reason: str = "") -> None:
        with self._ended_lock:
            if job.key in self.ended:  # already ended (timed out by the watchdog)
                return
            reason = reason or outcome.details.get("reason", "")
            self.ended[job.key] = (outcome.status, reason)
            details = dict(outcome.details)
            if reason:
                details["reason"] = reason
            try:
                self._record(job, outcome, duration_s, details)
                self.reporter.finished(job, outcome.status)
            finally:
                # Only now may the run end: the result is committed.
                self._running.pop(job.key, None)
                self._events.put(job.key)


    def _record(self, job: Job, outcome: Outcome, duration_s: float | None,
                details: dict) -> None:
        self.recorder.finish_job(job, outcome, duration_s, details, self.budget.used())


def job_thread(key: str) -> str:
    """The name of the thread running job `key` (stack/runner.py files processes under it)."""
    return f"job {key}"


def run_action(job: Job, context: JobContext) -> Outcome:
    """The job's outcome, with every way it can fail turned into one."""
    try:
        return job.action(context)
    except subprocess.TimeoutExpired:
        return Outcome(TIMEOUT, f"exceeded the job timeout of "
                                  f"{format_duration(context.timeout_s)}")
    except StackError as exc:
        status = TIMEOUT if exc.kind == "timeout" else ERROR
        message = str(exc) if exc.kind in ("error", "timeout") else f"{exc.kind}: {exc}"
        return Outcome(status, message, details={"kind": exc.kind})
    except StackciError as exc:
        return Outcome(ERROR, str(exc), details={"kind": type(exc).__name__})
    except Exception as exc:  # a bug in the harness or a fake: keep the night going
        return Outcome(ERROR, f"harness error: {type(exc).__name__}: {exc}",
                       details={"traceback": traceback.format_exc()})
