"""One night, in order: plan -> record -> execute -> summarise -> publish.

`start` plans from the options and the suite; `resume` takes the stored plan of the latest
unfinished run as it is (never the suite again), keeps its finished jobs and runs the rest.
The site is published once, after the summary, so it shows the finished run.

A run is owned while it runs (nightly/lease.py): `resume` refuses a run whose owner is alive,
and records the jobs a lost owner had in flight as `error` ("runner lost ...") before running
them again. SIGTERM and SIGHUP stop a night as SIGINT does (nightly/signals.py).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from stackci import __version__
from stackci.dashboard.publish import publish
from stackci.errors import StackciError, UsageError
from stackci.model import (BAD_STATUSES, BUDGET, ERROR, FINISHED_STATUSES, NOT_FAILURES, NOT_RUN,
                           OUT_OF_BUDGET, PASSED, RERUN_REASONS, RUNNER_LOST, RUNNING, Job)
from stackci.nightly import lease as leases
from stackci.nightly.budget import DEFAULT_ESTIMATES, Budget
from stackci.nightly.executor import Executor, Reporter
from stackci.nightly.plan import NightlyOptions, Plan, make_plan
from stackci.nightly.recording import combination_vector
from stackci.nightly.regressions import run_regressions, write_team_reports
from stackci.nightly.resources import Resources
from stackci.nightly.reuse import Reuse
from stackci.nightly.signals import stop_on_signals
from stackci.nightly.summary import summarise
from stackci.results.regressions import HistoryReader
from stackci.results.journal import Journal, journal_path, run_entry
from stackci.results.store import Store
from stackci.stack import runner
from stackci.stack.port import StackPort
from stackci.workloads.suite import load_suite


@dataclass
class RunResult:
    run_id: int
    ended: dict[str, tuple[str, str]]  # key -> (status, reason)
    summary: dict
    # Jobs of coverage combinations (the planner's pairwise extras): their failures are
    # findings for the compatibility matrix, recorded and shown, but they do not fail the run.
    advisory: frozenset[str] = frozenset()

    @property
    def ok(self) -> bool:
        """Every gating job passed, or was not run for lack of budget or because it does not
        apply."""
        return all(status == PASSED or (status == NOT_RUN and reason in NOT_FAILURES)
                   for key, (status, reason) in self.ended.items() if key not in self.advisory)

    @property
    def gating_left_out(self) -> list[str]:
        """Gating jobs the budget left out: the night does not fit its day (exit 3)."""
        return sorted(key for key, (status, reason) in self.ended.items()
                      if key not in self.advisory and status == NOT_RUN and reason == BUDGET)

    @property
    def findings(self) -> list[str]:
        """Advisory jobs that failed, errored or timed out."""
        return sorted(key for key, (status, _) in self.ended.items()
                      if key in self.advisory and status in BAD_STATUSES)


def estimates_for(store: Store, jobs: list[Job]) -> dict[str, float]:
    found = {}
    for job in jobs:
        history = store.estimate(job.stage, job.name, job.sku)
        found[job.key] = history if history is not None else DEFAULT_ESTIMATES[job.stage]
    return found


class Nightly:
    """Nights against a store. `port` is the stack (tests pass a fake); `suite` the manifest
    path (default workloads/suite.yaml); `executor` makes the executor of a run from
    Executor's arguments (default the thread executor; DaskCluster.executor for Dask)."""

    def __init__(self, ws, store: Store, *, port: StackPort | None = None, suite=None,
                 dashboard_dir: Path | None = None, reporter: Reporter | None = None,
                 heartbeat_s: float = leases.HEARTBEAT_S, executor=None):
        self.ws, self.store = ws, store
        self.make_executor = executor or Executor
        self.heartbeat_s = heartbeat_s
        self.port = port or StackPort()
        self.suite = suite
        self.dashboard_dir = Path(dashboard_dir or ws.dashboard_dir)
        self.reporter = reporter

    def start(self, options: NightlyOptions, combinations=None) -> RunResult:
        """Plan from the options and the suite (for `combinations` when given, else those
        the options name or the default plan's) and run it."""
        plan = make_plan(self.ws, self.store, options, load_suite(self.suite), combinations)
        return self.run_plan(plan)

    def run_plan(self, plan: Plan) -> RunResult:
        """Record a new run of `plan` and execute it."""
        row = {"tier": plan.options.tier, "budget_s": plan.options.budget_s,
               "plan": plan.to_dict(), "host": socket.gethostname(),
               "harness_version": __version__}
        run_id = self.store.start_run(**row)
        self._journal(run_id).append(run_entry(run_id, **row))
        lease = leases.Lease(self.store, run_id, heartbeat_s=self.heartbeat_s)
        lease.take()
        return self._owned(lease, plan, done={}, used_before=0.0)

    def resume(self) -> RunResult:
        run = self.store.latest_unfinished_run()
        if run is None:
            raise UsageError("no unfinished run to resume (every stored run has completed)")
        held = self.store.lease(run.id)
        if held is not None and leases.alive(held):
            raise StackciError(f"run {run.id} is still running, owned by "
                               f"{leases.describe(held)}; not resuming it")
        plan = Plan.from_dict(run.plan, load_suite(self.suite))
        lease = leases.Lease(self.store, run.id, heartbeat_s=self.heartbeat_s)
        lease.take(replacing=held)
        if held is not None:
            leases.reap(held)
        self._record_lost(run.id, leases.lost_at(held))
        journal = self._journal(run.id)
        if not journal.path.exists():  # a run begun before journals, or its journal lost
            journal.append(run_entry(run.id, tier=run.tier, budget_s=run.budget_s,
                                     plan=run.plan, host=run.host,
                                     harness_version=run.harness_version))
        done = {job.key: job.status for job in self.store.jobs(run.id)
                if job.status in FINISHED_STATUSES and job.reason not in RERUN_REASONS}
        self.store.update_run(run.id, status="running")
        return self._owned(lease, plan, done=done, used_before=run.used_s)

    def _record_lost(self, run_id: int, at) -> None:
        """The jobs a lost runner had in flight: `error`, with when it was last seen; they
        run again (the rerun keeps this outcome as its earlier attempt)."""
        message = f"runner lost (killed or crashed) at {at:%Y-%m-%d %H:%M:%S} UTC"
        for job in self.store.jobs(run_id):
            if job.status == RUNNING:
                self.store.finish_job(run_id, job.key, status=ERROR, message=message,
                                      details={"reason": RUNNER_LOST,
                                               "lost_at": at.isoformat()})

    def _journal(self, run_id: int) -> Journal:
        return Journal(journal_path(self.ws.home, run_id))

    def _owned(self, lease: leases.Lease, plan: Plan, *, done: dict[str, str],
               used_before: float) -> RunResult:
        try:
            return self._execute(lease.run_id, plan, done=done, used_before=used_before)
        finally:
            runner.kill_groups()  # whatever the run started ends with it
            lease.release()

    def _record(self, run_id: int, jobs: list[Job]) -> None:
        """The run's combinations and planned jobs (a resumed run keeps the jobs it has)."""
        combination_ids = {}
        for job in jobs:
            if job.combination is not None:
                key = job.combination.key
                if key not in combination_ids:
                    combination_ids[key] = self.store.record_combination(
                        job.combination.name, key, combination_vector(job.combination))
                job.combination_id = combination_ids[key]
        self.store.add_jobs(run_id, [{"key": job.key, "stage": job.stage, "name": job.name,
                                      "sku": job.sku, "combination_id": job.combination_id}
                                     for job in jobs])

    def _execute(self, run_id: int, plan: Plan, *, done: dict[str, str],
                 used_before: float) -> RunResult:
        options = plan.options
        jobs = plan.to_jobs()
        self._record(run_id, jobs)
        last = [job for job in jobs if job.stage == "publish"]
        dag = [job for job in jobs if job.stage != "publish"]
        budget = Budget(options.budget_s, used_before)
        estimates = plan.estimates or estimates_for(self.store, jobs)
        deferred = {spec.key for spec in plan.deferred_jobs()}
        if hasattr(self.reporter, "begin"):  # deferred jobs end at once: no share of the ETA
            self.reporter.begin(len(jobs), len(done), jobs=jobs, estimates={
                key: 0.0 if key in deferred else seconds for key, seconds in estimates.items()},
                budget=budget, workers=options.workers, done=set(done))
        resources = Resources(self.ws, self.port,
                              lambda: publish(self.store, self.dashboard_dir),
                              results=HistoryReader(self.store, run_id))
        share_cores(options.workers)
        executor = self.make_executor(
            self.store, run_id, dag, resources, budget=budget, estimates=estimates,
            job_timeout_s=options.job_timeout_s, workers=options.workers,
            workdir=self.ws.home / "runs" / str(run_id),
            done={k: v for k, v in done.items() if k not in {job.key for job in last}},
            reporter=self.reporter, journal=self._journal(run_id),
            reuse=Reuse(self.store, resources, {spec.key: spec for spec in plan.jobs},
                        enabled=not options.no_reuse, sample=plan.remeasure))
        for job in dag:
            if job.key in deferred and job.key not in executor.ended:
                executor.leave_out(job, f"{OUT_OF_BUDGET}: carried over (beyond "
                                   f"--max-combinations {options.max_combinations})",
                                   {"max_combinations": options.max_combinations})
        with stop_on_signals():
            try:
                ended = executor.run()
            except KeyboardInterrupt as stop:
                runner.kill_groups()
                executor.recorder.update_run(status="interrupted", summary={
                    "used_s": budget.used(), "stopped_by": str(stop) or "SIGINT"})
                raise
        failure = executor.recorder.ended_badly()
        if failure is not None:  # the rest reads the store: the journal holds the night
            raise failure
        reports = write_team_reports(self.store, self.ws, self.ws.home / "runs" / str(run_id))
        self.store.finish_run(run_id, "completed", self._summary(run_id, budget, reports, plan))
        for job in last:  # the site, once, showing the finished run
            ended[job.key] = executor.run_now(job)
        summary = self._summary(run_id, budget, reports, plan)
        self.store.update_run(run_id, summary=summary)
        return RunResult(run_id, ended, summary, plan.advisory())


    def _summary(self, run_id: int, budget: Budget, reports: list[Path], plan=None) -> dict:
        """summarise's, ending with the regressions the night found and where the per-team
        reports are."""
        return {**summarise(self.store, run_id, budget, plan),
                "regressions": run_regressions(self.store, self.ws, run_id),
                "team_reports": [str(p) for p in reports if p.suffix == ".md"]}


def share_cores(workers: int) -> None:
    """Give each concurrent job its share of the cores: numpy's BLAS in every job otherwise
    starts a thread per core, and oversubscribed BLAS threads slow a 2-core machine manyfold.
    Only wall-clock figures depend on this; simulated cycles never do."""
    threads = str(max(1, (os.cpu_count() or 1) // max(1, workers)))
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, threads)
