"""publish: the dashboard from the store, once, after the summary (nightly/run.py)."""

from __future__ import annotations

from stackci.model import PASSED, JobContext, Outcome


def action(combination, params: dict):
    def run(ctx: JobContext) -> Outcome:
        path = ctx.resources.publish()
        return Outcome(PASSED, str(path), details={"index": str(path)})
    return run
