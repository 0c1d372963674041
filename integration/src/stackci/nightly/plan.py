"""Planning a night: which combinations, which jobs, in which order; the plan is data.

    build -> contracts -> tests (one job per module)
                       -> workloads (one job per workload x SKU of the tier)
          -> conformance (the ONNX node suite; the opslib size report)
    -> regressions (per combination, after its workloads and conformance whatever their
       outcome) -> bisect x N (one culprit-search probe each, a chain) -> publish

Without --combination or --pin the night runs the default plan (compat/coverage.py): master,
release:latest and the fewest combinations covering every verified-compatible pair, at most
`max_combinations` of them: the rest are deferred (their jobs recorded as not run for the
budget, and planned first among the coverage next night). nightly/planner.py estimates,
orders and predicts the jobs.

A `Plan` (options, resolved combinations, and every job with its action name and parameters,
workloads included as full records) is stored with the run. `--resume` rebuilds the jobs from
the stored plan alone, so it executes exactly the planned jobs even after suite.yaml changed.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field

from stackci.compat import coverage
from stackci.compat.verify import verify_window
from stackci.errors import UsageError
from stackci.model import GATING_COMBINATIONS, Job
from stackci.nightly.planner import (COVERAGE, GATING, NEW, History, WorkRates, p0_of, predict,
                                     prioritise, remeasure_sample)
from stackci.nightly.stages import ACTIONS, analysis
from stackci.results.history import past_jobs
from stackci.sources.combination import Combination
from stackci.sources.resolve import resolve
from stackci.workloads.suite import Suite, Workload, load_suite
from stackci.workloads.work import workload_work


@dataclass
class NightlyOptions:
    tier: str = "smoke"  # the CLI's default too: `--tier nightly` runs the full suite
    workloads: list[str] = field(default_factory=list)
    skus: list[str] = field(default_factory=list)
    combination: str = "master"
    pins: list[str] = field(default_factory=list)
    budget_s: float = 24 * 3600.0
    workers: int = 2
    job_timeout_s: float = 30 * 60.0
    no_tests: bool = False
    no_analysis: bool = False  # leave out the architecture team's analysis stage
    default_plan: bool = False  # master, release:latest and pairwise coverage (coverage.py)
    # The default plan's bound on combinations (gating ones included); 0: no bound. The
    # CLI's default (commands/nightly.py) is measured: docs/design.md, "Planning the night".
    max_combinations: int = 0
    no_reuse: bool = False  # run every job, even where a stored result has the same inputs
    # Probes of culprit searches a night may run after the gating work (0: none); each is a
    # job the budget admits or leaves for the next night (stages/bisect.py).
    bisect_probes: int = 8


@dataclass(frozen=True)
class JobSpec:
    """One planned job: what the store lists and what the action is rebuilt from."""

    key: str
    stage: str
    name: str
    action: str  # a key of stages.ACTIONS
    combination: str | None = None  # the combination's key
    sku: str | None = None
    needs: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    priority: int = 0
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {**asdict(self), "needs": list(self.needs), "after": list(self.after)}

    @classmethod
    def from_dict(cls, data: dict) -> "JobSpec":
        return cls(**{**data, "needs": tuple(data["needs"]), "after": tuple(data["after"])})


@dataclass
class Plan:
    options: NightlyOptions
    combinations: list[Combination]
    jobs: list[JobSpec]
    # What the planner found (nightly/planner.py): job key -> estimate (seconds) and where it
    # came from; combination keys deferred by --max-combinations (their jobs are not run);
    # job key -> {nights, since, run_id} for work carried over; the P0 when it does not fit.
    estimates: dict[str, float] = field(default_factory=dict)
    estimate_sources: dict[str, str] = field(default_factory=dict)
    deferred: list[str] = field(default_factory=list)
    carried: dict[str, dict] = field(default_factory=dict)
    predicted_end_s: float | None = None
    p0: dict | None = None
    remeasure: list[str] = field(default_factory=list)  # reusable jobs that run all the same

    def to_dict(self) -> dict:
        return {"options": asdict(self.options),
                "combinations": [c.to_dict() for c in self.combinations],
                "jobs": [job.to_dict() for job in self.jobs],
                "estimates": self.estimates, "estimate_sources": self.estimate_sources,
                "deferred": self.deferred, "carried": self.carried,
                "predicted_end_s": self.predicted_end_s, "p0": self.p0,
                "remeasure": self.remeasure}

    @classmethod
    def from_dict(cls, data: dict, suite: Suite | None = None) -> "Plan":
        """The stored plan. A run planned before plans held their jobs (`jobs` lists keys
        only) is re-planned from its stored options and combinations on `suite`, keeping
        exactly the stored keys: what such a run's resume always did."""
        options = NightlyOptions(**data["options"])
        combinations = [Combination.from_dict(c) for c in data["combinations"]]
        jobs = data.get("jobs") or []
        if all(isinstance(job, dict) for job in jobs):
            return cls(options, combinations, [JobSpec.from_dict(job) for job in jobs],
                       estimates=data.get("estimates") or {},
                       estimate_sources=data.get("estimate_sources") or {},
                       deferred=data.get("deferred") or [], carried=data.get("carried") or {},
                       predicted_end_s=data.get("predicted_end_s"), p0=data.get("p0"),
                       remeasure=data.get("remeasure") or [])
        again = make_plan(None, None, options, suite, combinations)
        again.jobs = [job for job in again.jobs if job.key in set(jobs)]
        return again

    def advisory(self) -> frozenset[str]:
        """Jobs of coverage combinations: their failures are findings for the compatibility
        matrix, not failures of the run. A combination asked for by name gates the run."""
        if not self.options.default_plan:
            return frozenset()
        names = {c.key: c.name for c in self.combinations}
        return frozenset(job.key for job in self.jobs if job.combination is not None
                         and names[job.combination] not in GATING_COMBINATIONS)

    def gating(self) -> frozenset[str]:
        return frozenset(job.key for job in self.jobs) - self.advisory()

    def deferred_jobs(self) -> list[JobSpec]:
        deferred = set(self.deferred)
        return [job for job in self.jobs if job.combination in deferred]

    def to_jobs(self) -> list[Job]:
        """The executable jobs: each spec's action made from its stored parameters."""
        by_key = {c.key: c for c in self.combinations}
        jobs = []
        for spec in self.jobs:
            combination = by_key.get(spec.combination) if spec.combination else None
            jobs.append(Job(spec.key, spec.stage, spec.name,
                            ACTIONS[spec.action](combination, spec.params), sku=spec.sku,
                            combination=combination, needs=spec.needs, after=spec.after,
                            priority=spec.priority))
        return jobs


def make_plan(ws, store, options: NightlyOptions, suite: Suite | None = None,
              combinations: list[Combination] | None = None) -> Plan:
    """Resolve the combinations (unless given), select the workloads, lay out the DAG, then
    estimate, order and predict it against the budget (nightly/planner.py)."""
    suite = suite or load_suite()
    history = History(past_jobs(store) if store is not None else [])
    combinations = combinations or choose_combinations(ws, store, options)
    classes = {c.key: GATING if not options.default_plan or c.name in GATING_COMBINATIONS
               else COVERAGE if history.knows_combination(c.key) else NEW
               for c in combinations}
    combinations, deferred = cap_combinations(combinations, classes, history,
                                              options.max_combinations)
    workloads = suite.select(options.tier, names=options.workloads or None)
    conformance = suite.conformance
    if conformance is None or options.workloads or not conformance.in_tier(options.tier):
        conformance = None  # naming workloads asks for those alone
    specs = plan_jobs(combinations, workloads, options, conformance=conformance)
    specs, carried = prioritise(specs, classes, history, weekly=options.tier == "weekly")
    plan = Plan(options, combinations, specs, deferred=[c.key for c in deferred],
                carried=carried, remeasure=remeasure_sample(specs, history))
    works = job_works(ws, specs, history) if ws is not None else {}
    rates = WorkRates.fit(history, specs, works)
    for spec in specs:
        plan.estimates[spec.key], plan.estimate_sources[spec.key] = history.estimate(
            spec.key, spec.stage, spec.name, spec.sku, works.get(spec.key), rates)
    prediction = predict(specs, plan.estimates, options.workers, options.budget_s,
                         skip=frozenset(job.key for job in plan.deferred_jobs()))
    plan.predicted_end_s = round(prediction.end_s, 1)
    plan.p0 = p0_of(prediction, specs, plan.gating())
    return plan


def job_works(ws, specs: list[JobSpec], history: History) -> dict[str, float]:
    """job key -> the operations of the models it runs (workloads/work.py): the planner's
    prior where nothing like a job ran, and the points its seconds per operation are fitted
    on; counted only when some job running a model has no history of its own or elsewhere
    (a steady night reads no graph). A model whose graph is not at hand (a wheel not
    fetched yet) has no figure."""
    def records_of(spec: JobSpec) -> list[dict]:
        return spec.params.get("workloads") or \
            ([spec.params["workload"]] if "workload" in spec.params else [])

    if not any(records_of(spec) and history.own_median(spec.key) is None
               and history.similar_median(spec.stage, spec.name, spec.sku) is None
               for spec in specs):
        return {}
    works: dict[str, float] = {}
    made: dict[str, float | None] = {}

    def work_of(record: dict) -> float | None:
        workload = Workload.from_record(record)
        if workload.name not in made:
            made[workload.name] = workload_work(ws, workload)
        return made[workload.name]

    for spec in specs:
        found = [work_of(record) for record in records_of(spec)]
        if found and all(work is not None for work in found):
            works[spec.key] = sum(found)
    return works


def cap_combinations(combinations: list[Combination], classes: dict[str, int],
                     history: History, cap: int) -> tuple[list[Combination], list[Combination]]:
    """(all of them, the ones past the cap), coverage reordered: combinations with work
    carried over first (longest waiting first), then new ones, then the rest as discovered."""
    gating = [c for c in combinations if classes[c.key] == GATING]
    waited = {c.key: max((history.carried(key) or {"nights": 0})["nights"]
                         for key in history.by_key if key.endswith("@" + c.key[:12]))
              if history.knows_combination(c.key) else 0 for c in combinations}
    others = sorted((c for c in combinations if classes[c.key] != GATING),
                    key=lambda c: (-waited[c.key], classes[c.key]))
    if cap <= 0 or len(gating) + len(others) <= cap:
        return gating + others, []
    keep = max(0, cap - len(gating))
    return gating + others, others[keep:]


def choose_combinations(ws, store, options: NightlyOptions) -> list[Combination]:
    if not options.default_plan:
        return [resolve(ws, options.combination, tuple(options.pins))]
    verify_window(ws, store, _report_verdict)
    return coverage.default_plan(ws, store, resolve=resolve)


def _report_verdict(pair, verdict: dict) -> None:
    if not verdict.get("cached_from"):
        print(f"stackci: verified {pair.name}: {verdict['status']}", file=sys.stderr)


def plan_jobs(combinations: list, workloads: list, options: NightlyOptions,
              modules_of=None, conformance=None) -> list[JobSpec]:
    """The DAG for these combinations. `modules_of(combination)` lists the modules whose tests
    run (default: the combination's modules); `conformance` (the suite's, when its tier runs)
    adds the node suite and the opslib size report per combination."""
    jobs: list[JobSpec] = []
    for rank, combination in enumerate(combinations):
        tag = combination.key[:12]
        build_key, contracts_key = f"build@{tag}", f"contracts@{tag}"
        common = {"combination": combination.key, "priority": rank * 10000}
        jobs.append(JobSpec(build_key, "build", combination.name, "build", **common))
        if conformance is not None:
            jobs.append(JobSpec(f"conformance:onnx-node@{tag}", "conformance", "onnx-node",
                                "onnx-node", sku=conformance.sku, needs=(build_key,),
                                params={"spec": conformance.to_record()}, **common))
            jobs.append(JobSpec(f"conformance:opslib-size@{tag}", "conformance",
                                "opslib-size", "opslib-size", needs=(build_key,), **common))
        jobs.append(JobSpec(contracts_key, "contracts", combination.name, "contracts",
                            needs=(build_key,), **common))
        if not options.no_tests:
            for module in (modules_of or (lambda c: list(c.modules)))(combination):
                jobs.append(JobSpec(f"tests:{module}@{tag}", "tests", module, "tests",
                                    needs=(contracts_key,), params={"module": module},
                                    **common))
        for index, workload in enumerate(workloads):
            skus = options.skus or list(workload.skus or [])
            if not skus:
                raise UsageError(f"workload {workload.name}: no SKUs in the suite and none "
                                 "given with --sku")
            for sku in skus:
                jobs.append(JobSpec(f"workloads:{workload.name}:{sku}@{tag}", "workloads",
                                    workload.name, "workloads", combination=combination.key,
                                    sku=sku, needs=(contracts_key,),
                                    priority=rank * 10000 + index,
                                    params={"workload": workload.to_record(), "sku": sku}))
    jobs += regression_jobs(combinations, jobs, options)
    gating = [c for c in combinations if not options.default_plan
              or c.name in GATING_COMBINATIONS]
    if not options.no_analysis:
        jobs += [JobSpec(**spec) for spec in analysis.job_specs(
            gating, workloads, jobs, every_precision=options.tier != "smoke")]
    others = tuple(job.key for job in jobs)
    jobs.append(JobSpec("publish", "publish", "dashboard", "publish", after=others))
    return jobs


def regression_jobs(combinations: list, jobs: list[JobSpec], options: NightlyOptions
                    ) -> list[JobSpec]:
    """Detection per combination, after the jobs that measure its series; then the chain of
    culprit-search probes, lowest priority, after every detection."""
    found = []
    for rank, combination in enumerate(combinations):
        measured = tuple(job.key for job in jobs if job.combination == combination.key
                         and job.stage in ("workloads", "conformance", "tests"))
        found.append(JobSpec(f"regressions@{combination.key[:12]}", "regressions",
                             combination.name, "regressions", combination=combination.key,
                             after=measured, priority=rank * 10000))
    detections = tuple(job.key for job in found)
    previous: tuple[str, ...] = ()
    for probe in range(options.bisect_probes if detections else 0):
        key = f"bisect:{probe + 1}"
        found.append(JobSpec(key, "bisect", "culprits", "bisect",
                             after=detections + previous, priority=probe))
        previous = (key,)
    return found
