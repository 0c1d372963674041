"""The stack's analysis, one step each, through the port (`python -m npu_compiler analyze |
plan-diff | explore --json` in a combination's interpreter): what `stackci analyze | explore`
and the nightly `analysis` stage both run, so they ask the stack the same questions."""

from __future__ import annotations

import json
from pathlib import Path

from stackci.errors import StackError


def _call(port, python: str, argv: list[str], model, sku: str, timeout) -> dict:
    return port.compiler(python, argv, name=Path(model).name, sku=sku, timeout_s=timeout)


def analyze(port, python: str, model, *, sku: str, precision: str, batch: int = 1,
            plan_dir: Path | None = None, batch_sweep: bool = False, max_batch: int = 256,
            latency_bound_ms: float | None = None, skip_passes=(), timeout=None) -> dict:
    """The analysis document of `model` on `sku` (with the batch sweep when asked)."""
    argv = ["analyze", str(model), "--sku", sku, "--precision", precision, "--json"]
    if plan_dir is not None:
        argv += ["--save-plan", str(plan_dir)]
    if batch != 1:
        argv += ["--batch", str(batch)]
    for name in skip_passes:
        argv += ["--skip-pass", name]
    if batch_sweep:
        argv += ["--batch-sweep", "--max-batch", str(max_batch)]
        if latency_bound_ms is not None:
            argv += ["--latency-bound-ms", str(latency_bound_ms)]
    return _call(port, python, argv, model, sku, timeout)


def confirm_sweet_spot(port, python: str, model, *, sku: str, precision: str, sweep: dict,
                       skip_passes=(), timeout=None) -> dict | None:
    """One functional run at the sweet spot (Server if bounded, else Offline): the runtime's
    cycles must be the sweep's, which was costed from the plan alone. A run that fails is
    recorded as not matching, with the stack's error (the sweep claimed a batch the model
    cannot run), not raised: the analysis stays stored."""
    batch = sweep.get("server") or sweep.get("offline")
    point = next((p for p in sweep.get("points", []) if p["batch"] == batch), None)
    if point is None:
        return None
    try:
        run = analyze(port, python, model, sku=sku, precision=precision, batch=batch,
                      skip_passes=skip_passes, timeout=timeout)["run"]
    except StackError as exc:
        if exc.kind == "timeout":
            raise
        return {"batch": batch, "sweep_cycles": point["cycles"], "run_cycles": None,
                "matches": False, "error": str(exc)}
    return {"batch": batch, "sweep_cycles": point["cycles"], "run_cycles": run["total_cycles"],
            "matches": run["total_cycles"] == point["cycles"]}


def plan_diff(port, python: str, earlier: Path, later: Path, *, a_label: str, b_label: str,
              sku: str, timeout=None) -> dict:
    return _call(port, python, ["plan-diff", str(earlier), str(later), "--a-label", a_label,
                                "--b-label", b_label, "--json"], later, sku, timeout)


def read_plan(plan_dir: Path) -> dict | None:
    """The plan.json a `--save-plan DIR` wrote (what the store keeps of a plan: the constants
    beside it are the model's weights, which the next night's diff does not need)."""
    path = Path(plan_dir) / "plan.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_plan(plan: dict, directory: Path) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "plan.json"
    path.write_text(json.dumps(plan))
    return path


def explore(port, python: str, models: dict[str, str], *, sku: str, precision: str,
            vary: list[str], plan_tiles: bool = False, timeout=None) -> dict:
    """The design sweep over `models` (workload name -> ONNX path), with the models named by
    their workloads in the document."""
    paths = list(models.values())
    argv = ["explore", *paths, "--sku", sku, "--precision", precision, "--json"]
    for spec in vary:
        argv += ["--vary", spec]
    if plan_tiles:
        argv.append("--plan-tiles")
    doc = _call(port, python, argv, paths[0], sku, timeout)
    names = {path: name for name, path in models.items()}
    doc["models"] = [names.get(m, m) for m in doc["models"]]
    for point in doc["points"] + [doc.get("base_point") or {"models": {}}]:
        point["models"] = {names.get(m, m): c for m, c in point["models"].items()}
    return doc
