"""run-model on a model with symbolic height and width, with the real stack: two shapes in two
runs both match onnxruntime and leave two plans in the cache (one per shape signature)."""

import json
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from stackci.cli import main


def symbolic_conv(path):
    weight = numpy_helper.from_array(
        np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["y"])], "symbolic",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, "H", "W"])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                ir_version=8), path)
    return str(path)


def test_two_shapes_two_runs_two_plans(tmp_path, monkeypatch, capsys):
    pytest.importorskip("npu_compiler")  # the harness's test env holds the stack
    monkeypatch.setenv("NPU_PLAN_CACHE", str(tmp_path / "plans"))
    monkeypatch.setenv("STACKCI_HOME", str(tmp_path / "home"))
    model = symbolic_conv(tmp_path / "m.onnx")
    for shape in ("1x3x16x24", "1x3x9x5"):
        code = main(["run-model", model, "--sku", "npu-edge", "--python", sys.executable,
                     "--shape", f"x={shape}", "--json"])
        document = json.loads(capsys.readouterr().out)
        assert code == 0 and document["match"], document
        h, w = (int(d) for d in shape.split("x")[2:])
        assert document["outputs"][0]["shape"] == [1, 4, h, w]
    plans = [p for p in (tmp_path / "plans").rglob("plan.json")]
    assert len(plans) == 2


@pytest.mark.parametrize("shape, message", [
    ("x=1x3x16", "does not fit the model's input 'x' of shape 1x3x\\?x\\?"),
    ("x=2x3x8x8", "does not fit"),
    ("y=1x3x8x8", "--shape names no input of the model: y"),
    ("x=1x3xHx8", "expected NAME=DxDx"),
])
def test_a_shape_that_does_not_fit_is_one_line(tmp_path, capsys, shape, message):
    model = symbolic_conv(tmp_path / "m.onnx")
    code = main(["run-model", model, "--sku", "npu-edge", "--python", sys.executable,
                 "--shape", shape])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert __import__("re").search(message, err), err
