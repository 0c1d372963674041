"""Symbolic input dimensions: bound from the feeds or `--shape`, the plan specialized to the
shape signature (shape arithmetic folded) and cached once per signature."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import npu_compiler
from npu_compiler.cli import main
from compiler_models import onnxruntime_outputs


def _model(nodes, inputs, initializers=()) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "dynamic", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in initializers])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def symbolic_hw_model() -> onnx.ModelProto:
    """Conv over [N, 3, H, W], then Reshape to [N, C, H*W] through Shape -> Slice -> Concat
    (the shape arithmetic exporters write), then Softmax."""
    w = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Shape", ["r"], ["s"]),
             helper.make_node("Slice", ["s", "zero", "two"], ["nc"]),
             helper.make_node("Concat", ["nc", "minus_one"], ["target"], axis=0),
             helper.make_node("Reshape", ["r", "target"], ["flat"]),
             helper.make_node("Softmax", ["flat"], ["y"], axis=-1)]
    return _model(nodes, [("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                  [("w", w), ("zero", np.array([0])), ("two", np.array([2])),
                   ("minus_one", np.array([-1]))])


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_two_shapes_match_onnxruntime_and_cache_two_plans(capsys, tmp_path, monkeypatch):
    model = symbolic_hw_model()
    path = tmp_path / "hw.onnx"
    onnx.save(model, str(path))
    cache = tmp_path / "plans"
    monkeypatch.setenv("NPU_PLAN_CACHE", str(cache))
    rng = np.random.default_rng(1)
    seen = []
    for shape in [(1, 3, 32, 48), (2, 3, 20, 24), (1, 3, 32, 48)]:
        feeds = {"x": rng.standard_normal(shape).astype(np.float32)}
        np.savez(tmp_path / "in.npz", **feeds)
        code, out, err = run_cli(capsys, "run", path, "--sku", "npu-dc", "--inputs",
                                 tmp_path / "in.npz", "--save-outputs", tmp_path / "out.npz",
                                 "--json")
        assert code == 0, err
        doc = json.loads(out)
        seen.append(doc["plan_cache"])
        expected = onnxruntime_outputs(model, feeds)["y"]
        with np.load(tmp_path / "out.npz") as got:
            np.testing.assert_allclose(got["y"], expected, rtol=1e-4, atol=1e-6)
        assert doc["outputs"][0]["shape"] == [shape[0], 4, shape[2] * shape[3]]
    assert seen == ["miss", "miss", "hit"]
    assert len(list(cache.rglob("plan.json"))) == 2


def test_shape_option_binds_and_folds_the_shape_arithmetic():
    plan = npu_compiler.compile_model(symbolic_hw_model(), "npu-dc",
                                      shapes={"x": (1, 3, 16, 16)})
    assert plan.inputs[0]["shape"] == [1, 3, 16, 16]
    assert {s["op_type"] for s in plan.steps} >= {"Conv", "Reshape", "Softmax"}
    assert not {"Shape", "Slice", "Concat"} & {s["op_type"] for s in plan.steps}


def test_cli_shape_errors_are_one_line(capsys, tmp_path):
    path = tmp_path / "hw.onnx"
    onnx.save(symbolic_hw_model(), str(path))
    code, _, err = run_cli(capsys, "run", path, "--sku", "npu-dc")
    assert code == 2 and "symbolic dimension H at axis 2" in err and "--shape x=" in err
    code, _, err = run_cli(capsys, "run", path, "--sku", "npu-dc", "--shape", "q=1x2")
    assert code == 2 and "'q', not an input" in err
    code, _, err = run_cli(capsys, "compile", path, "--sku", "npu-dc", "--shape", "x=1x3x",
                           "--out", tmp_path / "plan")
    assert code == 2 and "expected NAME=DIMxDIM" in err
    code, _, err = run_cli(capsys, "run", path, "--sku", "npu-dc", "--shape", "x=1x3x8")
    assert code == 2 and "has 4 dimensions" in err
    assert all(len(e.strip().splitlines()) == 1 for e in [err])


def test_a_first_axis_that_is_data_takes_any_size():
    """[N, 4] where N is a count of rows, not a batch: fed 5 rows, 5 rows come out."""
    model = _model([helper.make_node("MatMul", ["x", "w"], ["y"])],
                   [("x", TensorProto.FLOAT, ["rows", 4])],
                   [("w", np.eye(4, dtype=np.float32) * 2)])
    feeds = {"x": np.arange(20, dtype=np.float32).reshape(5, 4)}
    plan = npu_compiler.compile_model(model, "npu-edge", feed_shapes={"x": (5, 4)})
    outputs, _ = npu_compiler.Engine(plan).run(feeds)
    np.testing.assert_allclose(outputs["y"], feeds["x"] * 2)


def test_shapes_computed_from_fed_values_compile_when_the_model_runs():
    """Range over a fed length: the tail is compiled for the value fed, and matches."""
    model = _model([helper.make_node("Range", ["zero", "n", "one"], ["r"]),
                    helper.make_node("Cast", ["r"], ["rf"], to=TensorProto.FLOAT),
                    helper.make_node("Mul", ["rf", "scale"], ["y"])],
                   [("n", TensorProto.INT64, [])],
                   [("zero", np.array(0)), ("one", np.array(1)), ("scale", np.float32(0.5))])
    plan = npu_compiler.compile_model(model, "npu-dc")
    assert [s["op_type"] for s in plan.steps] == ["Deferred"]
    engine = npu_compiler.Engine(plan)
    for n in (3, 7):
        outputs, profile = engine.run({"n": np.array(n)})
        np.testing.assert_allclose(outputs["y"], np.arange(n) * 0.5)
        assert profile["total_cycles"] > 0 and "n" in profile["ops"][0]["specialized_on"]


def test_a_shape_computed_from_float_data_names_the_node():
    model = _model([helper.make_node("Greater", ["x", "zero"], ["positive"]),
                    helper.make_node("Compress", ["x", "positive"], ["y"])],
                   [("x", TensorProto.FLOAT, [6])], [("zero", np.float32(0))])
    with pytest.raises(npu_compiler.CompileError, match="Compress node 'Compress_1' computes "
                                                        "the shape of 'y' from data"):
        npu_compiler.compile_model(model, "npu-dc")


def test_dimensions_declared_minus_one_are_symbolic(tmp_path):
    """Paddle's exports (PP-OCR's classifier) declare dynamic dims as -1: they bind from the
    feeds like named ones, from a file and from a ModelProto."""
    model = symbolic_hw_model()
    for axis in (0, 2, 3):
        dim = model.graph.input[0].type.tensor_type.shape.dim[axis]
        dim.Clear()
        dim.dim_value = -1
    onnx.save(model, tmp_path / "m.onnx")
    x = np.random.default_rng(1).standard_normal((1, 3, 6, 10)).astype(np.float32)
    for source in (str(tmp_path / "m.onnx"), model):
        plan = npu_compiler.compile_model(source, "npu-edge", feed_shapes={"x": x.shape})
        outputs, _ = npu_compiler.Engine(plan).run({"x": x})
        assert outputs["y"].shape == (1, 4, 60)


def fixed_batch_classifier() -> onnx.ModelProto:
    """A CNN exported at batch 1, as AlexNet and ResNet-50 are: Conv -> GlobalAveragePool ->
    Reshape to the constant [1, 4] -> Gemm; and a Reshape of a weight to [1, 6], which is no
    activation and must keep its shape."""
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["c"], ["g"]),
             helper.make_node("Reshape", ["g", "flat"], ["f"]),
             helper.make_node("Reshape", ["bias6", "row"], ["bias_row"]),
             helper.make_node("Gemm", ["f", "fc"], ["z"], transB=1),
             helper.make_node("Add", ["z", "bias_row"], ["y"])]
    return _model(nodes, [("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                  [("w", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
                   ("flat", np.array([1, 4])), ("row", np.array([1, 6])),
                   ("bias6", rng.standard_normal(6).astype(np.float32)),
                   ("fc", rng.standard_normal((6, 4)).astype(np.float32))])


def test_a_batch_override_keeps_the_batch_through_a_constant_reshape():
    model = fixed_batch_classifier()
    x = np.random.default_rng(4).standard_normal((3, 3, 8, 8)).astype(np.float32)
    plan = npu_compiler.compile_model(model, "npu-edge", batch=3)
    outputs, _ = npu_compiler.Engine(plan, "npu-edge").run({"x": x})
    expected = np.concatenate([onnxruntime_outputs(model, {"x": x[i:i + 1]})["y"]
                               for i in range(3)])
    np.testing.assert_allclose(outputs["y"], expected, rtol=1e-4, atol=1e-5)
    single = npu_compiler.compile_model(model, "npu-edge", batch=1)  # as exported
    np.testing.assert_allclose(npu_compiler.Engine(single, "npu-edge").run({"x": x[:1]})[0]["y"],
                               expected[:1], rtol=1e-4, atol=1e-5)
