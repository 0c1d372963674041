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
    return {
        "run": run, "jobs": jobs, "combinations": combinations, "modules": modules,
        "outcomes": OUTCOMES,
        # What a reader must look at: anything that did not pass and was not merely skipped
        # because the combination predates what the job needs.
        "attention": [job for job in jobs if job.status != PASSED
                      and job.reason != NOT_APPLICABLE],
        "out_of_budget": [job for job in jobs if job.status == NOT_RUN
                          and job.reason == BUDGET],
        "used_s": run.summary.get("used_s"),
    }
