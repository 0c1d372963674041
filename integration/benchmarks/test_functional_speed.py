"""Functional speed: the stack (compiler engine on the simulated NPU) against onnxruntime.

Both run single-threaded in this process on the smoke models with seeded random weights (the
conftest pins BLAS to one thread before numpy loads; onnxruntime gets one intra-op and one
inter-op thread). The engine's time includes everything a run does: kernels, copies and the
performance model. The ratio (stack / onnxruntime, goal <= 1.5) is printed and kept in the
benchmark's extra_info.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import onnxruntime
import pytest

from stackci.workloads import load_suite, prepare
from stackci.workspace import Workspace

MODELS = ("squeezenet", "resnet50", "alexnet")
SKU = "npu-edge"
GOAL = 1.5
ROUNDS = 3


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return Workspace.discover(home=tmp_path_factory.mktemp("stackci"))


def onnxruntime_seconds(model_path, feeds: dict[str, np.ndarray]) -> float:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(model_path), options,
                                           providers=["CPUExecutionProvider"])
    session.run(None, feeds)  # warm-up
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@pytest.mark.parametrize("name", MODELS)
def test_stack_vs_onnxruntime(benchmark, workspace, name):
    from npu_compiler import Engine, compile_model

    prepared = prepare(workspace, load_suite().get(name))
    feeds = prepared.inputs()
    reference_s = onnxruntime_seconds(prepared.model_path, feeds)
    engine = Engine(compile_model(prepared.model_path, SKU))
    outputs, _ = engine.run(feeds)  # warm-up; also proves the run is a real one
    expected = prepared.expected()
    for output, value in expected.items():
        np.testing.assert_allclose(outputs[output], value, rtol=1e-3, atol=1e-4)
    benchmark.pedantic(engine.run, args=(feeds,), rounds=ROUNDS, iterations=1)
    stack_s = benchmark.stats.stats.median
    ratio = stack_s / reference_s
    benchmark.extra_info.update(onnxruntime_s=reference_s, stack_s=stack_s, speed_ratio=ratio,
                                goal=GOAL)
    verdict = "meets" if ratio <= GOAL else "misses"
    print(f"\n{name}: stack {stack_s * 1000:.1f} ms, onnxruntime {reference_s * 1000:.1f} ms, "
          f"ratio {ratio:.2f}x ({verdict} the {GOAL}x goal)")
