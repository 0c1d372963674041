"""What npu_serving expects of compiler-api: compile an ONNX file for a SKU (optionally at a
batch size), run the engine on named feeds, and errors it can map to protocol errors."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import npu_compiler


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    rng = np.random.default_rng(0)
    weight = helper.make_tensor("w", TensorProto.FLOAT, (8, 4),
                                rng.standard_normal((8, 4)).astype(np.float32).ravel())
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path_factory.mktemp("model") / "model.onnx"
    onnx.save(model, str(path))
    return path


def test_compile_at_a_batch_and_run(model_path):
    plan = npu_compiler.compile_model(model_path, "npu-edge", precision="fp32", batch=2)
    feeds = {"x": np.ones((2, 8), np.float32)}
    outputs, profile = npu_compiler.Engine(plan).run(feeds)
    assert outputs["y"].shape == (2, 4)
    assert profile["total_cycles"] > 0 and "ops" in profile
    assert [o["name"] for o in plan.outputs] == ["y"]


def test_unreadable_model_is_a_model_load_error(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(npu_compiler.ModelLoadError):
        npu_compiler.compile_model(bad, "npu-edge")
    assert issubclass(npu_compiler.ModelLoadError, npu_compiler.CompileError)
