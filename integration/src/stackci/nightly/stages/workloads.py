"""workloads: one workload on one SKU, compared with onnxruntime; its figures and op profile."""

from __future__ import annotations

from stackci.compat.contracts import unmet_requirements
from stackci.errors import StackError
from stackci.model import (FAILED, LATENCY_US, MAX_ABS_ERROR, NOT_APPLICABLE, NOT_RUN,
                           PASSED, PEAK_DEVICE_BYTES, SPEED_RATIO, TOTAL_CYCLES, JobContext,
                           Outcome)
from stackci.workloads.run import run_model
from stackci.workloads.suite import Workload


def not_applicable(workload: Workload, combination, ctx: JobContext) -> Outcome | None:
    """`not_run`/not-applicable when the combination lacks an interface version the workload
    needs: not a failure of the combination, it predates what the workload needs."""
    unmet = unmet_requirements(workload.requires, ctx.resources.provided(combination)) \
        if workload.requires else []
    if not unmet:
        return None
    return Outcome(NOT_RUN, "not applicable: " + "; ".join(unmet),
                   details={"reason": NOT_APPLICABLE})


def action(combination, params: dict):
    workload, sku = Workload.from_record(params["workload"]), params["sku"]

    def run(ctx: JobContext) -> Outcome:
        env = ctx.resources.environment(combination)
        inapplicable = not_applicable(workload, combination, ctx)
        if inapplicable is not None:
            return inapplicable
        prepared = ctx.resources.prepared(workload)
        expected_failure = workload.expected_failure(sku)
        try:
            result = run_model(
                env.python, prepared.model_path, sku, inputs=prepared.inputs_path,
                expected=prepared.expected_path, precision=workload.precision,
                atol=workload.atol, rtol=workload.rtol, timeout=ctx.timeout_s,
                workdir=ctx.workdir, min_cosine=workload.min_cosine,
                batch=workload.batch if workload.batch != 1 else None, plan_cache=False,
                port=ctx.resources.port)
        except StackError as exc:
            if expected_failure and workload.expects(sku, exc.kind, str(exc)):
                return Outcome(PASSED, f"expected {exc.kind}: {exc}",
                               details={"kind": exc.kind, "expected": expected_failure})
            raise
        outcome = workload_outcome(result, workload, sku)
        if expected_failure and outcome.status == PASSED:
            outcome.message = (f"{outcome.message}; ran although {expected_failure} was "
                               f"expected on {sku}: update workloads/suite.yaml")
        return outcome
    return run


def workload_outcome(result: dict, workload, sku: str) -> Outcome:
    simulated = result.get("simulated") or {}
    ops = simulated.get("ops") or []
    max_abs_error = max_abs_error_of(result)
    figures = [(TOTAL_CYCLES, simulated.get("total_cycles"), "cycles"),
               (LATENCY_US, simulated.get("latency_us"), "us"),
               ("throughput_per_s", simulated.get("throughput_per_s"), "1/s"),
               ("compile_s", result.get("compile_s"), "s"),
               ("run_s", result.get("run_s"), "s"),
               ("reference_s", result.get("reference_s"), "s"),
               ("warm_run_s", result.get("warm_run_s"), "s"),
               (SPEED_RATIO, speed_ratio_of(result) if workload.precision == "fp32" else None,
                "x"),
               (MAX_ABS_ERROR, max_abs_error, ""),
               (PEAK_DEVICE_BYTES, simulated.get("peak_device_bytes"), "bytes"),
               ("ops", len(ops), "ops")]
    metrics = [{"name": name, "value": value, "unit": unit, "workload": workload.name,
                "sku": sku} for name, value, unit in figures if value is not None]
    details = {"precision": workload.precision, "atol": workload.atol, "rtol": workload.rtol,
               "outputs": result.get("outputs", [])}
    latency = simulated.get("latency_us")
    if result.get("match"):
        message = f"{latency:.1f} us simulated" if latency is not None else "outputs match"
        return Outcome(PASSED, message, metrics, ops, details)
    message = (f"outputs differ from onnxruntime: max abs error {max_abs_error:.3g} "
               f"(atol {workload.atol}, rtol {workload.rtol})" if max_abs_error is not None
               else "outputs differ from onnxruntime")
    return Outcome(FAILED, message, metrics, ops, details)


def speed_ratio_of(result: dict) -> float | None:
    """How many times onnxruntime's time the stack's functional run took: a warm run
    (`warm_run_s`, compiler-api 1.2) over onnxruntime's warm run, as the speed benchmark
    compares them; older compilers report only their first run (`run_s`, which includes
    building the engine). Recorded for fp32 workloads only: the goal is about fp32, and
    emulating fp16/bf16/int8 rounding costs more by design."""
    run_s = result.get("warm_run_s", result.get("run_s"))
    reference_s = result.get("reference_s")
    if run_s is None or not reference_s:
        return None
    return run_s / reference_s


def max_abs_error_of(result: dict) -> float | None:
    """The largest per-output error in a run-model document (comparisons sit in `comparison`
    or inside `outputs`)."""
    errors = [entry["max_abs_error"]
              for listing in (result.get("comparison"), result.get("outputs"))
              if isinstance(listing, list)
              for entry in listing
              if isinstance(entry, dict) and entry.get("max_abs_error") is not None]
    return max(errors) if errors else None
