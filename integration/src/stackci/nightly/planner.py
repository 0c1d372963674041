"""Planning the night before its first job starts: estimate every job, order the jobs by
priority, and predict when the night ends on the workers it has.

Estimates, best evidence first: the median of the job's own last full runs (by job key: the
same combination, stage, name and SKU); else the median of similar jobs (the same stage, name
and SKU on other combinations: the same workload elsewhere); else, for a job running a model
never run anywhere, the cost model's work (workloads/work.py: the graph's multiply-accumulates
and element operations) at the seconds per operation its kind of job took in the history
(`WorkRates`); else the median of the stage; else that work at budget.DEFAULT_WORK_RATES (this
machine's, measured); else the stage's default (budget.DEFAULT_ESTIMATES, generous on
purpose). The work comes before the stage's median because a stage's jobs differ a
hundredfold in size (SqueezeNet 0.35 G operations, the GPT 6.8 G): a median would give both
the same.

Priorities, in classes (PRIORITY_CLASSES): gating work (master, release:latest, a combination
asked for by name), then new or changed combinations (never run before), then coverage, then
work carried over from earlier nights, then weekly sweeps. Carried-over work rises one class
for every further night it waits (never above new work): a job left out is not left out for
ever (gating work carried over stays gating). Within a class: what was carried over or failed
last time first, then what has never run (new or changed), then the order of discovery.

The prediction replays the executor's own rule (the ready job of best priority starts when a
worker is free) on the estimates; the jobs predicted to end past the budget are the P0.
"""

from __future__ import annotations

import heapq
import statistics
from dataclasses import dataclass, field, replace

from stackci.model import BAD_STATUSES, BUDGET, FINISHED_STATUSES, NOT_RUN, \
    RAN_THROUGH_STATUSES, STAGES
from stackci.nightly.budget import DEFAULT_ESTIMATES, DEFAULT_WORK_RATES

PRIORITY_CLASSES = ("gating", "new", "coverage", "carried", "weekly")
GATING, NEW, COVERAGE, CARRIED, WEEKLY = range(len(PRIORITY_CLASSES))
RECENT = 5  # full runs an estimate takes the median of
CLASS_STEP, RANK_STEP = 10_000_000, 1_000_000


@dataclass
class History:
    """The recent past of every job (results/history.PastJob, newest run first)."""

    jobs: list = field(default_factory=list)

    def __post_init__(self):
        self.by_key: dict[str, list] = {}
        self.similar: dict[tuple, list[float]] = {}
        self.stage: dict[str, list[float]] = {}
        for past in self.jobs:
            self.by_key.setdefault(past.key, []).append(past)
            if past.status in RAN_THROUGH_STATUSES and past.duration_s is not None:
                self.similar.setdefault((past.stage, past.name, past.sku), []).append(
                    past.duration_s)
                self.stage.setdefault(past.stage, []).append(past.duration_s)
        self.tags = {key.rpartition("@")[2] for key in self.by_key}

    def estimate(self, key: str, stage: str, name: str, sku: str | None,
                 work: float | None = None, rates: "WorkRates | None" = None
                 ) -> tuple[float, str]:
        """(seconds, where the figure came from: history | similar | work | stage |
        work-default | default); `work` is the job's operations (workloads/work.py)."""
        own = self.own_median(key)
        if own is not None:
            return own, "history"
        similar = self.similar_median(stage, name, sku)
        if similar is not None:
            return similar, "similar"
        kind = job_kind(key)
        if work is not None and rates is not None and kind in rates.fitted:
            return rates.seconds(kind, work), "work"
        staged = self.stage.get(stage, [])[:4 * RECENT]
        if staged:
            return statistics.median(staged), "stage"
        if work is not None and kind in DEFAULT_WORK_RATES:
            return WorkRates.line(DEFAULT_WORK_RATES[kind], work), "work-default"
        return DEFAULT_ESTIMATES[stage], "default"

    def own_median(self, key: str) -> float | None:
        own = [p.duration_s for p in self.by_key.get(key, ())
               if p.status in RAN_THROUGH_STATUSES and p.duration_s is not None][:RECENT]
        return statistics.median(own) if own else None

    def similar_median(self, stage: str, name: str, sku: str | None) -> float | None:
        similar = self.similar.get((stage, name, sku), [])[:RECENT]
        return statistics.median(similar) if similar else None

    def carried(self, key: str) -> dict | None:
        """`{nights, since, run_id}` when the newest runs that planned `key` left it out for
        lack of budget, counting back to the last time it ran; else None."""
        nights, first = 0, None
        for past in self.by_key.get(key, ()):
            if past.status in FINISHED_STATUSES:
                break
            if past.status == NOT_RUN and past.reason == BUDGET:
                nights, first = nights + 1, past
        if not nights:
            return None
        return {"nights": nights, "since": first.started_at.isoformat(timespec="seconds"),
                "run_id": first.run_id}

    def failed_last(self, key: str) -> bool:
        last = next((p for p in self.by_key.get(key, ()) if p.status in FINISHED_STATUSES), None)
        return last is not None and last.status in BAD_STATUSES

    def has_run(self, key: str) -> bool:
        return any(p.status in FINISHED_STATUSES for p in self.by_key.get(key, ()))

    def knows_combination(self, key: str) -> bool:
        return key[:12] in self.tags


def job_kind(key: str) -> str:
    """What kind of job a key names (`workloads`, `analysis`, `analysis-explore`...): the
    part before its first `:` or `@`."""
    return key.split("@", 1)[0].split(":", 1)[0]


@dataclass
class WorkRates:
    """Seconds per operation of work by kind of job, fitted on the history: per kind, the jobs
    planned tonight whose work is known and whose workload ran before (the median of its
    recent runs) give (work, seconds) points; a line through them by Theil-Sen (robust to a
    slow night), or through the origin below three points. `fitted`: kind -> (intercept s,
    seconds per operation)."""

    fitted: dict[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def fit(cls, history: History, specs: list, works: dict[str, float]) -> "WorkRates":
        points: dict[str, list[tuple[float, float]]] = {}
        for spec in specs:
            work = works.get(spec.key)
            seconds = history.similar_median(spec.stage, spec.name, spec.sku)
            if work and seconds is not None:
                points.setdefault(job_kind(spec.key), []).append((work, seconds))
        return cls({kind: _line(found) for kind, found in points.items()})

    def seconds(self, kind: str, work: float) -> float:
        return self.line(self.fitted[kind], work)

    @staticmethod
    def line(fitted: tuple[float, float], work: float) -> float:
        intercept, slope = fitted
        return intercept + slope * work


def _line(points: list[tuple[float, float]]) -> tuple[float, float]:
    """(intercept, slope) of seconds over work: Theil-Sen's, a published robust fit (scipy),
    with the intercept within [0, the fastest job] and a rising slope; else the median rate
    through the origin."""
    works = [work for work, _ in points]
    seconds = [s for _, s in points]
    if len(set(works)) >= 3:
        from scipy.stats import theilslopes  # imported only when a fit needs it (slow import)
        slope, intercept, _, _ = theilslopes(seconds, works)
        if slope > 0:
            return min(max(float(intercept), 0.0), min(seconds)), float(slope)
    return 0.0, statistics.median(s / w for w, s in points)


def remeasure_sample(specs: list, history: History, share: int = 16) -> list[str]:
    """The workload jobs that run even where their result could be reused: one in `share`
    (at least one), those whose wall-clock figures were measured longest ago first (a
    reused job records no duration), so over the nights every figure is measured again."""
    def last_measured(spec) -> int:
        return next((p.run_id for p in history.by_key.get(spec.key, ())
                     if p.duration_s is not None), -1)
    measured = [spec for spec in specs if spec.stage == "workloads" and last_measured(spec) >= 0]
    if not measured:
        return []
    count = max(1, len(measured) // share)
    return [spec.key for spec in sorted(measured, key=lambda s: (last_measured(s), s.key))
            ][:count]


def prioritise(specs: list, classes: dict[str, int], history: History, *,
               weekly: bool = False) -> tuple[list, dict[str, dict]]:
    """The specs with their priority (lower runs first) and the carried-over ones:
    `classes` maps a combination key to its class (GATING, NEW or COVERAGE)."""
    carried, out = {}, []
    for rank, spec in enumerate(specs):
        klass = WEEKLY if weekly else classes.get(spec.combination, COVERAGE)
        waited = history.carried(spec.key)
        if waited is not None:
            carried[spec.key] = waited
            # Gating work stays gating; the rest rises a class a night it waits.
            if klass != GATING:
                klass = max(NEW, CARRIED - (waited["nights"] - 1))
        # Within a class: carried over or failed last time, then never run, then the rest.
        within = 0 if waited or history.failed_last(spec.key) else \
            1 if not history.has_run(spec.key) else 2
        out.append(replace(spec, priority=klass * CLASS_STEP + within * RANK_STEP + rank))
    return out, carried


def priority_class(priority: int) -> str:
    return PRIORITY_CLASSES[min(priority // CLASS_STEP, len(PRIORITY_CLASSES) - 1)]


@dataclass
class Prediction:
    starts: dict[str, float]
    ends: dict[str, float]
    end_s: float
    budget_s: float

    def over(self) -> list[str]:
        """The jobs predicted to end past the budget, in the order they would start."""
        return sorted((key for key, end in self.ends.items() if end > self.budget_s),
                      key=lambda key: (self.starts[key], key))


def predict(specs: list, estimates: dict[str, float], workers: int, budget_s: float,
            used_s: float = 0.0, skip=frozenset()) -> Prediction:
    """When each job starts and ends if every estimate holds: the executor's own rule, a
    free worker takes the ready job of best priority (all dependencies assumed to pass)."""
    jobs = {spec.key: spec for spec in specs if spec.key not in skip}
    waiting = {key: {d for d in (*spec.needs, *spec.after) if d in jobs}
               for key, spec in jobs.items()}
    users: dict[str, list[str]] = {}
    for key, deps in waiting.items():
        for dep in deps:
            users.setdefault(dep, []).append(key)

    def order(key):
        spec = jobs[key]
        stage = STAGES.index(spec.stage) if spec.stage in STAGES else len(STAGES)
        return (spec.priority, stage, key)

    ready = [(order(key), key) for key, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []
    starts, ends, now = {}, {}, used_s
    while ready or running:
        while ready and len(running) < max(1, workers):
            _, key = heapq.heappop(ready)
            starts[key] = now
            heapq.heappush(running, (now + estimates.get(key, 0.0), key))
        now, key = heapq.heappop(running)
        ends[key] = now
        for user in users.get(key, ()):
            waiting[user].discard(key)
            if not waiting[user]:
                heapq.heappush(ready, (order(user), user))
    return Prediction(starts, ends, max(ends.values(), default=used_s), budget_s)


def p0_of(prediction: Prediction, specs: list, gating: frozenset[str], limit: int = 20
          ) -> dict | None:
    """What pushes the night over its budget: the stage of the first job predicted not to
    fit, and the jobs that do not, gating ones named apart. None when the night fits."""
    over = prediction.over()
    if not over:
        return None
    stage = {spec.key: spec.stage for spec in specs}
    return {"predicted_end_s": round(prediction.end_s, 1), "budget_s": prediction.budget_s,
            "stage": stage[over[0]], "count": len(over), "jobs": over[:limit],
            "gating": [key for key in over if key in gating][:limit]}
