import numpy as np
import pytest

from fakecompiler import tiny_conv_model
from stackci.workloads import reference
from stackci.errors import UsageError


def test_random_inputs_are_seeded_and_fill_symbolic_batch(tmp_path):
    model = tiny_conv_model(tmp_path / "tiny.onnx")
    first = reference.random_inputs(model, seed=3)
    again = reference.random_inputs(model, seed=3)
    other = reference.random_inputs(model, seed=4)
    assert list(first) == ["x"] and first["x"].shape == (1, 3, 8, 8)
    assert first["x"].dtype == np.float32
    np.testing.assert_array_equal(first["x"], again["x"])
    assert not np.array_equal(first["x"], other["x"])
    assert reference.random_inputs(model, seed=3, batch=4)["x"].shape == (4, 3, 8, 8)


def test_reference_outputs_come_from_onnxruntime(tmp_path):
    model = tiny_conv_model(tmp_path / "tiny.onnx")
    outputs = reference.reference_outputs(model, reference.random_inputs(model, seed=0))
    assert list(outputs) == ["y"] and outputs["y"].shape == (1, 4, 8, 8)
    np.testing.assert_allclose(outputs["y"].sum(axis=1), 1.0, rtol=1e-5)  # softmax over axis 1


def test_corrupt_model_is_a_usage_error_naming_the_file(tmp_path):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage that is not a protobuf\xff\xff")
    with pytest.raises(UsageError, match="corrupt.onnx"):
        reference.random_inputs(corrupt, seed=0)
    with pytest.raises(UsageError, match="corrupt.onnx"):
        reference.reference_outputs(corrupt, {})


def test_input_names_must_match_the_model(tmp_path):
    model = tiny_conv_model(tmp_path / "tiny.onnx")
    with pytest.raises(UsageError, match="missing input 'x'"):
        reference.reference_outputs(model, {"z": np.zeros((1, 3, 8, 8), np.float32)})
    feeds = reference.random_inputs(model, seed=0) | {"extra": np.zeros(1, np.float32)}
    with pytest.raises(UsageError, match="unknown input 'extra'"):
        reference.reference_outputs(model, feeds)
