"""Triton's reshape: clients send and receive the configured dims, the model runs its own
shapes (Triton's densenet_onnx example: dims [3, 224, 224], model input [1, 3, 224, 224])."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from npu_serving import CompilerBackend, ServedModel
from npu_serving.config import load
from npu_serving.errors import RepositoryError
from npu_serving.tensors import check_reshape

from serving_helpers import build_dense_relu, expected_output, wait_loaded, wait_ready

RESHAPED = """
max_batch_size: 0
input [{ name: "x", data_type: TYPE_FP32, dims: [4], reshape: { shape: [1, 4] } }]
output [{ name: "y", data_type: TYPE_FP32, dims: [3], reshape: { shape: [1, 3] } }]
"""


def model_folder(tmp_path, config: str, batch=1):
    folder = tmp_path / "dense"
    (folder / "1").mkdir(parents=True)
    onnx.save(build_dense_relu(batch=batch), str(folder / "1" / "model.onnx"))
    (folder / "config.pbtxt").write_text(config)
    return folder


def served_from(folder):
    return ServedModel("dense", "1", CompilerBackend(folder / "1" / "model.onnx", "npu-edge"),
                       load(folder))


def test_clients_use_the_configured_dims_and_the_model_its_own(tmp_path, make_client):
    client = make_client(served_from(model_folder(tmp_path, RESHAPED)))
    wait_ready(client)
    metadata = client.get("/v2/models/dense").json()
    assert metadata["inputs"][0]["shape"] == [4] and metadata["outputs"][0]["shape"] == [3]
    x = np.array([1.0, -2.0, 3.0, 0.5], np.float32)
    body = {"inputs": [{"name": "x", "shape": [4], "datatype": "FP32", "data": x.tolist()}]}
    response = client.post("/v2/models/dense/infer", content=json.dumps(body))
    assert response.status_code == 200, response.text
    out = response.json()["outputs"][0]
    assert out["shape"] == [3]
    np.testing.assert_allclose(out["data"], expected_output(x[None])[0], rtol=1e-5)
    body["inputs"][0].update(shape=[1, 4])  # the model's own shape is not what it declares
    assert client.post("/v2/models/dense/infer", content=json.dumps(body)).status_code == 400


def test_a_reshape_that_does_not_fit_the_model_fails_that_model(tmp_path, make_client):
    config = RESHAPED.replace("dims: [4], reshape: { shape: [1, 4] }",
                              "dims: [2, 2], reshape: { shape: [2, 2] }")
    folder = model_folder(tmp_path, config)
    model = served_from(folder)
    client = make_client(model)
    wait_loaded(model)
    assert model.state == "failed"
    assert model.error == (f"{folder / 'config.pbtxt'}: input 'x': reshape.shape [2, 2] does "
                           "not fit the model's shape [1, 4]")


@pytest.mark.parametrize(("dims", "shape", "message"), [
    ((4,), (1, 5), "dims [4] hold 4 elements, reshape.shape [1, 5] 5"),
    ((-1, 4), (-1, -1), "at most one -1"),
    ((4,), (-1, 4), "has a variable dimension, dims [4] none"),
])
def test_reshapes_are_checked_against_their_dims(dims, shape, message):
    assert message in check_reshape("config.pbtxt: input 'x'", dims, shape)


def test_a_bad_reshape_is_one_line_naming_the_file_and_input(tmp_path):
    folder = model_folder(tmp_path, RESHAPED.replace("shape: [1, 4]", "shape: [1, 5]"))
    with pytest.raises(RepositoryError) as caught:
        load(folder)
    assert str(caught.value) == (f"{folder / 'config.pbtxt'}: input 'x': dims [4] hold 4 "
                                 "elements, reshape.shape [1, 5] 5")


def test_a_batching_model_keeps_the_batch_dimension_first(tmp_path, make_client):
    config = """
max_batch_size: 4
input [{ name: "x", data_type: TYPE_FP32, dims: [2, 2], reshape: { shape: [4] } }]
"""
    client = make_client(served_from(model_folder(tmp_path, config, batch="N")))
    wait_ready(client)
    x = np.arange(12, dtype=np.float32).reshape(3, 2, 2)
    body = {"inputs": [{"name": "x", "shape": [3, 2, 2], "datatype": "FP32",
                        "data": x.ravel().tolist()}]}
    response = client.post("/v2/models/dense/infer", content=json.dumps(body))
    assert response.status_code == 200, response.text
    out = response.json()["outputs"][0]
    assert out["shape"] == [3, 3]
    np.testing.assert_allclose(np.reshape(out["data"], (3, 3)), expected_output(x.reshape(3, 4)),
                               rtol=1e-5)


@pytest.mark.parametrize(("config", "message"), [
    ('max_batch_size: 4\ninput [{ name: "nope", data_type: TYPE_FP32, dims: [4] }]\n',
     "input 'nope': the model has no such input (it has x)"),
    ('max_batch_size: 4\ninput [{ name: "x", data_type: TYPE_INT32, dims: [4] }]\n',
     "input 'x': data_type INT32, but the model's is FP32"),
    ('max_batch_size: 4\ninput [{ name: "x", data_type: TYPE_FP32, dims: [7] }]\n',
     "input 'x': dims [7], but the model's are [4] past the batch dimension"),
    ('max_batch_size: 4\noutput [{ name: "y", data_type: TYPE_STRING, dims: [3] }]\n',
     "output 'y': data_type BYTES, but the model's is FP32"),
    ('max_batch_size: 0\ninput [{ name: "x", data_type: TYPE_FP32, dims: [4] }]\n',
     "input 'x': dims [4], but the model's are [1, 4] (-1: any size)"),
])
def test_configured_tensors_must_be_the_models(tmp_path, make_client, config, message):
    # They were served as configured: GET .../config told clients of an input the model does
    # not have (or another datatype), and their requests were refused. Triton refuses the load.
    model = served_from(model_folder(tmp_path, config))
    make_client(model)
    wait_loaded(model)
    assert model.state == "failed" and message in model.error, model.error
    assert model.error.startswith(str(tmp_path / "dense" / "config.pbtxt"))


def test_configured_tensors_that_match_load(tmp_path, make_client):
    config = ('max_batch_size: 4\ninput [{ name: "x", data_type: TYPE_FP32, dims: [-1] }]\n'
              'output [{ name: "y", dims: [3] }]\n')  # -1 takes any size; no data_type: the model's
    model = served_from(model_folder(tmp_path, config, batch="N"))
    make_client(model)
    wait_loaded(model)
    assert model.state == "ready", model.error
