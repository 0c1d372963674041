"""Fidelity runs: our scalesim mode against SCALE-Sim v3, read and stored (our scalesim mode against SCALE-Sim v3).

`modules/driver/fidelity/run_fidelity.py --json FILE` writes every layer's figures; recording them
makes the weekly full table a run like any other: tier "weekly", one job per layer, array and
dataflow (passed when the compute cycles are equal and the total cycles within 5%), with the
cycles of both simulators and their difference as metrics, so the dashboard trends them.
The checkpoint run_fidelity.py keeps while it runs (FILE.partial.jsonl) is not recorded: an
unfinished table is resumed (rerun the same run_fidelity.py command), not stored.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path

from stackci import __version__
from stackci.errors import UsageError

TIER = "weekly"
STAGE = "fidelity"
TOTAL_LIMIT_PERCENT = 5.0  # the bound on total cycles with memory modelled
DATAFLOWS = ("os", "ws", "is")


@dataclass(frozen=True)
class LayerResult:
    """One row of run_fidelity.py's table: a GEMM on one array and dataflow, both models."""

    name: str
    M: int
    N: int
    K: int
    rows: int
    cols: int
    dataflow: str
    ours: dict
    scalesim: dict
    row: dict

    @property
    def sku(self) -> str:
        return f"scalesim-{self.rows}x{self.cols}-{self.dataflow}"

    @property
    def key(self) -> str:
        return f"{STAGE}:{self.name}:{self.rows}x{self.cols}:{self.dataflow}"

    @property
    def compute_diff(self) -> int:
        return self.ours["compute_cycles"] - self.scalesim["compute_cycles"]

    @property
    def total_diff(self) -> int:
        return self.ours["total_cycles"] - self.scalesim["total_cycles"]

    @property
    def total_diff_percent(self) -> float:
        theirs = self.scalesim["total_cycles"]
        return 100.0 * self.total_diff / theirs if theirs else 0.0

    @property
    def passed(self) -> bool:
        return self.compute_diff == 0 and abs(self.total_diff_percent) <= TOTAL_LIMIT_PERCENT

    @property
    def seconds(self) -> float:
        return float(self.ours.get("seconds") or 0) + float(self.scalesim.get("seconds") or 0)

    def message(self) -> str:
        compute = "compute exact" if self.compute_diff == 0 else \
            f"compute differs by {self.compute_diff:+d} cycles"
        total = f"total {self.total_diff_percent:+.2f}%"
        if abs(self.total_diff_percent) > TOTAL_LIMIT_PERCENT:
            total += f" (limit {TOTAL_LIMIT_PERCENT:g}%)"
        return f"{compute}, {total}"

    def metrics(self) -> list[dict]:
        def metric(name, value, unit):
            return {"name": name, "value": value, "unit": unit, "workload": self.name,
                    "sku": self.sku}

        return [
            metric("ours_compute_cycles", self.ours["compute_cycles"], "cycles"),
            metric("scalesim_compute_cycles", self.scalesim["compute_cycles"], "cycles"),
            metric("compute_cycles_diff", self.compute_diff, "cycles"),
            metric("ours_total_cycles", self.ours["total_cycles"], "cycles"),
            metric("scalesim_total_cycles", self.scalesim["total_cycles"], "cycles"),
            metric("total_cycles_diff", self.total_diff, "cycles"),
            metric("total_cycles_diff_percent", self.total_diff_percent, "%"),
        ]


def _field(data: dict, name: str, where: str, kind, path: Path):
    if not isinstance(data, dict) or name not in data:
        raise UsageError(f"{path}: {where} has no field {name!r}")
    value = data[name]
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UsageError(f"{path}: {where}.{name} is {value!r}, expected a non-negative "
                             "integer")
    elif not isinstance(value, kind):
        raise UsageError(f"{path}: {where}.{name} is {value!r}, expected a {kind.__name__}")
    return value


def _cycles(data: dict, name: str, where: str, path: Path) -> dict:
    side = _field(data, name, where, dict, path)
    for field in ("compute_cycles", "total_cycles"):
        _field(side, field, f"{where}.{name}", int, path)
    return side


def load_results(path: Path) -> tuple[dict, list[LayerResult]]:
    """The summary and the layer rows of a run_fidelity.py JSON file, checked."""
    if path.suffix == ".jsonl":
        raise UsageError(f"{path} is run_fidelity.py's checkpoint of an unfinished run; rerun "
                         "the same run_fidelity.py command to finish it, then record its --json")
    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read fidelity results {path}: {exc.strerror or exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise UsageError(f"{path}: expected an object with 'summary' and 'layers' "
                         "(run_fidelity.py --json)")
    rows = _field(document, "layers", "the document", list, path)
    if not rows:
        raise UsageError(f"{path}: 'layers' is empty: nothing to record")
    summary = document.get("summary") or {}
    results, seen = [], set()
    for index, row in enumerate(rows):
        where = f"layers[{index}]"
        name = _field(row, "name", where, str, path)
        array = _field(row, "array", where, list, path)
        if len(array) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0
                                  for v in array):
            raise UsageError(f"{path}: {where}.array is {array!r}, expected [rows, cols] "
                             "(positive integers)")
        dataflow = _field(row, "dataflow", where, str, path)
        if dataflow not in DATAFLOWS:
            raise UsageError(f"{path}: {where}.dataflow is {dataflow!r}, expected one of "
                             f"{', '.join(DATAFLOWS)}")
        result = LayerResult(name, _field(row, "M", where, int, path),
                             _field(row, "N", where, int, path),
                             _field(row, "K", where, int, path), array[0], array[1], dataflow,
                             _cycles(row, "ours", where, path),
                             _cycles(row, "scalesim", where, path), row)
        if result.key in seen:
            raise UsageError(f"{path}: {where} repeats layer {name} on {array[0]}x{array[1]} "
                             f"{dataflow}")
        seen.add(result.key)
        results.append(result)
    return summary, results


def record(store, path: Path, summary: dict, results: list[LayerResult]) -> dict:
    """Store the results as a finished weekly run; returns `{run_id, jobs, passed, failed}`."""
    used_s = sum(r.seconds for r in results)
    plan = {"kind": STAGE, "source": str(path),
            "arrays": sorted({f"{r.rows}x{r.cols}" for r in results}),
            "dataflows": sorted({r.dataflow for r in results}),
            "layers": sorted({r.name for r in results})}
    run_id = store.start_run(tier=TIER, budget_s=used_s, plan=plan, host=socket.gethostname(),
                             harness_version=__version__)
    store.add_jobs(run_id, [{"key": r.key, "stage": STAGE, "name": f"{r.name} {r.rows}x{r.cols} "
                             f"{r.dataflow}", "sku": r.sku} for r in results])
    for result in results:
        store.start_job(run_id, result.key)
        store.finish_job(run_id, result.key, status="passed" if result.passed else "failed",
                         message=result.message(), duration_s=result.seconds,
                         details=result.row, metrics=result.metrics())
    passed = sum(r.passed for r in results)
    counts = {"passed": passed, "failed": len(results) - passed}
    store.finish_run(run_id, "completed", {**summary, "used_s": used_s, "budget_s": used_s,
                                           "by_stage": {STAGE: counts}})
    return {"run_id": run_id, "jobs": len(results), **counts}
