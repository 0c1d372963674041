"""The ONNX backend adapter and the node-suite runner: a fixed sample of the suite (the full
run is `python -m npu_compiler.conformance`, a nightly metric) and the failure classes."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import npu_opslib
from npu_compiler import conformance, onnx_backend
from npu_compiler.errors import CompileError

SAMPLE_EVERY = 12  # every 12th case of the sorted suite: 157 cases across all operators
# The whole suite passes 1,537 of 1,884 (82%); this sample 133 of 157 (85%).
SAMPLE_PASS_RATE = 0.82


@pytest.fixture(scope="module")
def cases():
    return conformance.load_cases()


def test_fixed_sample_of_the_node_suite_passes(cases):
    sample = cases[::SAMPLE_EVERY]
    report = conformance.run_suite(sample, reference=False)
    assert report.total == len(sample) > 150
    failures = [f"{r.name}: {r.status} {r.detail}" for r in report.results if not r.passed]
    assert report.passed / report.total >= SAMPLE_PASS_RATE, "\n".join(failures)
    # What fails is unsupported, never a wrong answer or a crash of a supported operator.
    unexpected = [r for r in report.results if r.status in (conformance.WRONG_RESULT,
                                                            conformance.CRASH)]
    assert len(unexpected) <= 2, [(r.name, r.detail) for r in unexpected]


def _case(name, model, inputs, outputs):
    return type("Case", (), {"name": name, "model": model, "data_sets": [(inputs, outputs)],
                             "rtol": 1e-3, "atol": 1e-7})()


def _model(node, inputs, outputs, opset=17):
    graph = helper.make_graph([node], "case", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _relu_model():
    return _model(helper.make_node("Relu", ["x"], ["y"]),
                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])


X = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)


def test_a_passing_case():
    result = conformance.run_case(_case("relu", _relu_model(), [X], [np.maximum(X, 0)]))
    assert result.status == conformance.PASSED, result.detail


def test_a_wrong_answer_is_a_wrong_result():
    result = conformance.run_case(_case("relu", _relu_model(), [X], [X]))
    assert result.status == conformance.WRONG_RESULT
    assert "max abs error" in result.detail


def test_an_operator_opslib_lacks_is_unsupported_operator():
    model = _model(helper.make_node("Det", ["x"], ["y"]),
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])])
    result = conformance.run_case(_case("det", model, [np.eye(2, dtype=np.float32)],
                                        [np.array(1, np.float32)]))
    assert result.status == conformance.UNSUPPORTED_OPERATOR
    assert "Det" in result.detail


def test_a_string_input_is_unsupported_type():
    model = _model(helper.make_node("Identity", ["x"], ["y"]),
                   [helper.make_tensor_value_info("x", TensorProto.STRING, [1])],
                   [helper.make_tensor_value_info("y", TensorProto.STRING, [1])])
    values = np.array(["a"], dtype=object)
    result = conformance.run_case(_case("strings", model, [values], [values]))
    assert result.status == conformance.UNSUPPORTED_TYPE
    assert "STRING" in result.detail


def test_any_other_error_is_a_crash():
    class Exploding:
        @staticmethod
        def prepare(model, device):
            raise ZeroDivisionError("boom")

    result = conformance.run_case(_case("x", _relu_model(), [X], [X]), backend=Exploding)
    assert result.status == conformance.CRASH
    assert result.detail == "ZeroDivisionError: boom"


@pytest.mark.parametrize("exc, status", [
    (npu_opslib.UnsupportedOperator("Foo"), conformance.UNSUPPORTED_OPERATOR),
    (onnx_backend.UnsupportedType("input 'x' has type STRING"), conformance.UNSUPPORTED_TYPE),
    (conformance.Mismatch("output 0 differs"), conformance.WRONG_RESULT),
    (CompileError("shape of value 'v' is unknown"), conformance.CRASH),
    (KeyError("v"), conformance.CRASH),
])
def test_classify(exc, status):
    assert conformance.classify(exc)[0] == status


@pytest.mark.parametrize("got, why", [
    ([np.zeros((2, 2), np.float32)], "shape"),
    ([np.zeros(3, np.float64)], "dtype"),
    ([np.ones(3, np.float32)], "differs"),
    ([], "outputs"),
])
def test_compare_names_the_difference(got, why):
    with pytest.raises(conformance.Mismatch, match=why):
        conformance.compare([np.zeros(3, np.float32)], got, rtol=1e-3, atol=1e-7)


def test_backend_module_interface():
    assert onnx_backend.supports_device("CPU")
    assert not onnx_backend.supports_device("CUDA")
    node = helper.make_node("Relu", ["x"], ["y"])
    (y,) = onnx_backend.run_node(node, [X])
    np.testing.assert_array_equal(y, np.maximum(X, 0))
    (y,) = onnx_backend.run_model(_relu_model(), [X])
    np.testing.assert_array_equal(y, np.maximum(X, 0))


def test_the_sku_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(onnx_backend.SKU_ENV, "npu-edge")
    assert onnx_backend.prepare(_relu_model()).sku == "npu-edge"
    monkeypatch.delenv(onnx_backend.SKU_ENV)
    assert onnx_backend.prepare(_relu_model()).sku == onnx_backend.DEFAULT_SKU
    monkeypatch.setenv(onnx_backend.SKU_ENV, "no-such-sku")
    with pytest.raises(Exception, match="no-such-sku"):
        onnx_backend.prepare(_relu_model()).run([X])


def test_shape_inputs_are_bound_and_each_signature_compiles_once():
    model = _model(helper.make_node("Reshape", ["x", "shape"], ["y"]),
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3]),
                    helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    rep = onnx_backend.prepare(model)
    (y,) = rep.run([X, np.array([3, 2], np.int64)])
    assert y.shape == (3, 2)
    (y,) = rep.run([X, np.array([1, 6], np.int64)])
    assert y.shape == (1, 6)
    (y,) = rep.run([np.ones((4, 3), np.float32), np.array([6, 2], np.int64)])
    assert y.shape == (6, 2)
    assert len(rep._engines) == 3


def test_cli_filters_and_prints_json(capsys):
    assert conformance.main(["--json", "--filter", r"^test_relu$", "--no-onnxruntime"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["total"] == 1 and report["passed"] == 1
    assert report["onnxruntime_passed"] is None


@pytest.mark.parametrize("pattern, message", [("(", "not a regular expression"),
                                              ("^no_such_case$", "no node case")])
def test_cli_bad_filter_is_one_line(capsys, pattern, message):
    assert conformance.main(["--filter", pattern]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
