"""What a finished night amounts to: counts by stage and outcome, the time used, the slowest
jobs, the jobs the budget left out, the bad ones, and where the dashboard is."""

from __future__ import annotations

from stackci.model import BAD_STATUSES, BUDGET, NOT_RUN, PASSED
from stackci.nightly.budget import Budget
from stackci.results.store import Store


def summarise(store: Store, run_id: int, budget: Budget, slowest: int = 5) -> dict:
    """What the summary table and the dashboard's banner show."""
    jobs = store.jobs(run_id)
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
    }
