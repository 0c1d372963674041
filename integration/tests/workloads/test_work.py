"""The work a model asks of the device, counted from its graph (workloads/work.py): the
planner's prior for a job never run anywhere."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from stackci.workloads.suite import Workload
from stackci.workloads.work import CACHE_FILE, graph_work, workload_work
from stackci.workspace import Workspace


@pytest.fixture
def ws(tmp_path):
    return Workspace(repo=Path(__file__).resolve().parents[3], home=tmp_path / "home")


def weight(name, *shape):
    return numpy_helper.from_array(np.zeros(shape, np.float32), name)


def mixed_model(path=None) -> onnx.ModelProto:
    """Conv 3->8 (3x3, 16x16, same padding) -> Relu -> Flatten -> Gemm 2048->10 -> an LSTM of
    hidden 5 over a sequence of 4 (its input 10 wide), over a symbolic batch."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Flatten", ["r"], ["f"]),
             helper.make_node("Gemm", ["f", "g", "gb"], ["y"], transB=1),
             helper.make_node("LSTM", ["s", "lw", "lr"], ["h"], hidden_size=5)]
    graph = helper.make_graph(
        nodes, "mixed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16]),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, [4, "N", 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("h", TensorProto.FLOAT, None)],
        [weight("w", 8, 3, 3, 3), weight("g", 10, 2048), weight("gb", 10),
         weight("lw", 1, 20, 10), weight("lr", 1, 20, 5)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    if path is not None:
        onnx.save(model, str(path))
    return model


def expected(batch: int, sequences: int | None = None) -> int:
    conv = batch * 8 * 16 * 16 * (3 * 3 * 3)
    relu = flatten = batch * 8 * 16 * 16
    gemm = batch * 10 * 2048
    lstm = 4 * (batch if sequences is None else sequences) * 1 * 20 * (10 + 5)
    return conv + relu + flatten + gemm + lstm


def test_multiply_accumulates_and_element_operations_are_counted_per_op():
    shapes = {"x": (1, 3, 16, 16), "s": (4, 1, 10)}
    assert graph_work(mixed_model(), shapes) == expected(1)


def test_the_work_grows_with_the_batch_the_inputs_are_made_at():
    assert graph_work(mixed_model(), {"x": (8, 3, 16, 16), "s": (4, 8, 10)}) == expected(8)


def test_large_weights_are_not_needed_to_count():
    model = mixed_model()
    model.graph.initializer[1].CopyFrom(numpy_helper.from_array(
        np.ones((10, 2048), np.float32), "g"))  # 20k elements: its bytes are dropped first
    assert graph_work(model, {"x": (1, 3, 16, 16), "s": (4, 1, 10)}) == expected(1)


def test_a_graph_whose_shapes_stay_unknown_has_no_figure():
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    assert graph_work(helper.make_model(graph), {}) is None


REQUIRED = {"tiers": ("smoke",), "skus": ("edge",), "precision": "fp32", "seed": 0,
            "atol": 1e-4, "rtol": 1e-3}


def workload(tmp_path, batch=1, **fields):
    return Workload(name="mixed", source="file:mixed.onnx", suite_dir=tmp_path, batch=batch,
                    **{**REQUIRED, **fields})


def test_a_workload_is_counted_at_its_batch_and_remembered_in_the_cache(ws, tmp_path):
    mixed_model(tmp_path / "mixed.onnx")
    # As the inputs are made: a symbolic leading dimension is the batch, any other one 1 (the
    # LSTM's sequence input has its batch second).
    assert workload_work(ws, workload(tmp_path, batch=2)) == expected(2, sequences=1)
    cache = ws.cache / CACHE_FILE
    [(name, figure)] = json.loads(cache.read_text()).items()
    assert name.startswith("mixed-0-") and figure == expected(2, sequences=1)
    # Read back, not counted again: a figure planted in the cache is the one returned.
    cache.write_text(json.dumps({name: 12345.0}))
    assert workload_work(ws, workload(tmp_path, batch=2)) == 12345.0


def test_declared_input_shapes_are_the_ones_counted(ws, tmp_path):
    mixed_model(tmp_path / "mixed.onnx")
    declared = (("x", (3, 3, 16, 16), 0.0, 1.0), ("s", (4, 3, 10), 0.0, 1.0))
    assert workload_work(ws, workload(tmp_path, inputs=declared)) == expected(3)


def test_a_missing_or_broken_model_has_no_figure_and_fails_nothing(ws, tmp_path):
    assert workload_work(ws, workload(tmp_path)) is None  # no file at all
    (tmp_path / "mixed.onnx").write_bytes(b"not a model")
    assert workload_work(ws, workload(tmp_path)) is None


def test_a_real_model_not_fetched_yet_has_no_figure(ws, tmp_path):
    real = Workload(name="real", source="pypi:nothing==1.0", member="m.onnx", sha256="0" * 64,
                    batch=1, **REQUIRED)
    assert workload_work(ws, real) is None
    assert not (ws.cache / "models").exists() or not any((ws.cache / "models").iterdir())
