"""Functional speed: the stack (compiler engine on the simulated NPU) against onnxruntime.

Every fp32 workload of the smoke tier runs through both, single-threaded, in this process, with
seeded random weights (the conftest pins BLAS to one thread before numpy loads; onnxruntime gets
one intra-op and one inter-op thread). The two are timed in alternation, one onnxruntime run
before each stack run, so a change in the machine's load (it is shared) weighs on both alike;
the ratio is of the medians. The engine's time includes everything a run does: kernels, copies
and the performance model. The session ends with a table of the ratios per model and for the
whole smoke suite (goal: at most 1.5x); each ratio is also in the benchmark's extra_info.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import onnxruntime
import pytest

from stackci.workloads.prepare import prepare
from stackci.workloads.suite import load_suite
from stackci.workspace import Workspace

SKU = "npu-edge"
GOAL = 1.5
ROUNDS = 15
MODELS = [w.name for w in load_suite().select("smoke") if w.precision == "fp32"]

MEASURED: dict[str, dict] = {}
"""model -> {"stack_s", "onnxruntime_s", "ratio"}: the conftest prints them at the end."""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return Workspace.discover(home=tmp_path_factory.mktemp("stackci"))


def onnxruntime_session(model_path) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(model_path), options,
                                        providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name", MODELS)
def test_stack_vs_onnxruntime(benchmark, workspace, name):
    from npu_compiler import Engine, compile_model

    prepared = prepare(workspace, load_suite().get(name))
    feeds = prepared.inputs()
    session = onnxruntime_session(prepared.model_path)
    engine = Engine(compile_model(prepared.model_path, SKU))
    session.run(None, feeds)  # warm-up
    outputs, _ = engine.run(feeds)  # warm-up; also proves the run is a real one
    for output, value in prepared.expected().items():
        np.testing.assert_allclose(outputs[output], value, rtol=1e-3, atol=1e-4)

    reference_times: list[float] = []

    def onnxruntime_round():
        started = time.perf_counter()
        session.run(None, feeds)
        reference_times.append(time.perf_counter() - started)
        return (feeds,), {}

    benchmark.pedantic(engine.run, setup=onnxruntime_round, rounds=ROUNDS, iterations=1)
    stack_s = benchmark.stats.stats.median
    reference_s = statistics.median(reference_times)
    ratio = stack_s / reference_s
    benchmark.extra_info.update(onnxruntime_s=reference_s, stack_s=stack_s, speed_ratio=ratio,
                                goal=GOAL)
    MEASURED[name] = {"stack_s": stack_s, "onnxruntime_s": reference_s, "ratio": ratio}
