"""What a finished night amounts to: the P0 (what does not fit the day), counts by stage and
outcome, the time used, the slowest jobs, the jobs the budget left out (and how long carried-over
work has waited), the bad ones, and where the dashboard is."""

from __future__ import annotations

from stackci.model import BAD_STATUSES, BUDGET, NOT_RUN, PASSED, REUSED
from stackci.nightly.budget import Budget
from stackci.results.store import Store


def summarise(store: Store, run_id: int, budget: Budget, plan=None, slowest: int = 5) -> dict:
    """What the summary table and the dashboard's banner show; `plan` (nightly/plan.Plan)
    adds the P0 and the carried-over work."""
    jobs = store.jobs(run_id)
    found = _summary(jobs, budget, slowest)
    if plan is not None:
        found.update(planned(plan, jobs))
    return found


def planned(plan, jobs) -> dict:
    """The P0 (predicted, or found when a gating job was left out all the same), and the
    carried-over work: what waited and ran tonight, what still waits."""
    gating = plan.gating()
    left_out = [job for job in jobs if job.status == NOT_RUN and job.reason == BUDGET]
    gating_out = [job.key for job in left_out if job.key in gating]
    p0 = dict(plan.p0) if plan.p0 else None
    if gating_out:
        first = next(job for job in left_out if job.key in gating)
        p0 = {**(p0 or {"predicted_end_s": plan.predicted_end_s, "budget_s": plan.options.budget_s,
                        "stage": first.stage, "count": len(left_out),
                        "jobs": [job.key for job in left_out][:20]}),
              "gating": gating_out[:20], "gating_left_out": len(gating_out)}
    status = {job.key: job.status for job in jobs}
    return {
        "p0": p0, "predicted_end_s": plan.predicted_end_s,
        "deferred_combinations": len(plan.deferred),
        "carried": [{"key": key, **waited, "status": status.get(key)}
                    for key, waited in sorted(plan.carried.items(),
                                              key=lambda item: -item[1]["nights"])][:50],
        "carried_count": len(plan.carried),
    }


def _summary(jobs, budget: Budget, slowest: int) -> dict:
    reused = [job for job in jobs if job.reason == REUSED and job.details.get("reused_from")]
    by_stage: dict[str, dict[str, int]] = {}
    for job in jobs:
        counts = by_stage.setdefault(job.stage, {})
        counts[job.status] = counts.get(job.status, 0) + 1
    timed = sorted((job for job in jobs if job.duration_s is not None),
                   key=lambda job: job.duration_s, reverse=True)
    publish = next((job for job in jobs if job.stage == "publish" and job.status == PASSED),
                   None)
    return {
        "used_s": budget.used(), "budget_s": budget.total_s, "by_stage": by_stage,
        "slowest": [{"key": job.key, "duration_s": job.duration_s, "status": job.status}
                    for job in timed[:slowest]],
        "out_of_budget": [job.key for job in jobs if job.status == NOT_RUN
                          and job.reason == BUDGET],
        "bad": [{"key": job.key, "status": job.status, "message": job.message}
                for job in jobs if job.status in BAD_STATUSES],
        "dashboard": publish.message if publish else None,
        # Not run tonight because a stored result had the same inputs (nightly/reuse.py).
        "reused": {"count": len(reused), "from_runs": sorted({
            job.details["reused_from"]["run_id"] for job in reused}),
            "saved_s": round(sum(job.details["reused_from"].get("duration_s") or 0
                                 for job in reused), 1)},
    }
