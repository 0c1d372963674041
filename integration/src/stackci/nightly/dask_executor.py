"""The night's DAG on a Dask distributed cluster, behind the executor's interface: the same
scheduling, budget, timeouts and recording as the thread executor (executor.py), but the work
of each build, contracts, tests, workload and conformance job runs on a Dask worker
(dask_worker.py), which rebuilds the job from the run's stored plan and sends its outcome back.
This process, the scheduler side, is still the store's only writer.

Jobs that read the store (regressions, analysis, culprit-search probes, publish) stay on local
threads:
workers need no database access.

A worker that dies mid-job (killed, out of memory, its machine gone) ends that attempt as an
error, "worker lost", naming the worker; the job is tried once more, on another worker, if the
budget still fits its estimate, and its stored details list the lost attempt either way. For
that the scheduler must not silently re-run tasks of dead workers itself: `DaskCluster` sets
its allowed-failures to 0 (distributed's KilledWorker then reaches us at the first loss).
"""

from __future__ import annotations

import queue
import sys

from stackci.errors import UsageError
from stackci.model import ERROR, REUSED, Job, Outcome
from stackci.nightly.dask_worker import Task, run_task
from stackci.nightly.executor import Executor

LOCAL_STAGES = ("regressions", "analysis", "bisect", "publish")  # they read the store
WORKER_LOST = "worker lost"


class DaskCluster:
    """A client of the cluster at `scheduler` (tcp://HOST:PORT), or of a LocalCluster of
    `workers` single-threaded worker processes on this machine. A context manager: leaving it
    closes what it started."""

    def __init__(self, scheduler: str | None = None, workers: int = 2):
        self.scheduler, self.workers = scheduler, workers
        self.local = scheduler is None
        self.client = self._cluster = None

    def __enter__(self) -> "DaskCluster":
        import dask
        from distributed import Client, LocalCluster
        try:
            if self.local:
                with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                    self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                                 processes=True, dashboard_address=":0")
                self.client = Client(self._cluster)
            else:
                self.client = Client(self.scheduler, timeout="30s")
                self.client.run_on_scheduler(_no_silent_retries)
        except (OSError, TimeoutError, ValueError) as exc:
            self.__exit__(None, None, None)
            where = self.scheduler or "a LocalCluster"
            raise UsageError(f"--scheduler {where}: cannot reach the Dask scheduler: "
                             f"{exc}".splitlines()[0]) from exc
        return self

    def __exit__(self, *exc) -> None:
        for closing in (self.client, self._cluster):
            if closing is not None:
                closing.close()

    def executor(self, *args, **kwargs) -> "DaskExecutor":
        """An executor of one run on this cluster: Executor's arguments."""
        return DaskExecutor(self, *args, **kwargs)

    def threads(self) -> int:
        return max(1, sum(self.client.nthreads().values()))


def _no_silent_retries(dask_scheduler) -> None:
    dask_scheduler.allowed_failures = 0


class DaskExecutor(Executor):
    def __init__(self, cluster: DaskCluster, store, run_id: int, jobs: list[Job], resources,
                 **kwargs):
        super().__init__(store, run_id, jobs, resources, **kwargs)
        self.cluster = cluster
        self.workers = cluster.threads()  # jobs running at once: the cluster's worker threads
        plan = store.run(run_id).plan  # the stored plan: what workers rebuild jobs from
        self.specs = {spec["key"]: spec for spec in plan["jobs"]}
        self.combinations = {c["key"]: c for c in plan["combinations"]}
        self._futures: dict[str, object] = {}
        self._attempts: dict[str, list[dict]] = {}
        self._done: queue.Queue = queue.Queue()
        self._inputs: dict[str, str | None] = {}  # job key -> inputs key (nightly/reuse.py)

    def _task(self, job: Job) -> Task:
        spec = self.specs[job.key]
        local = self.cluster.local
        return Task(run_id=self.run_id, spec=spec,
                    combination=self.combinations.get(spec["combination"]),
                    timeout_s=self.job_timeout_s, port=self.resources.port,
                    repo=str(self.resources.ws.repo) if local else None,
                    home=str(self.resources.ws.home) if local else None)

    def _start(self, job: Job) -> None:
        if job.stage in LOCAL_STAGES or job.key not in self.specs:
            super()._start(job)
            return
        estimate = self.estimates.get(job.key)
        self.store.start_job(self.run_id, job.key, estimate_s=estimate)
        self.reporter.started(job)
        # Reuse is decided here, where the store is (workers never open it); the inputs key
        # travels back with the outcome so the next night can reuse this one.
        inputs, reused = self._reused(job)
        if reused is not None:
            self._end(job, reused, None, reason=REUSED)
            return
        self._inputs[job.key] = inputs
        self._submit(job)

    def _submit(self, job: Job) -> None:
        import time
        self._running[job.key] = time.monotonic() + self.job_timeout_s + self.grace_s
        attempt = len(self._attempts.get(job.key, ())) + 1
        future = self.cluster.client.submit(run_task, self._task(job), pure=False,
                                            key=f"{job.key}#{self.run_id}.{attempt}")
        self._futures[job.key] = future
        future.add_done_callback(lambda done, key=job.key: self._finished(key, done))

    def _finished(self, key: str, future) -> None:
        # On the client's event loop: hand over to the scheduling loop, which records.
        self._done.put((key, future))
        self._events.put(key)

    def _wait(self) -> None:
        self._collect()
        super()._wait()
        self._collect()
        for key, future in list(self._futures.items()):
            if key not in self._running:  # ended meanwhile (timed out): stop its work
                future.cancel()
                self._futures.pop(key, None)

    def _collect(self) -> None:
        while True:
            try:
                key, future = self._done.get_nowait()
            except queue.Empty:
                return
            if self._futures.get(key) is not future or key not in self._running:
                continue  # a cancelled attempt, or the job ended otherwise
            self._futures.pop(key)
            self._settle(self.jobs[key], future)

    def _settle(self, job: Job, future) -> None:
        from distributed import KilledWorker
        try:
            outcome, duration_s, worker = future.result()
        except KilledWorker as exc:
            self._lost(job, exc)
            return
        except Exception as exc:  # not the job's failure (run_task catches those): the transport
            outcome, duration_s, worker = Outcome(
                ERROR, f"dask: {type(exc).__name__}: {exc}".splitlines()[0]), None, ""
        attempts = self._attempts.get(job.key)
        if attempts:
            outcome.details = {**outcome.details, "attempts": attempts}
        if worker:
            outcome.details = {**outcome.details, "worker": worker}
        if self._inputs.get(job.key) is not None:
            outcome.details = {**outcome.details, "inputs": self._inputs[job.key]}
        self._end(job, outcome, duration_s)

    def _lost(self, job: Job, exc: Exception) -> None:
        worker = _last_worker(str(exc))
        attempts = self._attempts.setdefault(job.key, [])
        attempts.append({"status": ERROR, "message": WORKER_LOST, "worker": worker})
        cause = f"{WORKER_LOST}: {worker or 'a worker'} died while running it"
        if len(attempts) < 2 and self.budget.fits(self.estimates.get(job.key, 0.0)):
            print(f"stackci: {job.key}: {cause}; retrying on another worker", file=sys.stderr)
            self._submit(job)
            return
        self._end(job, Outcome(ERROR, cause, details={"kind": "worker-lost",
                                                      "attempts": attempts}), None)


def _last_worker(message: str) -> str:
    """The address distributed's KilledWorker names (the last worker that ran the task)."""
    for word in message.replace(",", " ").split():
        if "://" in word:
            return word.rstrip(".")
    return ""
