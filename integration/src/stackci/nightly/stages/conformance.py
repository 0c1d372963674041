"""conformance: the ONNX backend node suite (pass count, failures by class) and the kernel
library's size report, per combination."""

from __future__ import annotations

from typing import Callable

from stackci.compat.contracts import unmet_requirements
from stackci.errors import StackError
from stackci.model import (CONFORMANCE_PASSED, CONFORMANCE_TOTAL, FAILED, FAILURE_CLASSES,
                           NOT_APPLICABLE, NOT_RUN, PASSED, JobContext, Outcome,
                           conformance_metric)
from stackci.workloads.suite import Conformance

# What a combination must provide for these jobs to apply: the node suite's runner came with
# compiler-api 1.1, the library's size report with opslib-api 1.2.
CONFORMANCE_REQUIRES = (("compiler-api", ">=1.1"),)

OPSLIB_STATS_REQUIRES = (("opslib-api", ">=1.2"),)

DETAIL_CHARS = 300  # of each failure's message kept in the job's details


def not_applicable(ctx: JobContext, combination, requires) -> Outcome | None:
    """A not-run outcome when the combination lacks an interface version `requires` needs."""
    unmet = unmet_requirements(requires, ctx.resources.provided(combination))
    if not unmet:
        return None
    return Outcome(NOT_RUN, "not applicable: " + "; ".join(unmet),
                   details={"reason": NOT_APPLICABLE})


def conformance_action(combination, params: dict) -> Callable[[JobContext], Outcome]:
    """The ONNX backend node suite on the combination: pass count and classified failures."""
    spec = Conformance.from_record(params["spec"])

    def run(ctx: JobContext) -> Outcome:
        env = ctx.resources.environment(combination)
        skipped = not_applicable(ctx, combination, CONFORMANCE_REQUIRES)
        if skipped:
            return skipped
        report = ctx.resources.port.conformance(env.python, spec.sku, ctx.timeout_s)
        return conformance_outcome(report, spec)
    return run


def conformance_outcome(report: dict, spec) -> Outcome:
    try:
        passed, total = int(report["passed"]), int(report["total"])
        counts = {kind: int((report.get("counts") or {}).get(kind, 0))
                  for kind in FAILURE_CLASSES}
        failures = [{"name": str(f["name"]), "status": str(f["status"]),
                     "detail": str(f.get("detail", ""))[:DETAIL_CHARS]}
                    for f in report.get("failures") or []]
    except (KeyError, TypeError, ValueError) as exc:
        raise StackError(f"npu_compiler.conformance printed an unexpected document: {exc!r}",
                         kind="bad-output") from exc
    metrics = [{"name": CONFORMANCE_PASSED, "value": passed, "unit": "cases"},
               {"name": CONFORMANCE_TOTAL, "value": total, "unit": "cases"},
               *({"name": conformance_metric(kind), "value": counts[kind], "unit": "cases"}
                 for kind in FAILURE_CLASSES)]
    details = {"sku": spec.sku, "floor": spec.floor, "passed": passed, "total": total,
               "counts": counts, "seconds": report.get("seconds"), "failures": failures}
    failed = ", ".join(f"{kind} {counts[kind]}" for kind in FAILURE_CLASSES if counts[kind])
    message = f"{passed} of {total} node cases pass" + (f" ({failed})" if failed else "")
    if passed < spec.floor:
        return Outcome(FAILED, f"{message}: below the floor of {spec.floor}", metrics,
                       details=details)
    return Outcome(PASSED, message, metrics, details=details)


def opslib_size_action(combination, params: dict) -> Callable[[JobContext], Outcome]:
    """The kernel library's size: kernel classes, variants and tile configurations."""
    def run(ctx: JobContext) -> Outcome:
        env = ctx.resources.environment(combination)
        skipped = not_applicable(ctx, combination, OPSLIB_STATS_REQUIRES)
        if skipped:
            return skipped
        found = ctx.resources.port.opslib_stats(env.python, ctx.timeout_s)
        try:
            figures = {name: int(found[name]) for name in ("kernels", "variants", "configs")}
        except (KeyError, TypeError, ValueError) as exc:
            raise StackError(f"npu_opslib stats printed an unexpected document: {exc!r}",
                             kind="bad-output") from exc
        metrics = [{"name": f"opslib_{name}", "value": value, "unit": name}
                   for name, value in figures.items()]
        return Outcome(PASSED, f"{figures['kernels']} kernels, {figures['variants']} "
                       f"variants, {figures['configs']} tile configurations", metrics,
                       details={**figures, "custom_kernels": found.get("custom_kernels", [])})
    return run
