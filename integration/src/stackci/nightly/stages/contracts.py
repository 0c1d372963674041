"""contracts: do the declared interface ranges of the combination agree?"""

from __future__ import annotations

from stackci.compat.contracts import check_declared
from stackci.model import FAILED, PASSED, JobContext, Outcome


def action(combination, params: dict):
    def run(ctx: JobContext) -> Outcome:
        verdict = check_declared(ctx.resources.contracts(combination))
        details = {"problems": list(verdict.problems), "edges": list(verdict.edges)}
        if verdict.ok:
            return Outcome(PASSED, f"{len(verdict.edges)} contract edges agree",
                           details=details)
        return Outcome(FAILED, "; ".join(verdict.problems), details=details)
    return run
