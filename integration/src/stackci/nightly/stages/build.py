"""build: assemble the combination's environment; its lock and the driver's SKUs are the
evidence (the executor records them with the job)."""

from __future__ import annotations

from stackci.errors import StackError
from stackci.model import PASSED, JobContext, Outcome


def action(combination, params: dict):
    def run(ctx: JobContext) -> Outcome:
        env = ctx.resources.environment(combination)
        details = {"environment": str(env.path), "python": str(env.python)}
        # The lock (versions, commits, trees, third-party pins) is part of the evidence.
        lock = (env.path.name, env.lock)
        # The SKU descriptions only annotate the dashboard: a driver without its CLI still
        # built, and its workloads will say what is wrong with it.
        try:
            skus = ctx.resources.port.skus(env.python, ctx.timeout_s)
        except StackError as exc:
            return Outcome(PASSED, f"environment {env.path}; SKUs not recorded: {exc}",
                           details=details, lock=lock)
        return Outcome(PASSED, f"environment {env.path}",
                       details={**details, "skus": [sku["name"] for sku in skus]},
                       skus=skus, lock=lock)
    return run
