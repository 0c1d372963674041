"""The real backend: models compiled by npu_compiler for a SKU and run on the simulated NPU."""

from __future__ import annotations

import numpy as np
import npu_compiler
import onnx
import onnx.numpy_helper
import pytest
from fastapi.testclient import TestClient

from npu_serving import CompilerBackend, InferenceServer, ModelConfig, ServedModel
from npu_serving.server import create_app

from serving_helpers import build_dense_relu, expected_output, wait_loaded, wait_ready

SKU = "npu-edge"
# compiler-api 1.6 shares an instance's device among its engines (the nightly also runs these
# tests against older compilers, which cannot)
SHARES_WEIGHTS = tuple(int(p) for p in getattr(npu_compiler, "COMPILER_API_VERSION", "1.0")
                       .split(".")) >= (1, 6)

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


def _conv_any_size(path, layers: int = 1):
    """3x3 convolutions and ReLUs on an image whose height and width are symbolic (with two
    layers the first's output is an intermediate, held in the engine's arena)."""
    rng = np.random.default_rng(7)
    weights = [onnx.numpy_helper.from_array(
        rng.standard_normal((4, 3 if layer == 0 else 4, 3, 3)).astype(np.float32), f"w{layer}")
        for layer in range(layers)]
    nodes = []
    for layer in range(layers):
        source = "x" if layer == 0 else f"r{layer - 1}"
        target = "y" if layer == layers - 1 else f"r{layer}"
        nodes += [onnx.helper.make_node("Conv", [source, f"w{layer}"], [f"c{layer}"],
                                        pads=[1, 1, 1, 1]),
                  onnx.helper.make_node("Relu", [f"c{layer}"], [target])]
    graph = onnx.helper.make_graph(
        nodes, "conv_any_size",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, "H", "W"])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4, "H", "W"])],
        weights)
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


def test_an_instance_holds_the_weights_once_for_all_its_batch_sizes(dense_path):
    # Each instance is one device: its plans at 1, 2, 4 and 8 share the weights uploaded once
    # (the model's device memory does not grow with the batch sizes prepared).
    weights = sum(onnx.numpy_helper.to_array(init).nbytes
                  for init in onnx.load(str(dense_path)).graph.initializer)
    backend = CompilerBackend(dense_path, SKU, batching=True)
    backend.prepare(2, [1, 2, 4, 8])
    plans = list(backend._plans.values())
    assert len(plans) == 4 and all(  # the host keeps one copy of the weights too
        p.constants[name] is plans[0].constants[name] for p in plans for name in plans[0].constants)
    contexts = {id(engine.ctx) for engine in backend._engines.values()}
    if not SHARES_WEIGHTS:  # a compiler before compiler-api 1.6: a device per engine, as before
        assert len(contexts) == 8
        return
    assert len(contexts) == 2  # one device per instance, not per plan
    for instance in (0, 1):
        engines = [e for (i, _), e in backend._engines.items() if i == instance]
        assert len(engines) == 4
        names = engines[0].weights.keys()
        assert all(e.weights[n] is engines[0].weights[n] for e in engines for n in names)
        arenas = sum(e.plan.memory["arena_bytes"] for e in engines)
        used = engines[0].ctx.device.used_bytes
        assert used < arenas + 2 * weights  # the weights once (with alignment), not 4 times
    _, info = backend.execute({"x": np.ones((3, 4), np.float32)}, 1)
    assert info["executed_batch_size"] == 4


def test_plans_dropped_from_the_cache_give_their_device_memory_back(tmp_path):
    backend = CompilerBackend(_conv_any_size(tmp_path / "model.onnx", layers=2), SKU)
    backend.CACHED_PLANS = 1
    backend.load()
    backend.infer({"x": np.ones((1, 3, 4, 4), np.float32)})
    assert next(iter(backend._engines.values())).plan.memory["arena_bytes"] > 0
    device = next(iter(backend._engines.values())).ctx.device
    used = device.used_bytes
    for width in (5, 6, 7, 8, 4):  # each new shape drops the one before
        backend.infer({"x": np.ones((1, 3, 4, width), np.float32)})
    backend.infer({"x": np.ones((1, 3, 4, 4), np.float32)})
    assert device.used_bytes <= used  # the dropped plans' arenas were freed


def _recurrent_step(path):
    """A step of a recurrent model as exported: samples [N, 4] whose first axis is symbolic, a
    state [2, N, 3] whose batch is its second axis, a fixed hidden [1, 1, 3], a scalar score."""
    f = onnx.TensorProto.FLOAT
    w = onnx.numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3) / 10, "w")
    nodes = [onnx.helper.make_node("MatMul", ["x", "w"], ["y"]),
             onnx.helper.make_node("Relu", ["state"], ["state_out"]),
             onnx.helper.make_node("Sigmoid", ["h"], ["h_out"]),
             onnx.helper.make_node("ReduceSum", ["x"], ["score"], keepdims=0)]
    graph = onnx.helper.make_graph(
        nodes, "recurrent_step",
        [onnx.helper.make_tensor_value_info("x", f, ["N", 4]),
         onnx.helper.make_tensor_value_info("state", f, [2, "N", 3]),
         onnx.helper.make_tensor_value_info("h", f, [1, 1, 3])],
        [onnx.helper.make_tensor_value_info("y", f, ["N", 3]),
         onnx.helper.make_tensor_value_info("state_out", f, [2, "N", 3]),
         onnx.helper.make_tensor_value_info("h_out", f, [1, 1, 3]),
         onnx.helper.make_tensor_value_info("score", f, [])], [w])
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)],
                                     ir_version=8), str(path))
    return path


@pytest.mark.parametrize("n", [1, 5])
def test_a_model_without_batching_runs_the_shapes_its_client_sends(tmp_path, n):
    # Without batching a symbolic first axis is not taken for a batch: a state that leads with
    # 2 and a hidden that leads with 1 keep their shapes, and a scalar output comes back whole.
    import onnxruntime

    path = _recurrent_step(tmp_path / "model.onnx")
    reference = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(n)
    feeds = {"x": rng.standard_normal((n, 4)), "state": rng.standard_normal((2, n, 3)),
             "h": rng.standard_normal((1, 1, 3))}
    feeds = {name: array.astype(np.float32) for name, array in feeds.items()}
    model = ServedModel("step", "1", CompilerBackend(path, SKU), ModelConfig())
    with TestClient(create_app(InferenceServer([model]))) as client:
        wait_ready(client)
        request = {"inputs": [{"name": name, "shape": list(a.shape), "datatype": "FP32",
                               "data": a.ravel().tolist()} for name, a in feeds.items()]}
        response = client.post("/v2/models/step/infer", json=request)
        assert response.status_code == 200, response.text
        outputs = {out["name"]: np.array(out["data"], np.float32).reshape(out["shape"])
                   for out in response.json()["outputs"]}
    for name, want in zip(["y", "state_out", "h_out", "score"], reference.run(None, feeds)):
        assert outputs[name].shape == want.shape, name
        np.testing.assert_allclose(outputs[name], want, rtol=1e-5, atol=1e-5)


def test_a_warm_up_at_a_guessed_length_may_fail_and_the_model_still_loads(tmp_path):
    # x of any length, reshaped to 4x4: its warm-up at length 1 cannot compile, its requests
    # of 16 run (before, the model failed to load).
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Reshape", ["x", "shape"], ["y"])], "sixteen",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["L"])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [4, 4])],
        [onnx.helper.make_tensor("shape", onnx.TensorProto.INT64, [2], [4, 4])])
    path = tmp_path / "model.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)],
                                     ir_version=8), str(path))
    backend = CompilerBackend(path, SKU)
    backend.load()
    x = np.arange(16, dtype=np.float32)
    np.testing.assert_array_equal(backend.infer({"x": x})["y"], x.reshape(4, 4))
    # a shape the client chose that the model cannot take is the client's mistake (was a 500)
    from npu_serving.errors import ServingError

    with pytest.raises(ServingError, match="cannot reshape") as error:
        backend.infer({"x": x[:3]})
    assert error.value.status == 400 and "does not run at input shapes x [3]" in str(error.value)


def tiny_device_sku(folder, memory="1 MiB"):
    import npu_driver
    from pathlib import Path

    text = (Path(npu_driver.__file__).parent / "skus" / "npu-edge.yaml").read_text()
    assert "device_memory_bytes: 512 MiB" in text
    path = folder / "npu-tiny.yaml"
    path.write_text(text.replace("name: npu-edge", "name: npu-tiny")
                    .replace("device_memory_bytes: 512 MiB", f"device_memory_bytes: {memory}"))
    return path


def test_a_shape_the_device_cannot_hold_is_400_before_it_runs(tmp_path, dense_path):
    # It ran and failed with OutOfDeviceMemory, answered 500 (and leaked its input's bytes).
    from npu_serving.backend import DeviceMemoryFull

    backend = CompilerBackend(dense_path, tiny_device_sku(tmp_path), batching=True)
    backend.prepare(1, [1])
    with pytest.raises(DeviceMemoryFull) as error:
        backend.execute({"x": np.zeros((100_000, 4), np.float32)})
    assert error.value.status == 400
    assert "batch 100000: the model needs" in str(error.value)
    assert "more than the 1048576 of npu-tiny" in str(error.value)
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(backend.execute({"x": x})[0]["y"], expected_output(x), rtol=1e-5)


def test_a_device_that_runs_out_of_memory_is_reset(dense_path):
    # An engine that runs out of memory keeps what it allocated of that run: each such request
    # leaked its input's bytes on the instance's device until every request there failed.
    from npu_driver import OutOfDeviceMemory

    from npu_serving.backend import DeviceMemoryFull

    backend = CompilerBackend(dense_path, SKU, batching=True)
    backend.prepare(1, [1, 2])
    engines = dict(backend._engines)

    class Full:
        def run(self, inputs):
            raise OutOfDeviceMemory("device out of memory on npu-edge: needed 9 bytes, 1 free of 8")

    first = next(iter(engines))
    backend._engines[first] = Full()
    with pytest.raises(DeviceMemoryFull) as error:
        backend.execute({"x": np.zeros((1, 4), np.float32)})
    assert error.value.status == 503 and "needed 9 bytes" in str(error.value)
    assert not backend._engines and not backend._devices  # all of the instance's, and its device
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(backend.execute({"x": x})[0]["y"], expected_output(x), rtol=1e-5)
