"""The latest run: its combinations, what needs attention, what the budget left out
(index.html)."""

from __future__ import annotations

from stackci.model import NOT_APPLICABLE, BUDGET, NOT_RUN, OUTCOMES, PASSED
from stackci.results.store import Store


def latest_run_view(store: Store) -> dict | None:
    runs = store.runs(limit=1)
    if not runs:
        return None
    run = runs[0]
    jobs = store.jobs(run["id"])
    combinations = [c for c in store.run_combinations(run["id"]) if c]
    modules = sorted({m for c in combinations for m in c["modules"]})
    for combination in combinations:
        counts: dict[str, int] = {}
        for job in jobs:
            if job["combination_id"] == combination["id"]:
                counts[job["status"]] = counts.get(job["status"], 0) + 1
        combination["counts"] = counts
    out_of_budget = [job for job in jobs if job.status == NOT_RUN and job.reason == BUDGET]
    return {
        "run": run, "jobs": jobs, "combinations": combinations, "modules": modules,
        "outcomes": OUTCOMES,
        # What a reader must look at: anything that did not pass and was not merely skipped
        # because the combination predates what the job needs.
        # (What the budget left out has a banner of its own.)
        "attention": [job for job in jobs if job.status != PASSED
                      and job.reason not in (NOT_APPLICABLE, BUDGET)],
        "out_of_budget": out_of_budget,
        "used_s": run.summary.get("used_s"),
        # The planner's word (nightly/planner.py): what does not fit, and how long each job
        # left out has waited (job key -> {nights, since, run_id}, nights before this one).
        "p0": run.summary.get("p0") or run.plan.get("p0"),
        "waited": {key: waited for key, waited in (run.plan.get("carried") or {}).items()
                   if key in {job.key for job in out_of_budget}},
        "deferred": len(run.plan.get("deferred") or []),
        # The plan's estimate of every job and its evidence (history, similar, work, stage,
        # work-default, default): a job the plan left out never started, so its row has none.
        "estimates": run.plan.get("estimates") or {},
        "estimate_sources": run.plan.get("estimate_sources") or {},
    }
