"""A workload job's outcome from a run-model document (nightly/stages/workloads.py)."""

import pytest

from stackci.nightly.stages.workloads import workload_outcome
from stackci.workloads.suite import Workload


def workload(precision="fp32"):
    return Workload(name="w", source="file:w.onnx", tiers=("smoke",), skus=("edge",),
                    precision=precision, seed=0, atol=1.0, rtol=1.0, batch=1)


def test_workload_outcome_without_latency_or_errors():
    outcome = workload_outcome({"match": False, "simulated": {}}, workload(), "edge")
    assert (outcome.status, outcome.message) == ("failed", "outputs differ from onnxruntime")
    assert [m["name"] for m in outcome.metrics] == ["ops"]


def test_workload_outcome_reports_the_speed_ratio_against_onnxruntime():
    result = {"match": True, "simulated": {}, "run_s": 0.3, "reference_s": 0.2}
    metrics = {m["name"]: m for m in workload_outcome(result, workload(), "edge").metrics}
    assert metrics["speed_ratio"]["value"] == pytest.approx(1.5)
    assert metrics["speed_ratio"]["unit"] == "x" and metrics["reference_s"]["value"] == 0.2
    unmeasured = workload_outcome({**result, "reference_s": 0.0}, workload(), "edge")
    assert "speed_ratio" not in {m["name"] for m in unmeasured.metrics}


def test_the_speed_ratio_compares_warm_runs_of_fp32_workloads():
    """compiler-api 1.2 reports a warm run (engine built, weights prepacked) beside the first
    one; that is what compares with onnxruntime's warm run. Emulated precisions get none."""
    result = {"match": True, "simulated": {}, "run_s": 0.9, "warm_run_s": 0.3,
              "reference_s": 0.2}
    metrics = {m["name"]: m["value"] for m in workload_outcome(result, workload(), "edge").metrics}
    assert metrics["speed_ratio"] == pytest.approx(1.5) and metrics["warm_run_s"] == 0.3
    bf16 = workload("bf16")
    assert "speed_ratio" not in {m["name"] for m in workload_outcome(result, bf16, "e").metrics}


def test_simulated_figures_and_ops_are_kept():
    result = {"match": True, "compile_s": 0.5,
              "simulated": {"total_cycles": 4500, "latency_us": 3.0, "peak_device_bytes": 9,
                            "ops": [{"name": "a", "cycles": 4500}]}}
    outcome = workload_outcome(result, workload(), "edge")
    assert outcome.status == "passed" and outcome.message == "3.0 us simulated"
    assert {m["name"]: m["value"] for m in outcome.metrics}["total_cycles"] == 4500
    assert outcome.ops == [{"name": "a", "cycles": 4500}]
