"""The nightly: plan the DAG of jobs for its combinations, run it within the budget, summarise.

Without --combination or --pin the night runs the default plan (planner.py): master,
release:latest and the fewest combinations covering every verified-compatible pair of the
contract edges; the combinations' jobs share the stages below.

    build -> contracts -> tests (one job per module)
                       -> workloads (one job per workload x SKU of the tier)   -> publish
          -> conformance (the ONNX node suite; the opslib size report)

A run's plan (options and resolved combinations) is stored with it, so `--resume` rebuilds
exactly the same jobs, keeps the finished ones and redoes the rest.
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path

from stackci import __version__
from stackci.budget import DEFAULT_ESTIMATES, Budget
from stackci.errors import UsageError
from stackci.executor import Executor, Reporter
from stackci.jobs import (Job, Resources, Toolbox, build_action, conformance_action,
                          contracts_action, opslib_size_action, publish_action, tests_action,
                          workload_action)
from stackci.store import FINISHED_STATUSES, Store

BAD_STATUSES = ("failed", "error", "timeout")


@dataclass
class NightlyOptions:
    tier: str = "nightly"
    workloads: list[str] = field(default_factory=list)
    skus: list[str] = field(default_factory=list)
    combination: str = "master"
    pins: list[str] = field(default_factory=list)
    budget_s: float = 24 * 3600.0
    workers: int = 2
    job_timeout_s: float = 30 * 60.0
    no_tests: bool = False
    default_plan: bool = False  # master, release:latest and pairwise coverage (planner.py)


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
        return all(status == "passed" or (status == "not_run" and reason in NOT_FAILURES)
                   for key, (status, reason) in self.ended.items() if key not in self.advisory)

    @property
    def findings(self) -> list[str]:
        """Advisory jobs that failed, errored or timed out."""
        return sorted(key for key, (status, _) in self.ended.items()
                      if key in self.advisory and status in ("failed", "error", "timeout"))


# Why a job may be not run without anything having gone wrong.
NOT_FAILURES = ("budget", "not-applicable")


def combination_vector(combination) -> dict[str, dict]:
    return {module: {"version": mv.version, "commit": mv.commit, "tree_hash": mv.tree_hash}
            for module, mv in combination.modules.items()}


def plan_jobs(combinations: list, workloads: list, options: NightlyOptions,
              modules_of=None, conformance=None) -> list[Job]:
    """The DAG for these combinations. `modules_of(combination)` lists the modules whose tests
    run (default: the combination's modules); `conformance` (the suite's, when its tier runs)
    adds the node suite and the opslib size report per combination."""
    jobs: list[Job] = []
    for rank, combination in enumerate(combinations):
        tag = combination.key[:12]
        build_key, contracts_key = f"build@{tag}", f"contracts@{tag}"
        common = {"combination": combination, "priority": rank * 10000}
        jobs.append(Job(build_key, "build", combination.name, build_action(combination),
                        **common))
        if conformance is not None:
            jobs.append(Job(f"conformance:onnx-node@{tag}", "conformance", "onnx-node",
                            conformance_action(combination, conformance),
                            sku=conformance.sku, needs=(build_key,), **common))
            jobs.append(Job(f"conformance:opslib-size@{tag}", "conformance", "opslib-size",
                            opslib_size_action(combination), needs=(build_key,), **common))
        jobs.append(Job(contracts_key, "contracts", combination.name,
                        contracts_action(combination), needs=(build_key,), **common))
        if not options.no_tests:
            for module in (modules_of or (lambda c: list(c.modules)))(combination):
                jobs.append(Job(f"tests:{module}@{tag}", "tests", module,
                                tests_action(combination, module), needs=(contracts_key,),
                                **common))
        for index, workload in enumerate(workloads):
            skus = options.skus or list(workload.skus or [])
            if not skus:
                raise UsageError(f"workload {workload.name}: no SKUs in the suite and none "
                                 "given with --sku")
            for sku in skus:
                jobs.append(Job(f"workloads:{workload.name}:{sku}@{tag}", "workloads",
                                workload.name, workload_action(combination, workload, sku),
                                sku=sku, needs=(contracts_key,),
                                combination=combination, priority=rank * 10000 + index))
    others = tuple(job.key for job in jobs)
    jobs.append(Job("publish", "publish", "dashboard", publish_action, after=others))
    return jobs


def estimates_for(store: Store, jobs: list[Job]) -> dict[str, float]:
    found = {}
    for job in jobs:
        history = store.estimate(job.stage, job.name, job.sku)
        found[job.key] = history if history is not None else DEFAULT_ESTIMATES[job.stage]
    return found


class Nightly:
    """One run of the nightly against a store, with the harness parts from `toolbox`."""

    def __init__(self, ws, store: Store, *, toolbox: Toolbox | None = None,
                 dashboard_dir: Path | None = None, reporter: Reporter | None = None):
        self.ws, self.store = ws, store
        self.toolbox = toolbox or Toolbox.real()
        self.dashboard_dir = Path(dashboard_dir or ws.dashboard_dir)
        self.reporter = reporter

    def start(self, options: NightlyOptions) -> RunResult:
        combinations = self._combinations(options)
        workloads = self._workloads(options)
        plan = {"options": asdict(options),
                "combinations": [c.to_dict() for c in combinations]}
        jobs = plan_jobs(combinations, workloads, options,
                         conformance=self._conformance(options))
        plan["jobs"] = [job.key for job in jobs]
        run_id = self.store.start_run(tier=options.tier, budget_s=options.budget_s, plan=plan,
                                      host=socket.gethostname(), harness_version=__version__)
        return self._execute(run_id, jobs, options, done={}, used_before=0.0)

    def resume(self) -> RunResult:
        run = self.store.latest_unfinished_run()
        if run is None:
            raise UsageError("no unfinished run to resume (every stored run has completed)")
        plan = run["plan"]
        options = NightlyOptions(**plan["options"])
        combinations = [self.toolbox.combination_from_dict(data)
                        for data in plan["combinations"]]
        jobs = plan_jobs(combinations, self._workloads(options), options,
                         conformance=self._conformance(options))
        done = {job["key"]: job["status"] for job in self.store.jobs(run["id"])
                if job["status"] in FINISHED_STATUSES}
        self.store.update_run(run["id"], status="running")
        return self._execute(run["id"], jobs, options, done=done,
                             used_before=float((run["summary"] or {}).get("used_s", 0.0)))

    def _combinations(self, options: NightlyOptions) -> list:
        # A toolbox without a planner (a partial harness) runs the named combination alone.
        if not options.default_plan or self.toolbox.plan_default is None:
            return [self.toolbox.resolve(self.ws, options.combination, tuple(options.pins))]
        return list(self.toolbox.plan_default(self.ws, self.store))

    def _workloads(self, options: NightlyOptions) -> list:
        suite = self.toolbox.load_suite()
        return suite.select(options.tier, names=options.workloads or None)

    def _conformance(self, options: NightlyOptions):
        """The suite's conformance job spec when the tier runs it; naming workloads asks for
        those alone."""
        spec = getattr(self.toolbox.load_suite(), "conformance", None)
        if spec is None or options.workloads or not spec.in_tier(options.tier):
            return None
        return spec

    def _execute(self, run_id: int, jobs: list[Job], options: NightlyOptions, *,
                 done: dict[str, str], used_before: float) -> RunResult:
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
        budget = Budget(options.budget_s, used_before)
        reporter = _BudgetKeeper(self.store, run_id, budget, self.reporter)
        if hasattr(self.reporter, "begin"):
            self.reporter.begin(len(jobs), len(done))
        resources = Resources(self.ws, self.store, self.toolbox, self.dashboard_dir)
        share_cores(options.workers)
        executor = Executor(self.store, run_id, jobs, resources, budget=budget,
                            estimates=estimates_for(self.store, jobs),
                            job_timeout_s=options.job_timeout_s, workers=options.workers,
                            workdir=self.ws.home / "runs" / str(run_id), done=done,
                            reporter=reporter)
        try:
            ended = executor.run()
        except KeyboardInterrupt:
            self.store.update_run(run_id, status="interrupted",
                                  summary={"used_s": budget.used()})
            raise
        summary = summarise(self.store, run_id, budget)
        self.store.finish_run(run_id, "completed", summary)
        if summary["dashboard"]:
            # The publish job saw its own run still going; show the finished run.
            self.toolbox.publish(self.store, self.dashboard_dir)
        return RunResult(run_id, ended, summary, advisory_jobs(jobs, options))


# The combinations a default plan gates on; the rest of it is pairwise coverage.
GATING_COMBINATIONS = ("master", "release:latest")


def advisory_jobs(jobs: list[Job], options: NightlyOptions) -> frozenset[str]:
    if not options.default_plan:
        return frozenset()  # a combination asked for by name gates the run
    return frozenset(job.key for job in jobs if job.combination is not None
                     and job.combination.name not in GATING_COMBINATIONS)


class _BudgetKeeper:
    """Records the time used so far with each job's end, so a killed run resumes with the
    budget it had left; forwards to the display."""

    def __init__(self, store: Store, run_id: int, budget: Budget, display: Reporter | None):
        self.store, self.run_id, self.budget, self.display = store, run_id, budget, display

    def started(self, job: Job) -> None:
        if self.display:
            self.display.started(job)

    def finished(self, job: Job, status: str) -> None:
        self.store.update_run(self.run_id, summary={"used_s": self.budget.used()})
        if self.display:
            self.display.finished(job, status)


def summarise(store: Store, run_id: int, budget: Budget, slowest: int = 5) -> dict:
    """Counts by stage and outcome, the time used, the slowest jobs and the jobs the budget
    left out: what the summary table and the dashboard's banner show."""
    jobs = store.jobs(run_id)
    by_stage: dict[str, dict[str, int]] = {}
    for job in jobs:
        counts = by_stage.setdefault(job["stage"], {})
        counts[job["status"]] = counts.get(job["status"], 0) + 1
    timed = sorted((job for job in jobs if job["duration_s"] is not None),
                   key=lambda job: job["duration_s"], reverse=True)
    publish = next((job for job in jobs if job["stage"] == "publish"
                    and job["status"] == "passed"), None)
    return {
        "used_s": budget.used(), "budget_s": budget.total_s, "by_stage": by_stage,
        "slowest": [{"key": job["key"], "duration_s": job["duration_s"],
                     "status": job["status"]} for job in timed[:slowest]],
        "out_of_budget": [job["key"] for job in jobs if job["status"] == "not_run"
                          and (job["details"] or {}).get("reason") == "budget"],
        "bad": [{"key": job["key"], "status": job["status"], "message": job["message"]}
                for job in jobs if job["status"] in BAD_STATUSES],
        "dashboard": publish["message"] if publish else None,
    }


def share_cores(workers: int) -> None:
    """Give each concurrent job its share of the cores: numpy's BLAS in every job otherwise
    starts a thread per core, and oversubscribed BLAS threads slow a 2-core machine manyfold.
    Only wall-clock figures depend on this; simulated cycles never do."""
    threads = str(max(1, (os.cpu_count() or 1) // max(1, workers)))
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, threads)
