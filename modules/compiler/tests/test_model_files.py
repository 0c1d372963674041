"""Model files as they come: external data confined to the model's folder, weights in
Constant nodes, initializers listed as graph inputs, old opsets, unused opset imports."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, external_data_helper, helper, numpy_helper

import npu_compiler
from npu_compiler.cli import main
from compiler_models import onnxruntime_outputs

WEIGHTS = np.arange(16, dtype=np.float32).reshape(4, 4) / 10


def matmul_model(opset=13, **graph_extra) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["m"]), helper.make_node("Relu", ["m"], ["y"])],
        "files", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(WEIGHTS, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def check(model, path=None):
    x = np.linspace(-1, 1, 4, dtype=np.float32).reshape(1, 4)
    plan = npu_compiler.compile_model(path or model, "npu-edge")
    outputs, _ = npu_compiler.Engine(plan).run({"x": x})
    np.testing.assert_allclose(outputs["y"], np.maximum(x @ WEIGHTS, 0), rtol=1e-5)


def test_external_data_inside_the_folder_loads(tmp_path):
    model = matmul_model()
    onnx.save(model, str(tmp_path / "m.onnx"), save_as_external_data=True,
              location="m.bin", size_threshold=0)
    check(None, tmp_path / "m.onnx")


@pytest.mark.parametrize("location", ["../../outside", "/etc/passwd"])
def test_external_data_escaping_the_folder_is_refused_unread(tmp_path, capsys, monkeypatch,
                                                             location):
    folder = tmp_path / "a" / "b"
    folder.mkdir(parents=True)
    (tmp_path / "outside").write_bytes(WEIGHTS.tobytes())
    model = matmul_model()
    for tensor in model.graph.initializer:  # stated by hand: onnx.save would write the file
        tensor.ClearField("raw_data")
        tensor.ClearField("float_data")
        tensor.data_location = TensorProto.EXTERNAL
        tensor.external_data.add(key="location", value=location)
    (folder / "m.onnx").write_bytes(model.SerializeToString())

    def no_reading(*args, **kwargs):
        raise AssertionError("external data was read")

    monkeypatch.setattr(external_data_helper, "load_external_data_for_model", no_reading)
    code = main(["run", str(folder / "m.onnx"), "--sku", "npu-edge", "--no-cache"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().count("\n") == 0 and "outside the model's folder; refused" in err
    assert repr(location) in err and "m.onnx" in err


def test_weights_in_constant_nodes_and_initializers_as_inputs():
    model = matmul_model()
    weights = model.graph.initializer.pop()
    model.graph.node.insert(0, helper.make_node("Constant", [], ["W"], value=weights))
    check(model)
    listed = matmul_model()
    listed.graph.input.append(helper.make_tensor_value_info("W", TensorProto.FLOAT, [4, 4]))
    plan = npu_compiler.compile_model(listed, "npu-edge")
    assert [i["name"] for i in plan.inputs] == ["x"]


def test_an_old_opset_is_converted_and_unused_imports_are_ignored():
    old = matmul_model(opset=6)
    check(old)
    extra = matmul_model()
    extra.opset_import.append(helper.make_opsetid("ai.onnx.ml", 3))
    extra.opset_import.append(helper.make_opsetid("com.example.unused", 1))
    check(extra)
    x = np.ones((1, 4), np.float32)
    np.testing.assert_allclose(onnxruntime_outputs(extra, {"x": x})["y"],
                               np.maximum(x @ WEIGHTS, 0), rtol=1e-5)


def test_changed_side_file_weights_are_not_served_from_the_plan_cache(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(matmul_model(), str(path), save_as_external_data=True, location="m.bin",
              size_threshold=0)
    x = np.ones((1, 4), np.float32)
    first = npu_compiler.compile_model(path, "npu-edge", cache_dir=tmp_path / "plans")
    (tmp_path / "m.bin").write_bytes((WEIGHTS * 2).tobytes())  # m.onnx untouched
    second = npu_compiler.compile_model(path, "npu-edge", cache_dir=tmp_path / "plans")
    out1, _ = npu_compiler.Engine(first).run({"x": x})
    out2, _ = npu_compiler.Engine(second).run({"x": x})
    np.testing.assert_allclose(out2["y"], out1["y"] * 2, rtol=1e-5)
