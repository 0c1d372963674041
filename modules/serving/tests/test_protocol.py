"""The KServe v2 protocol in-process: health, metadata, JSON and binary inference, errors."""

from __future__ import annotations

import gzip
import json
import threading
import time

import numpy as np
import pytest
import tritonclient.http as httpclient

from npu_serving import ModelConfig

from serving_helpers import (
    AllTypesBackend, DenseReluBackend, FailingBackend, expected_output, served, wait_loaded,
    wait_ready,
)

X = np.arange(8, dtype=np.float32).reshape(2, 4) / 4 - 1


def triton_request(inputs, outputs=None, **kwargs):
    """Body and headers exactly as tritonclient.http sends them."""
    body, json_size = httpclient.InferenceServerClient.generate_request_body(inputs, outputs, **kwargs)
    headers = {} if json_size is None else {"Inference-Header-Content-Length": str(json_size)}
    return body, headers


def triton_result(response):
    assert response.status_code == 200, response.text
    return httpclient.InferenceServerClient.parse_response_body(
        response.content, header_length=response.headers.get("Inference-Header-Content-Length")
    )


def infer_input(name, array, datatype, binary):
    tensor = httpclient.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


def test_liveness_readiness_and_server_metadata(make_client):
    client = make_client(served())
    assert client.get("/v2/health/live").status_code == 200
    wait_ready(client)
    metadata = client.get("/v2").json()
    assert metadata["name"] == "npu-serving"
    assert "binary_tensor_data" in metadata["extensions"]
    assert isinstance(metadata["version"], str)


def test_model_metadata_with_and_without_version(make_client):
    client = make_client(served(version="3"))
    expected = {
        "name": "dense",
        "versions": ["3"],
        "platform": "npu",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 3]}],
    }
    assert client.get("/v2/models/dense").json() == expected
    assert client.get("/v2/models/dense/versions/3").json() == expected
    missing = client.get("/v2/models/dense/versions/2")
    assert missing.status_code == 404
    assert "no version '2'" in missing.json()["error"]


def test_unknown_model_is_404_with_error_body(make_client):
    client = make_client(served())
    for path in ("/v2/models/nope", "/v2/models/nope/ready"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json() == {"error": "unknown model 'nope': serving dense"}
    assert client.post("/v2/models/nope/infer", json={}).status_code == 404
    assert "error" in client.get("/v2/no/such/route").json()


def test_readiness_is_503_while_loading_then_200(make_client):
    release = threading.Event()
    client = make_client(served(backend=DenseReluBackend(release=release)))
    assert client.get("/v2/health/live").status_code == 200
    not_ready = client.get("/v2/health/ready")
    assert not_ready.status_code == 503
    assert "dense (loading)" in not_ready.json()["error"]
    assert client.get("/v2/models/dense/ready").status_code == 503
    refused = client.post("/v2/models/dense/infer", json={"inputs": []})
    assert refused.status_code == 503 and "loading" in refused.json()["error"]
    release.set()
    wait_ready(client)
    assert client.get("/v2/models/dense/ready").json() == {"name": "dense", "ready": True}


def test_failed_model_keeps_server_unready_and_names_the_cause(make_client):
    broken = served("broken", FailingBackend())
    client = make_client(served(), broken)
    wait_ready(client, "/v2/models/dense/ready")
    wait_loaded(broken)
    assert client.get("/v2/health/live").status_code == 200
    response = client.get("/v2/health/ready")
    assert response.status_code == 503
    assert "broken (failed)" in response.json()["error"]
    model = client.get("/v2/models/broken/ready")
    assert model.status_code == 503
    assert "plan does not fit device memory" in model.json()["error"]


def test_json_inference(make_client):
    client = make_client(served())
    wait_ready(client)
    request = {
        "id": "r-1",
        "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": X.tolist()}],
    }
    response = client.post("/v2/models/dense/infer", json=request)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["id"] == "r-1" and body["model_name"] == "dense" and body["model_version"] == "1"
    (output,) = body["outputs"]
    assert output["name"] == "y" and output["datatype"] == "FP32" and output["shape"] == [2, 3]
    np.testing.assert_allclose(np.array(output["data"]).reshape(2, 3), expected_output(X), rtol=1e-6)


@pytest.mark.parametrize("binary_in", [True, False])
@pytest.mark.parametrize("binary_out", [True, False])
def test_tritonclient_request_and_response_bodies(make_client, binary_in, binary_out):
    client = make_client(served())
    wait_ready(client)
    outputs = [httpclient.InferRequestedOutput("y", binary_data=binary_out)]
    body, headers = triton_request([infer_input("x", X, "FP32", binary_in)], outputs)
    response = client.post("/v2/models/dense/versions/1/infer", content=body, headers=headers)
    assert ("Inference-Header-Content-Length" in response.headers) == binary_out
    np.testing.assert_allclose(triton_result(response).as_numpy("y"), expected_output(X), rtol=1e-6)


def test_no_outputs_listed_means_all_outputs_in_binary(make_client):
    client = make_client(served())
    wait_ready(client)
    body, headers = triton_request([infer_input("x", X, "FP32", True)])
    response = client.post("/v2/models/dense/infer", content=body, headers=headers)
    header = json.loads(response.content[: int(response.headers["Inference-Header-Content-Length"])])
    assert header["outputs"][0]["parameters"] == {"binary_data_size": 2 * 3 * 4}
    assert response.headers["content-type"] == "application/octet-stream"
    np.testing.assert_allclose(triton_result(response).as_numpy("y"), expected_output(X), rtol=1e-6)


def test_gzip_request_body(make_client):
    client = make_client(served())
    wait_ready(client)
    body, headers = triton_request([infer_input("x", X, "FP32", True)])
    response = client.post(
        "/v2/models/dense/infer",
        content=gzip.compress(body),
        headers={**headers, "Content-Encoding": "gzip"},
    )
    np.testing.assert_allclose(triton_result(response).as_numpy("y"), expected_output(X), rtol=1e-6)


@pytest.mark.parametrize("binary", [True, False])
def test_every_datatype_round_trips(make_client, binary):
    client = make_client(served("echo", AllTypesBackend()))
    wait_ready(client)
    arrays = {
        "BOOL": np.array([True, False, True]),
        "UINT8": np.array([0, 7, 255], dtype=np.uint8),
        "INT8": np.array([-128, 0, 127], dtype=np.int8),
        "INT32": np.array([-(2**31), 0, 2**31 - 1], dtype=np.int32),
        "INT64": np.array([-(2**62), 1, 2**62], dtype=np.int64),
        "FP16": np.array([0.5, -2.0, 65504], dtype=np.float16),
        "FP32": np.array([1.5, -0.25, 3e38], dtype=np.float32),
        "FP64": np.array([1e-300, 2.0, -3.5]),
        "BYTES": np.array([b"npu", b"", "\u00e9t\u00e9".encode()], dtype=np.object_),
    }
    inputs = [infer_input(f"in_{t}", a, t, binary) for t, a in arrays.items()]
    outputs = [httpclient.InferRequestedOutput(f"out_{t}", binary_data=binary) for t in arrays]
    body, headers = triton_request(inputs, outputs)
    result = triton_result(client.post("/v2/models/echo/infer", content=body, headers=headers))
    for datatype, array in arrays.items():
        got = result.as_numpy(f"out_{datatype}")
        assert result.get_output(f"out_{datatype}")["datatype"] == datatype
        if datatype == "BYTES":
            assert [bytes(item) if not isinstance(item, str) else item.encode() for item in got] == list(array)
        else:
            assert got.dtype == array.dtype
            np.testing.assert_array_equal(got, array)


def post_json(client, inputs, **extra):
    return client.post("/v2/models/dense/infer", json={"inputs": inputs, **extra})


@pytest.mark.parametrize(
    ("inputs", "extra", "message"),
    [
        ([], {}, "'inputs' must be a non-empty list"),
        ([{"name": "z", "shape": [1, 4], "datatype": "FP32", "data": [0] * 4}], {},
         "unexpected input 'z' for model 'dense': expected x"),
        ([{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [0] * 4}], {},
         "input 'x': datatype FP64, but model 'dense' expects FP32"),
        ([{"name": "x", "shape": [1, 5], "datatype": "FP32", "data": [0] * 5}], {},
         "input 'x': shape [1, 5], but model 'dense' expects [-1, 4]"),
        ([{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [0] * 3}], {},
         "input 'x': 3 elements of data, expected 4 for shape [1, 4]"),
        ([{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": ["a"] * 4}], {},
         "input 'x': FP32 data must be numbers, got 'a'"),
        ([{"name": "x", "shape": [1, 4], "datatype": "FP99", "data": [0] * 4}], {},
         "unknown datatype 'FP99'"),
        ([{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [0] * 4}],
         {"outputs": [{"name": "q"}]}, "unknown output 'q' for model 'dense': expected y"),
        ([{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [0] * 4}],
         {"outputs": [{"name": "y", "parameters": {"shared_memory_region": "r"}}]},
         "parameter 'shared_memory_region' is not supported"),
        ([{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [0] * 4}],
         {"outputs": [{"name": "y", "parameters": {"classification": -2}}]},
         "output 'y': classification: expected a non-negative count of classes, got -2"),
        ([{"name": "x", "shape": [1, 4], "datatype": "FP32"}], {},
         "input 'x': has neither 'data' nor binary_data_size"),
    ],
)
def test_bad_requests_are_400_naming_the_problem(make_client, inputs, extra, message):
    client = make_client(served())
    wait_ready(client)
    response = post_json(client, inputs, **extra)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_missing_input_is_named(make_client):
    backend = DenseReluBackend()
    backend.inputs = backend.inputs + [type(backend.inputs[0])("mask", "BOOL", (-1,))]
    client = make_client(served(backend=backend))
    wait_ready(client)
    response = post_json(client, [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [0] * 4}])
    assert response.status_code == 400
    assert response.json() == {"error": "missing input 'mask' for model 'dense'"}


def test_binary_framing_errors(make_client):
    client = make_client(served())
    wait_ready(client)
    header = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                     "parameters": {"binary_data_size": 16}}]}).encode()
    cases = [
        (header + bytes(8), str(len(header)), "binary_data_size 16 overruns the 8 bytes"),
        (header + bytes(20), str(len(header)), "4 bytes of binary data follow"),
        (header + bytes(16), "many", "Inference-Header-Content-Length: expected an integer"),
        (header[:-1] + bytes(17), str(len(header) - 1), "not valid JSON"),
    ]
    for body, length, message in cases:
        response = client.post(
            "/v2/models/dense/infer", content=body,
            headers={"Inference-Header-Content-Length": length},
        )
        assert response.status_code == 400, message
        assert message in response.json()["error"]


def test_batch_size_is_checked_against_max_batch_size(make_client):
    client = make_client(served(config=ModelConfig(max_batch_size=2, dynamic_batching=False)))
    wait_ready(client)
    ok = post_json(client, [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [0] * 8}])
    assert ok.status_code == 200
    too_big = post_json(client, [{"name": "x", "shape": [3, 4], "datatype": "FP32", "data": [0] * 12}])
    assert too_big.status_code == 400
    assert "batch size 3 is out of range for model 'dense': expected 1 to max_batch_size 2" in (
        too_big.json()["error"]
    )


def test_backend_crash_is_500_with_message(make_client):
    backend = DenseReluBackend()
    backend.infer = lambda inputs: 1 / 0
    client = make_client(served(backend=backend))
    wait_ready(client)
    response = post_json(client, [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [0] * 4}])
    assert response.status_code == 500
    assert response.json() == {
        "error": "inference on model 'dense' failed: ZeroDivisionError: division by zero"
    }


def test_stop_iteration_from_a_backend_fails_the_request_and_the_load(make_client):
    # asyncio cannot set a StopIteration on a future: the load and the request hung forever.
    def stray_next(*args):
        return next(iter(()))

    backend, broken = DenseReluBackend(), DenseReluBackend()
    backend.infer = stray_next
    broken.load = stray_next
    client = make_client(served(backend=backend), served("broken", broken))
    wait_ready(client, "/v2/models/dense/ready")
    model = client.get("/v2/models/broken/ready")
    deadline = time.monotonic() + 60  # a limit only: loading fails at once
    while "loading" in model.text and time.monotonic() < deadline:
        model = client.get("/v2/models/broken/ready")
    assert model.status_code == 503 and "StopIteration" in model.json()["error"], model.text
    response = post_json(client, [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [0] * 4}])
    assert response.status_code == 500 and "StopIteration" in response.json()["error"]


def test_head_is_get_without_the_body_and_405_names_the_methods(make_client):
    client = make_client(served())
    wait_ready(client)
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/dense", "/metrics"):
        head, get = client.head(path), client.get(path)
        assert head.status_code == get.status_code == 200, (path, head.status_code)
        assert head.content == b"" and head.headers["content-length"] == str(len(get.content))
    assert client.head("/v2/models/nope").status_code == 404
    for method in ("HEAD", "PUT", "DELETE"):
        response = client.request(method, "/v2/models/dense/infer")
        assert response.status_code == 405 and response.headers["allow"] == "POST"


def test_an_empty_outputs_list_means_all_outputs(make_client):
    # As Triton: no output requested, all are returned; [] answered none.
    client = make_client(served())
    wait_ready(client)
    response = client.post("/v2/models/dense/infer", json={
        "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}],
        "outputs": []})
    assert response.status_code == 200, response.text
    assert [output["name"] for output in response.json()["outputs"]] == ["y"]


def test_large_bodies_are_parsed_off_the_event_loop(make_client, monkeypatch):
    # A 64 MB JSON body was parsed on the event loop: liveness and every other request waited
    # 5.6 s for it.
    from npu_serving import server as server_module

    threads = []
    parse = server_module.protocol.parse_infer_request

    def recording(*args):
        threads.append(threading.current_thread().name)
        return parse(*args)

    monkeypatch.setattr(server_module.protocol, "parse_infer_request", recording)
    monkeypatch.setattr(server_module, "PARSE_OFF_LOOP_BYTES", 200)
    client = make_client(served())
    wait_ready(client)
    for batch in (1, 64):
        response = client.post("/v2/models/dense/infer", json={"inputs": [
            {"name": "x", "shape": [batch, 4], "datatype": "FP32", "data": [0.5] * 4 * batch}]})
        assert response.status_code == 200, response.text
    on_loop, off_loop = threads
    assert on_loop != off_loop and off_loop.startswith("asyncio")
