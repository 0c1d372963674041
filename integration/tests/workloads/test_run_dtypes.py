"""run-model's inputs are checked, not cast (a wrong dtype or string data is bad input naming
the input, the given and the expected dtype), and scalar (0-d) outputs and shapeless inputs
compare like any others."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from fakecompiler import fake_python, tiny_conv_model
from stackci import cli
from stackci.errors import UsageError
from stackci.workloads.compare import compare_outputs
from stackci.workloads.npz import save_npz
from stackci.workloads.run import run_model


@pytest.fixture
def stack(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_STACK_MODE", "ok")
    return fake_python(tmp_path)


def scalar_model(path, *, shapeless: bool = False):
    """ReduceSum of every element to a 0-d output; the input has no shape at all when
    `shapeless` (rank unknown), else [3]."""
    x = (helper.make_tensor_value_info("x", TensorProto.FLOAT, None) if shapeless
         else helper.make_tensor_value_info("x", TensorProto.FLOAT, [3]))
    graph = helper.make_graph([helper.make_node("ReduceSum", ["x"], ["y"], keepdims=0)],
                              "scalar", [x], [helper.make_tensor_value_info(
                                  "y", TensorProto.FLOAT, [])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_a_scalar_output_compares(stack, tmp_path):
    model = scalar_model(tmp_path / "scalar.onnx")
    document = run_model(stack, model, "npu-edge", inputs={"x": np.ones(3, np.float32)})
    [output] = document["outputs"]
    assert document["match"] and output["shape"] == [] and output["max_abs_error"] == 0.0


def test_a_shapeless_input_works(stack, tmp_path):
    model = scalar_model(tmp_path / "shapeless.onnx", shapeless=True)
    document = run_model(stack, model, "npu-edge", inputs={"x": np.ones((2, 2), np.float32)})
    assert document["match"]
    assert run_model(stack, model, "npu-edge", seed=1)["match"]


def test_scalars_compare_directly():
    [entry] = compare_outputs({"y": np.float32(1.5)}, {"y": np.float32(1.0)}, 1e-3, 1e-3)
    assert not entry["match"] and entry["max_abs_error"] == 0.5


def test_a_wrong_dtype_is_bad_input_naming_both(stack, tmp_path):
    model = tiny_conv_model(tmp_path / "tiny.onnx")
    inputs = np.ones((1, 3, 8, 8), np.int64)
    with pytest.raises(UsageError, match=r"input 'x': given dtype int64, expected float32"):
        run_model(stack, model, "npu-edge", inputs={"x": inputs})


def test_string_data_is_bad_input_exit_2(stack, tmp_path, capsys):
    model = tiny_conv_model(tmp_path / "tiny.onnx")
    feeds = tmp_path / "inputs.npz"
    save_npz(feeds, {"x": np.array([["a", "b"]])})
    code = cli.main(["run-model", str(model), "--sku", "npu-edge", "--python", str(stack),
                     "--inputs", str(feeds), "--json"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "input 'x': given <U1 (not numbers), expected dtype float32" in err
    assert err.count("\n") == 1
