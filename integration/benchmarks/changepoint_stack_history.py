"""The wall-clock detector on the stack's own timings, recorded on this machine.

    python integration/benchmarks/changepoint_stack_history.py --history H.json [--runs 40]

Records `--runs` runs of `stackci run-model --json` on a small convolutional model (built
here with onnx.helper), one after another, as the nightly's workload jobs measure them
(compile_s, run_s, warm_run_s, reference_s, speed_ratio), appending to H.json so a killed
recording resumes. Then, per figure:
  - the robust CV of the recorded series and whether the detector alerts on it (nightly
    mode: after every run on the history so far);
  - the same with a +20 % step injected two thirds in: alerted at the right run or not;
  - a block bootstrap (blocks of 5 runs, keeping local load correlation) into 200 series
    of 60 nights: the share with any nightly false alarm, and the power for a 20 % step.
Runs come minutes apart, not a night apart: consecutive runs share load more than nights do.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from changepoint_noise import nightly_alerts  # noqa: E402

from stackci.regressions.changepoint import DEFAULT, change_points, noise_scale  # noqa: E402

FIGURES = ("compile_s", "run_s", "warm_run_s", "reference_s", "speed_ratio")


def tiny_model(path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.normal(0, 0.1, (16, 3, 3, 3)).astype(np.float32), "W"),
               numpy_helper.from_array(rng.normal(0, 0.1, (3600, 10)).astype(np.float32), "G"),
               numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "shape")]
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Reshape", ["p", "shape"], ["f"]),
             helper.make_node("MatMul", ["f", "G"], ["y"])]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 30, 30])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


def record(history_path: Path, runs: int) -> list[dict]:
    history = json.loads(history_path.read_text()) if history_path.exists() else []
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "tiny.onnx"
        tiny_model(model)
        while len(history) < runs:
            done = subprocess.run(["stackci", "run-model", str(model), "--sku", "npu-edge",
                                   "--json"], capture_output=True, text=True, check=True,
                                  env={**os.environ,
                                       # A fresh plan cache per run: every run compiles.
                                       "NPU_PLAN_CACHE": tempfile.mkdtemp(dir=tmp)})
            result = json.loads(done.stdout)
            row = {name: result.get(name) for name in FIGURES[:4]}
            row["speed_ratio"] = row["warm_run_s"] / row["reference_s"]
            history.append(row)
            history_path.write_text(json.dumps(history))
            print(f"run {len(history)}/{runs}: compile {row['compile_s']:.3f} s", flush=True)
    return history


def bootstrap(values: np.ndarray, rng, length: int, block: int = 5) -> np.ndarray:
    starts = rng.integers(0, len(values) - block + 1, length // block + 1)
    return np.concatenate([values[s:s + block] for s in starts])[:length]


def evaluate(values: np.ndarray, rng, series: int = 200, length: int = 60) -> dict:
    logs = np.log(values)
    stepped = values.copy()
    at = 2 * len(values) // 3
    stepped[at:] *= 1.2
    alarmed = detected = 0
    for _ in range(series):
        quiet = bootstrap(values, rng, length)
        alarmed += bool(nightly_alerts(quiet, DEFAULT))
        cut = int(rng.integers(length // 2, length - 10))
        loud = bootstrap(values, rng, cut + 10)
        loud[cut:] *= 1.2
        detected += any(abs(cp.index - cut) <= 1 for cp in change_points(loud, DEFAULT))
    return {"runs": len(values), "robust_cv": float(np.expm1(noise_scale(logs))),
            "alerts_recorded": nightly_alerts(values, DEFAULT),
            "step_found_at": [cp.index for cp in change_points(stepped, DEFAULT)],
            "step_injected_at": at,
            "bootstrap_false_alarm_per_series": alarmed / series,
            "bootstrap_power_20pct_step": detected / series}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    history = record(args.history, args.runs)
    rng = np.random.default_rng(0)
    report = {name: evaluate(np.array([row[name] for row in history], float), rng)
              for name in FIGURES}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
