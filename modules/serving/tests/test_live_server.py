"""A real server: `python -m npu_serving` in a subprocess on a free loopback port, driven by an
unchanged `tritonclient.http` client, serving a model compiled by npu_compiler."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import onnx
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from serving_helpers import build_dense_relu, expected_output

SKU = "npu-edge"
STARTUP_LIMIT_S = 60


# Straight to the loopback, whatever proxy the environment names.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    repository = tmp_path_factory.mktemp("repository")
    (repository / "dense" / "2").mkdir(parents=True)
    onnx.save(build_dense_relu(), str(repository / "dense" / "2" / "model.onnx"))
    (repository / "dense" / "config.yaml").write_text(
        "max_batch_size: 4\ndynamic_batching:\n  max_queue_delay_microseconds: 1000\n"
    )
    port = free_loopback_port()
    log = (repository / "server.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "npu_serving", "--model-repository", str(repository),
         "--sku", SKU, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    client = httpclient.InferenceServerClient(f"127.0.0.1:{port}", connection_timeout=5)
    client.base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(client.base_url, process, log)
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)
        log.close()


def wait_until_ready(url: str, process, log) -> None:
    """Polls readiness; gives up at once if the server exits or a model fails to load."""
    deadline = time.monotonic() + STARTUP_LIMIT_S
    problem = "no answer"
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with DIRECT.open(url + "/v2/health/ready", timeout=5):
                return
        except urllib.error.HTTPError as answer:  # 503 while loading
            problem = json.loads(answer.read())["error"]
            if "(failed)" in problem:
                break
        except OSError:
            pass  # not listening yet
        time.sleep(0.1)
    log.seek(0)
    raise AssertionError(f"server not ready ({problem}; exit code {process.poll()}):\n{log.read()}")


def test_health_and_metadata(live_server):
    assert live_server.is_server_live()
    assert live_server.is_server_ready()
    assert live_server.is_model_ready("dense")
    assert live_server.is_model_ready("dense", "2")
    assert not live_server.is_model_ready("dense", "1")
    assert "binary_tensor_data" in live_server.get_server_metadata()["extensions"]
    metadata = live_server.get_model_metadata("dense")
    assert metadata["versions"] == ["2"]
    assert metadata["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
    assert metadata["outputs"] == [{"name": "y", "datatype": "FP32", "shape": [-1, 3]}]


@pytest.mark.parametrize("binary", [True, False])
def test_infer_matches_numpy(live_server, binary):
    x = np.random.default_rng(3).standard_normal((3, 4)).astype(np.float32)
    tensor = httpclient.InferInput("x", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=binary)
    outputs = [httpclient.InferRequestedOutput("y", binary_data=binary)]
    result = live_server.infer("dense", [tensor], outputs=outputs, request_id="live-1")
    assert result.get_response()["id"] == "live-1"
    np.testing.assert_allclose(result.as_numpy("y"), expected_output(x), rtol=1e-4, atol=1e-5)


def test_errors_reach_the_client(live_server):
    x = np.zeros((5, 4), np.float32)
    tensor = httpclient.InferInput("x", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    with pytest.raises(InferenceServerException, match="batch size 5 is out of range"):
        live_server.infer("dense", [tensor])
    with pytest.raises(InferenceServerException, match="unknown model 'nope'"):
        live_server.get_model_metadata("nope")


def test_concurrent_requests_and_metrics(live_server):
    xs = [np.full((1, 4), i / 3, dtype=np.float32) for i in range(4)]
    pending = []
    for x in xs:
        tensor = httpclient.InferInput("x", [1, 4], "FP32")
        tensor.set_data_from_numpy(x)
        pending.append(live_server.async_infer("dense", [tensor]))
    for x, request in zip(xs, pending):
        np.testing.assert_allclose(
            request.get_result().as_numpy("y"), expected_output(x), rtol=1e-4, atol=1e-5
        )
    with DIRECT.open(live_server.base_url + "/metrics", timeout=5) as response:
        metrics = response.read().decode()
    assert 'npu_serving_inference_requests_total{model="dense",outcome="success",version="2"}' in metrics
    assert 'npu_serving_batch_size_bucket{le="4.0",model="dense",version="2"}' in metrics
