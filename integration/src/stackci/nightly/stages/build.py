"""build: assemble the combination's environment; its lock and the driver's SKUs are the
evidence (the executor records them with the job)."""

from __future__ import annotations

from stackci.errors import StackError
from stackci.model import ERROR, PASSED, JobContext, Outcome


def action(combination, params: dict):
    def run(ctx: JobContext) -> Outcome:
        env = ctx.resources.environment(combination)
        details = {"environment": str(env.path), "python": str(env.python)}
        # The lock (versions, commits, trees, third-party pins) is part of the evidence.
        lock = (env.path.name, env.lock)
        # The SKU descriptions only annotate the dashboard: a driver predating its `skus`
        # command still built. A driver that has the command but cannot load its own SKU
        # files is broken, and every workload on it would fail: the build fails, saying why.
        try:
            skus = ctx.resources.port.skus(env.python, ctx.timeout_s)
        except StackError as exc:
            if not predates_skus_command(str(exc)):
                return Outcome(ERROR, f"the driver cannot load its SKUs: {exc}",
                               details=details, lock=lock)
            return Outcome(PASSED, f"environment {env.path}; SKUs not recorded: {exc}",
                           details=details, lock=lock)
        return Outcome(PASSED, f"environment {env.path}",
                       details={**details, "skus": [sku["name"] for sku in skus]},
                       skus=skus, lock=lock)
    return run


def predates_skus_command(message: str) -> bool:
    """Whether `npu_driver skus` failed because the driver has no such command (or no CLI)."""
    return any(sign in message for sign in ("invalid choice", "No module named",
                                            "cannot be directly executed"))
