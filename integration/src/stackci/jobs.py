"""The jobs of a nightly: what each stage does and how its result becomes an outcome.

A job is data (key, stage, what it needs) plus an action `action(ctx) -> Outcome`. Actions
reach the rest of the harness only through a `Toolbox`, so that the nightly can be exercised
with fakes, and the stack itself only through subprocesses of its assembled environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from stackci.errors import StackciError, StackError

STAGES = ("build", "contracts", "tests", "workloads", "conformance", "publish")
OUTPUT_TAIL_LINES = 40


@dataclass
class Outcome:
    status: str  # passed | failed | error | timeout | not_run
    message: str = ""
    metrics: list[dict] = field(default_factory=list)
    ops: list[dict] = field(default_factory=list)
    details: dict = field(default_factory=dict)


@dataclass
class JobContext:
    """What an action gets: its time limit, a private directory, and the run's resources."""

    timeout_s: float
    workdir: Path
    resources: "Resources"


@dataclass
class Job:
    key: str
    stage: str
    name: str
    action: Callable[[JobContext], Outcome]
    sku: str | None = None
    combination: Any = None  # a combination.Combination (has .name, .key)
    needs: tuple[str, ...] = ()  # jobs that must pass first
    after: tuple[str, ...] = ()  # jobs that must have ended first, whatever their outcome
    priority: int = 0
    combination_id: int | None = None

    @property
    def order(self) -> tuple:
        return (STAGES.index(self.stage), self.priority, self.key)


@dataclass
class Toolbox:
    """The harness functions the nightly calls (docs/design.md, "Harness internals")."""

    resolve: Callable
    combination_from_dict: Callable
    ensure_environment: Callable
    load_contract: Callable
    check_declared: Callable
    load_suite: Callable
    prepare: Callable
    run_model: Callable
    publish: Callable
    driver_skus: Callable = None  # (python, timeout_s) -> [sku dict]; default asks the env
    plan_default: Callable = None  # (ws, store) -> [Combination]: the nightly's default plan
    # (python, sku, timeout_s) -> the JSON of `python -m npu_compiler.conformance --json`
    run_conformance: Callable = None
    # (python, timeout_s) -> the JSON of `python -m npu_opslib stats --json`
    opslib_stats: Callable = None

    def __post_init__(self):
        if self.driver_skus is None:
            self.driver_skus = driver_skus
        if self.run_conformance is None:
            self.run_conformance = run_conformance
        if self.opslib_stats is None:
            self.opslib_stats = opslib_stats

    @classmethod
    def real(cls) -> "Toolbox":
        # Imported here so the nightly's own machinery does not depend on every part at import.
        from stackci import build, combination, contracts, dashboard, planner, runmodel, workloads

        def plan_default(ws, store):
            verify_window(ws, store)
            return planner.default_plan(ws, store, resolve=combination.resolve)

        return cls(plan_default=plan_default, resolve=combination.resolve,
                   combination_from_dict=combination.Combination.from_dict,
                   ensure_environment=build.ensure_environment,
                   load_contract=contracts.load_contract,
                   check_declared=contracts.check_declared, load_suite=workloads.load_suite,
                   prepare=workloads.prepare, run_model=runmodel.run_model,
                   publish=dashboard.publish)


def verify_window(ws, store) -> None:
    """Contract-test every pair of the support window not verified yet (stored verdicts of
    unchanged pairs are reused), so that the plan covers what is verified-compatible today."""
    import sys

    from stackci import compat
    from stackci.verify import Verifier, window_pairs

    catalog = compat.Catalog(ws, compat.DEFAULT_WINDOW)
    pairs = window_pairs(catalog)

    def report(pair, verdict: dict) -> None:
        if not verdict.get("cached_from"):
            print(f"stackci: verified {pair.name}: {verdict['status']}", file=sys.stderr)

    Verifier(ws, store, catalog).run(pairs, report)


class Resources:
    """What jobs of one run share: environments per combination and prepared workloads, each
    made once (under a lock, since workers ask concurrently)."""

    def __init__(self, ws, store, toolbox: Toolbox, dashboard_dir: Path):
        self.ws, self.store, self.toolbox = ws, store, toolbox
        self.dashboard_dir = dashboard_dir
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._made: dict[str, Any] = {}

    def _once(self, key: str, make: Callable[[], Any]) -> Any:
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._made:
                self._made[key] = make()
            return self._made[key]

    def environment(self, combination):
        return self._once(f"env:{combination.key}", lambda: self.toolbox.ensure_environment(
            self.ws, combination))

    def prepared(self, workload):
        return self._once(f"workload:{workload.name}",
                          lambda: self.toolbox.prepare(self.ws, workload))


# -- build ------------------------------------------------------------------------------------

def build_action(combination) -> Callable[[JobContext], Outcome]:
    def run(ctx: JobContext) -> Outcome:
        env = ctx.resources.environment(combination)
        details = {"environment": str(env.path), "python": str(env.python)}
        # The lock (versions, commits, trees, third-party pins) is part of the evidence.
        ctx.resources.store.record_lock(combination.key, Path(env.path).name, env.lock)
        # The SKU descriptions only annotate the dashboard: a driver without its CLI still
        # built, and its workloads will say what is wrong with it.
        try:
            skus = ctx.resources.toolbox.driver_skus(env.python, ctx.timeout_s)
        except StackError as exc:
            return Outcome("passed", f"environment {env.path}; SKUs not recorded: {exc}",
                           details=details)
        for sku in skus:
            ctx.resources.store.upsert_sku(sku["name"], sku)
        return Outcome("passed", f"environment {env.path}",
                       details={**details, "skus": [sku["name"] for sku in skus]})
    return run


def driver_skus(python: Path, timeout_s: float) -> list[dict]:
    """The SKUs the environment's driver knows (recorded for the dashboard)."""
    done = _run_in_env(python, ["-m", "npu_driver", "skus", "--json"], timeout_s)
    if done.returncode != 0:
        raise StackError(f"python -m npu_driver skus --json exited {done.returncode}: "
                         f"{_last_line(done.stderr)}")
    try:
        found = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise StackError(f"python -m npu_driver skus --json printed no JSON: {exc}") from exc
    return found if isinstance(found, list) else found.get("skus", [])


# -- contracts --------------------------------------------------------------------------------

def contracts_action(combination) -> Callable[[JobContext], Outcome]:
    def run(ctx: JobContext) -> Outcome:
        env = ctx.resources.environment(combination)
        toolbox = ctx.resources.toolbox
        contracts = {module: toolbox.load_contract(Path(source) / "contract.yaml")
                     for module, source in env.sources.items()}
        verdict = toolbox.check_declared(contracts)
        details = {"problems": list(verdict.problems), "edges": list(verdict.edges)}
        if verdict.ok:
            return Outcome("passed", f"{len(verdict.edges)} contract edges agree",
                           details=details)
        return Outcome("failed", "; ".join(verdict.problems), details=details)
    return run


# -- tests ------------------------------------------------------------------------------------

def tests_action(combination, module: str) -> Callable[[JobContext], Outcome]:
    def run(ctx: JobContext) -> Outcome:
        env = ctx.resources.environment(combination)
        tests_dir = Path(env.sources[module]) / "tests"
        if not tests_dir.is_dir():
            return Outcome("error", f"module {module} has no tests/ directory at {tests_dir}")
        junit = ctx.workdir / "junit.xml"
        junit.unlink(missing_ok=True)
        done = _run_in_env(env.python, ["-m", "pytest", str(tests_dir), "-q", "-p",
                                        "no:cacheprovider", f"--junitxml={junit}"],
                           ctx.timeout_s, cwd=Path(env.sources[module]))
        return pytest_outcome(done.returncode, junit, done.stdout + done.stderr)
    return run


def pytest_outcome(returncode: int, junit: Path, output: str) -> Outcome:
    """Pytest's exit code and JUnit report as an outcome with test counts."""
    tail = "\n".join(output.strip().splitlines()[-OUTPUT_TAIL_LINES:])
    # pytest: 0 all passed, 1 some failed, 5 nothing collected; 2-4 it did not run properly.
    if returncode not in (0, 1, 5) or not junit.exists():
        return Outcome("error", f"pytest exited {returncode}: {_last_line(output)}",
                       details={"output": tail})
    counts = junit_counts(junit)
    metrics = [{"name": f"tests_{kind}", "value": counts[kind], "unit": "tests"}
               for kind in ("passed", "failed", "skipped")]
    summary = (f"{counts['passed']} passed, {counts['failed']} failed, "
               f"{counts['skipped']} skipped" if returncode != 5 else "no tests collected")
    if returncode == 1 or counts["failed"]:
        return Outcome("failed", summary, metrics, details={"output": tail, **counts})
    if returncode == 5 or not counts["passed"]:
        # A module that ships no runnable tests is not evidence that it works.
        return Outcome("failed", summary or "no tests collected", metrics, details=counts)
    return Outcome("passed", summary, metrics, details=counts)


def junit_counts(path: Path) -> dict[str, int]:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise StackciError(f"{path}: unreadable JUnit XML: {exc}") from exc
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")

    def total(attribute: str) -> int:
        return sum(int(suite.get(attribute, 0)) for suite in suites)

    failed = total("failures") + total("errors")
    skipped = total("skipped")
    return {"passed": total("tests") - failed - skipped, "failed": failed, "skipped": skipped}


# -- workloads --------------------------------------------------------------------------------

def workload_action(combination, workload, sku: str) -> Callable[[JobContext], Outcome]:
    def run(ctx: JobContext) -> Outcome:
        env = ctx.resources.environment(combination)
        unmet = workload.unmet_requirements(provided_interfaces(ctx, env)) \
            if workload.requires else []
        if unmet:
            # Not a failure of the combination: it predates what the workload needs.
            return Outcome("not_run", "not applicable: " + "; ".join(unmet),
                           details={"reason": "not-applicable"})
        prepared = ctx.resources.prepared(workload)
        expected_failure = workload.expected_failure(sku)
        try:
            result = ctx.resources.toolbox.run_model(
                env.python, prepared.model_path, sku, inputs=prepared.inputs_path,
                expected=prepared.expected_path, precision=workload.precision,
                atol=workload.atol, rtol=workload.rtol, timeout=ctx.timeout_s,
                workdir=ctx.workdir, min_cosine=workload.min_cosine,
                batch=workload.batch if workload.batch != 1 else None, plan_cache=False)
        except StackError as exc:
            if expected_failure and exc.kind == expected_failure:
                return Outcome("passed", f"expected {exc.kind}: {exc}",
                               details={"kind": exc.kind, "expected": expected_failure})
            raise
        outcome = workload_outcome(result, workload, sku)
        if expected_failure and outcome.status == "passed":
            outcome.message = (f"{outcome.message}; ran although {expected_failure} was "
                               f"expected on {sku}: update workloads/suite.yaml")
        return outcome
    return run


def provided_interfaces(ctx: JobContext, env) -> dict[str, str]:
    """interface -> version provided by the modules of the environment."""
    provided = {}
    for source in env.sources.values():
        contract = ctx.resources.toolbox.load_contract(Path(source) / "contract.yaml")
        provided.update({name: str(version) for name, version in contract.provides.items()})
    return provided


def workload_outcome(result: dict, workload, sku: str) -> Outcome:
    simulated = result.get("simulated") or {}
    ops = simulated.get("ops") or []
    max_abs_error = max_abs_error_of(result)
    figures = [("total_cycles", simulated.get("total_cycles"), "cycles"),
               ("latency_us", simulated.get("latency_us"), "us"),
               ("throughput_per_s", simulated.get("throughput_per_s"), "1/s"),
               ("compile_s", result.get("compile_s"), "s"),
               ("run_s", result.get("run_s"), "s"),
               ("reference_s", result.get("reference_s"), "s"),
               ("warm_run_s", result.get("warm_run_s"), "s"),
               ("speed_ratio", speed_ratio_of(result) if workload.precision == "fp32" else None,
                "x"),
               ("max_abs_error", max_abs_error, ""),
               ("peak_device_bytes", simulated.get("peak_device_bytes"), "bytes"),
               ("ops", len(ops), "ops")]
    metrics = [{"name": name, "value": value, "unit": unit, "workload": workload.name,
                "sku": sku} for name, value, unit in figures if value is not None]
    details = {"precision": workload.precision, "atol": workload.atol, "rtol": workload.rtol,
               "outputs": result.get("outputs", [])}
    latency = simulated.get("latency_us")
    if result.get("match"):
        message = f"{latency:.1f} us simulated" if latency is not None else "outputs match"
        return Outcome("passed", message, metrics, ops, details)
    message = (f"outputs differ from onnxruntime: max abs error {max_abs_error:.3g} "
               f"(atol {workload.atol}, rtol {workload.rtol})" if max_abs_error is not None
               else "outputs differ from onnxruntime")
    return Outcome("failed", message, metrics, ops, details)


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


# -- conformance ------------------------------------------------------------------------------

# What a combination must provide for these jobs to apply: the node suite's runner came with
# compiler-api 1.1, the library's size report with opslib-api 1.2.
CONFORMANCE_REQUIRES = (("compiler-api", ">=1.1"),)
OPSLIB_STATS_REQUIRES = (("opslib-api", ">=1.2"),)
FAILURE_CLASSES = ("unsupported_operator", "unsupported_type", "wrong_result", "crash")
DETAIL_CHARS = 300  # of each failure's message kept in the job's details


def not_applicable(ctx: JobContext, env, requires) -> Outcome | None:
    """A not-run outcome when the combination lacks an interface version `requires` needs."""
    from stackci.workloads import unmet_requirements

    unmet = unmet_requirements(requires, provided_interfaces(ctx, env))
    if not unmet:
        return None
    return Outcome("not_run", "not applicable: " + "; ".join(unmet),
                   details={"reason": "not-applicable"})


def conformance_action(combination, spec) -> Callable[[JobContext], Outcome]:
    """The ONNX backend node suite on the combination: pass count and classified failures."""
    def run(ctx: JobContext) -> Outcome:
        env = ctx.resources.environment(combination)
        skipped = not_applicable(ctx, env, CONFORMANCE_REQUIRES)
        if skipped:
            return skipped
        report = ctx.resources.toolbox.run_conformance(env.python, spec.sku, ctx.timeout_s)
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
    metrics = [{"name": "conformance_passed", "value": passed, "unit": "cases"},
               {"name": "conformance_total", "value": total, "unit": "cases"},
               *({"name": f"conformance_{kind}", "value": counts[kind], "unit": "cases"}
                 for kind in FAILURE_CLASSES)]
    details = {"sku": spec.sku, "floor": spec.floor, "passed": passed, "total": total,
               "counts": counts, "seconds": report.get("seconds"), "failures": failures}
    failed = ", ".join(f"{kind} {counts[kind]}" for kind in FAILURE_CLASSES if counts[kind])
    message = f"{passed} of {total} node cases pass" + (f" ({failed})" if failed else "")
    if passed < spec.floor:
        return Outcome("failed", f"{message}: below the floor of {spec.floor}", metrics,
                       details=details)
    return Outcome("passed", message, metrics, details=details)


def opslib_size_action(combination) -> Callable[[JobContext], Outcome]:
    """The kernel library's size: kernel classes, variants and tile configurations."""
    def run(ctx: JobContext) -> Outcome:
        env = ctx.resources.environment(combination)
        skipped = not_applicable(ctx, env, OPSLIB_STATS_REQUIRES)
        if skipped:
            return skipped
        found = ctx.resources.toolbox.opslib_stats(env.python, ctx.timeout_s)
        try:
            figures = {name: int(found[name]) for name in ("kernels", "variants", "configs")}
        except (KeyError, TypeError, ValueError) as exc:
            raise StackError(f"npu_opslib stats printed an unexpected document: {exc!r}",
                             kind="bad-output") from exc
        metrics = [{"name": f"opslib_{name}", "value": value, "unit": name}
                   for name, value in figures.items()]
        return Outcome("passed", f"{figures['kernels']} kernels, {figures['variants']} "
                       f"variants, {figures['configs']} tile configurations", metrics,
                       details={**figures, "custom_kernels": found.get("custom_kernels", [])})
    return run


def run_conformance(python: Path, sku: str, timeout_s: float) -> dict:
    return _json_of(python, ["-m", "npu_compiler.conformance", "--json", "--no-onnxruntime"],
                    timeout_s, extra_env={"NPU_BACKEND_SKU": sku})


def opslib_stats(python: Path, timeout_s: float) -> dict:
    return _json_of(python, ["-m", "npu_opslib", "stats", "--json"], timeout_s)


def _json_of(python: Path, args: list[str], timeout_s: float, extra_env=None) -> dict:
    """The JSON object a module CLI printed; a StackError naming the command otherwise."""
    command = "python " + " ".join(args)
    done = _run_in_env(python, args, timeout_s, extra_env=extra_env)
    if done.returncode != 0:
        raise StackError(f"{command} exited {done.returncode}: {_last_line(done.stderr)}",
                         kind="crash")
    try:
        found = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise StackError(f"{command} printed no JSON: {exc}", kind="bad-output") from exc
    if not isinstance(found, dict):
        raise StackError(f"{command} printed {type(found).__name__}, not an object",
                         kind="bad-output")
    return found


# -- publish ----------------------------------------------------------------------------------

def publish_action(ctx: JobContext) -> Outcome:
    path = ctx.resources.toolbox.publish(ctx.resources.store, ctx.resources.dashboard_dir)
    return Outcome("passed", str(path), details={"index": str(path)})


# -- helpers ----------------------------------------------------------------------------------

def _run_in_env(python: Path, args: list[str], timeout_s: float,
                cwd: Path | None = None, extra_env: dict | None = None
                ) -> subprocess.CompletedProcess:
    """Run `python args` with the assembled environment alone on its path (never the
    harness's own), raising subprocess.TimeoutExpired past the limit."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["VIRTUAL_ENV"] = str(Path(python).parent.parent)
    env.update(extra_env or {})
    return subprocess.run([str(python), *args], capture_output=True, text=True,
                          timeout=timeout_s, cwd=cwd, env=env)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"
