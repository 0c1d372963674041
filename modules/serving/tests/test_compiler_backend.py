"""The real backend: models compiled by npu_compiler for a SKU and run on the simulated NPU."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from fastapi.testclient import TestClient

from npu_serving import CompilerBackend, InferenceServer, ModelConfig, ServedModel
from npu_serving.server import create_app

from serving_helpers import build_dense_relu, expected_output, wait_loaded, wait_ready

SKU = "npu-edge"

@pytest.fixture
def dense_path(tmp_path):
    path = tmp_path / "model.onnx"
    onnx.save(build_dense_relu(), str(path))
    return path


def test_compiles_one_engine_per_batch_size_lazily(dense_path):
    backend = CompilerBackend(dense_path, SKU, batching=True)
    backend.load()
    assert backend.compiled_batch_sizes == [1]
    for batch in (2, 3, 2):
        x = np.random.default_rng(batch).standard_normal((batch, 4)).astype(np.float32)
        y = backend.infer({"x": x})["y"]
        np.testing.assert_allclose(y, expected_output(x), rtol=1e-4, atol=1e-5)
    assert sorted(backend.compiled_batch_sizes) == [1, 2, 3]
    assert backend.last_profile["total_cycles"] > 0


def test_batched_http_requests_run_on_the_compiled_model(dense_path):
    config = ModelConfig(max_batch_size=4)
    model = ServedModel("dense", "1", CompilerBackend(dense_path, SKU, batching=True), config)
    with TestClient(create_app(InferenceServer([model]))) as client:
        wait_ready(client)
        x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
        request = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": x.ravel().tolist()}]}
        response = client.post("/v2/models/dense/infer", json=request)
        assert response.status_code == 200, response.text
        y = np.array(response.json()["outputs"][0]["data"], np.float32).reshape(2, 3)
        np.testing.assert_allclose(y, expected_output(x), rtol=1e-4, atol=1e-5)


def test_unsupported_operator_fails_the_model_not_the_server(tmp_path):
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("NoSuchOp", ["x"], ["y"], domain="example.custom")],
        "custom",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])],
    )
    path = tmp_path / "model.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17),
              onnx.helper.make_opsetid("example.custom", 1)]), str(path))
    model = ServedModel("custom", "1", CompilerBackend(path, SKU))
    with TestClient(create_app(InferenceServer([model]))) as client:
        wait_loaded(model)
        assert model.state == "failed"
        response = client.get("/v2/models/custom/ready")
        assert response.status_code == 503
        assert "NoSuchOp" in response.json()["error"]


def _conv_any_size(path):
    """A 3x3 convolution and ReLU on an image whose height and width are symbolic."""
    rng = np.random.default_rng(7)
    weight = onnx.numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
         onnx.helper.make_node("Relu", ["c"], ["y"])],
        "conv_any_size",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, "H", "W"])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4, "H", "W"])],
        [weight])
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)],
                                     ir_version=8), str(path))
    return path


def test_symbolic_height_and_width_compile_one_plan_per_shape(tmp_path):
    import onnxruntime

    path = _conv_any_size(tmp_path / "model.onnx")
    reference = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    model = ServedModel("conv", "1", CompilerBackend(path, SKU), ModelConfig())
    with TestClient(create_app(InferenceServer([model]))) as client:
        wait_ready(client)
        for height, width in ((8, 12), (16, 6), (8, 12)):
            x = np.random.default_rng(height).standard_normal((1, 3, height, width)).astype(
                np.float32)
            request = {"inputs": [{"name": "x", "shape": list(x.shape), "datatype": "FP32",
                                   "data": x.ravel().tolist()}]}
            response = client.post("/v2/models/conv/infer", json=request)
            assert response.status_code == 200, response.text
            out = response.json()["outputs"][0]
            assert out["shape"] == [1, 4, height, width]
            y = np.array(out["data"], np.float32).reshape(out["shape"])
            np.testing.assert_allclose(y, reference.run(None, {"x": x})[0], rtol=1e-4, atol=1e-5)
    assert model.backend.compiled_signatures == [
        (None, (("x", (1, 3, 8, 12)),)), (None, (("x", (1, 3, 16, 6)),))]


def test_shape_signature_plans_stay_within_the_cache_bound(tmp_path):
    backend = CompilerBackend(_conv_any_size(tmp_path / "model.onnx"), SKU)
    backend.CACHED_PLANS = 2
    backend.load()
    for width in (4, 5, 6, 4):
        x = np.ones((1, 3, 4, width), np.float32)
        assert backend.infer({"x": x})["y"].shape == (1, 4, 4, width)
    assert [sig[0][1][-1] for _, sig in backend.compiled_signatures] == [6, 4]
