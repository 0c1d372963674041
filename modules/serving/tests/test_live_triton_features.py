"""What Triton users rely on, against a real `python -m npu_serving` process driven by an
unchanged `tritonclient.http`: model configuration, statistics, the repository extension,
scheduling (a full queue, timeouts, priorities, two instances), the metrics, and the
request limits and repository boundaries.

Executions are slow on purpose and predictable: the server paces each execution to its
simulated device time (--pace-device-time) on a SKU file with a 1 MHz clock, where the dense
model takes ~0.1 s whatever the host's load.
"""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

import npu_driver
from serving_helpers import build_dense_relu, expected_output
from test_live_server import DIRECT, free_loopback_port, wait_until_ready

SLOW_CONFIG = """
max_batch_size: 4
input [{ name: "x", data_type: TYPE_FP32, dims: [4] }]
output [{ name: "y", data_type: TYPE_FP32, dims: [3], label_filename: "labels.txt" }]
dynamic_batching {
  max_queue_delay_microseconds: 0
  priority_levels: 2
  default_priority_level: 2
  default_queue_policy { max_queue_size: 2, allow_timeout_override: true }
}
instance_group [{ count: 2, kind: KIND_CPU }]
"""

LABELS = ("cat", "dog", "bird")


def slow_sku(folder: Path) -> Path:
    """npu-edge with a 1 MHz clock: the dense model's execution takes ~0.1 s when paced."""
    text = (Path(npu_driver.__file__).parent / "skus" / "npu-edge.yaml").read_text()
    path = folder / "npu-slow.yaml"
    path.write_text(text.replace("name: npu-edge", "name: npu-slow")
                    .replace("clock_ghz: 0.8", "clock_ghz: 0.000001"))
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("live")
    repository = root / "repository"
    (repository / "slow" / "1").mkdir(parents=True)
    onnx.save(build_dense_relu(), str(repository / "slow" / "1" / "model.onnx"))
    (repository / "slow" / "config.pbtxt").write_text(SLOW_CONFIG)
    (repository / "slow" / "labels.txt").write_text("\n".join(LABELS) + "\n")
    (repository / "broken").mkdir()
    onnx.save(build_dense_relu(), str(repository / "broken" / "model.onnx"))
    (repository / "broken" / "config.pbtxt").write_text("max_batch_size: 4\nmax_batch: 2\n")
    outside = root / "outside"
    outside.mkdir()
    onnx.save(build_dense_relu(), str(outside / "model.onnx"))
    (repository / "escape").symlink_to(outside)
    port = free_loopback_port()
    log = (root / "server.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "npu_serving", "--model-repository", str(repository),
         "--sku", str(slow_sku(root)), "--port", str(port), "--log-level", "warning",
         "--model-control-mode", "explicit", "--load-model", "slow", "--pace-device-time",
         "--max-request-bytes", str(1 << 20)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"127.0.0.1:{port}"
    try:
        wait_until_ready(f"http://{url}", process, log)
        yield url, log
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def client(server):
    client = httpclient.InferenceServerClient(server[0], concurrency=16, connection_timeout=10,
                                              network_timeout=30)
    yield client
    client.close()


def batch_input(value: float, batch: int = 4):
    x = np.full((batch, 4), value, np.float32)
    tensor = httpclient.InferInput("x", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    return x, tensor


def scrape(url: str) -> str:
    with DIRECT.open(f"http://{url}/metrics", timeout=10) as response:
        return response.read().decode()


def metric(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_config_is_triton_json(client):
    config = client.get_model_config("slow")
    assert config["name"] == "slow" and config["max_batch_size"] == 4
    assert config["input"][0]["dims"] == [4] and config["input"][0]["data_type"] == "TYPE_FP32"
    policy = config["dynamic_batching"]["default_queue_policy"]
    assert policy["max_queue_size"] == 2 and policy["timeout_action"] == "REJECT"
    assert config["dynamic_batching"]["priority_levels"] == 2
    assert config["instance_group"][0]["count"] == 2
    metadata = client.get_server_metadata()
    for extension in ("model_configuration", "statistics", "model_repository"):
        assert extension in metadata["extensions"]


def test_two_instances_serve_and_responses_carry_the_device(client):
    # Which instance runs a batch does not depend on timing (a free instance waits its turn to
    # form the next batch), so two requests sent together run on instances 0 and 1. That they
    # execute at the same moment is shown without timing in test_scheduling.py.
    pending = [client.async_infer("slow", [batch_input(i)[1]]) for i in range(2)]
    results = [request.get_result() for request in pending]
    parameters = [result.get_response()["parameters"] for result in results]
    assert sorted(p["instance"] for p in parameters) == [0, 1]
    assert all(p["batch_size"] == 4 and p["simulated_device_time_us"] > 50_000
               for p in parameters)
    for i, result in enumerate(results):
        np.testing.assert_allclose(result.as_numpy("y"), expected_output(np.full((4, 4), i,
                                   np.float32)), rtol=1e-4, atol=1e-5)


def test_full_queue_answers_503_and_metrics_agree(server, client):
    url = server[0]
    before = client.get_inference_statistics("slow")["model_stats"][0]
    rejected_before = metric(scrape(url), "nv_inference_request_failure_total", model="slow",
                             reason="REJECTED")
    pending = [client.async_infer("slow", [batch_input(i)[1]]) for i in range(8)]
    outcomes = []
    for request in pending:
        try:
            request.get_result()
            outcomes.append("ok")
        except InferenceServerException as exc:
            assert exc.status() == "503" and "maximum queue size" in exc.message(), exc
            outcomes.append("rejected")
    # 2 executing and 2 waiting at most at any time: of 8 sent at once, some are refused.
    assert 0 < outcomes.count("rejected") <= 4
    after = client.get_inference_statistics("slow")["model_stats"][0]
    done = outcomes.count("ok")
    assert after["inference_stats"]["success"]["count"] - \
        before["inference_stats"]["success"]["count"] == done
    assert after["inference_count"] - before["inference_count"] == 4 * done
    text = scrape(url)
    assert metric(text, "nv_inference_request_failure_total", model="slow",
                  reason="REJECTED") - rejected_before == outcomes.count("rejected")
    assert metric(text, "nv_inference_request_success_total", model="slow") == \
        after["inference_stats"]["success"]["count"]
    assert metric(text, "nv_inference_count_total", model="slow") == after["inference_count"]
    assert metric(text, "nv_inference_exec_count_total", model="slow") == \
        after["execution_count"]
    assert metric(text, "nv_inference_pending_request_count", model="slow") == 0
    assert metric(text, "npu_device_busy_us_total", sku="npu-slow") > 0
    assert metric(text, "npu_device_memory_total_bytes", sku="npu-slow") == 2 * 512 * 2 ** 20
    assert "nv_inference_queue_duration_us_total" in text
    assert "nv_inference_compute_infer_summary_us_count" in text


def test_timed_out_request_is_never_executed(client):
    before = client.get_inference_statistics("slow")["model_stats"][0]
    busy = [client.async_infer("slow", [batch_input(i)[1]]) for i in range(2)]
    time.sleep(0.02)  # both instances are executing now
    late = client.async_infer("slow", [batch_input(9)[1]], timeout=20_000)
    with pytest.raises(InferenceServerException, match="timeout"):
        late.get_result()
    for request in busy:
        request.get_result()
    time.sleep(0.3)  # anything (wrongly) executed after the rejection would be counted by now
    after = client.get_inference_statistics("slow")["model_stats"][0]
    assert after["inference_count"] - before["inference_count"] == 8
    assert after["execution_count"] - before["execution_count"] == 2
    assert after["inference_stats"]["fail"]["count"] - \
        before["inference_stats"]["fail"]["count"] == 1


def test_priority_parameter_is_accepted_and_checked(client):
    # The order priorities leave the queue in is tested without timing in test_scheduling.py.
    result = client.infer("slow", [batch_input(1)[1]], priority=1)
    np.testing.assert_allclose(result.as_numpy("y"), expected_output(np.full((4, 4), 1,
                               np.float32)), rtol=1e-4, atol=1e-5)
    with pytest.raises(InferenceServerException, match="priority 3 is out of range"):
        client.infer("slow", [batch_input(1)[1]], priority=3)


def test_statistics_shape(client):
    client.infer("slow", [batch_input(0, batch=1)[1]])
    everything = client.get_inference_statistics()
    assert [s["name"] for s in everything["model_stats"]] == ["slow"]
    stats = client.get_inference_statistics("slow", "1")["model_stats"][0]
    assert stats["version"] == "1" and stats["last_inference"] > 0
    for phase in ("success", "fail", "queue", "compute_input", "compute_infer",
                  "compute_output"):
        assert set(stats["inference_stats"][phase]) == {"count", "ns"}
    sizes = {entry["batch_size"]: entry for entry in stats["batch_stats"]}
    assert 1 in sizes and sizes[1]["compute_infer"]["count"] >= 1
    assert stats["inference_stats"]["compute_infer"]["ns"] > 0


def test_repository_index_load_unload(server, client):
    index = {row["name"]: row for row in client.get_model_repository_index()}
    assert index["slow"]["state"] == "READY"
    assert index["broken"]["state"] == "UNAVAILABLE"
    with pytest.raises(InferenceServerException) as error:
        client.load_model("broken")
    assert re.search(r"broken/config\.pbtxt: .*no field named \"max_batch\"", error.value.message())
    assert "\n" not in error.value.message()
    index = {row["name"]: row for row in client.get_model_repository_index()}
    assert "max_batch" in index["broken"]["reason"]
    client.unload_model("broken")
    with pytest.raises(InferenceServerException, match="outside"):
        client.load_model("escape")  # a symlink out of the repository
    client.unload_model("escape")
    client.unload_model("slow")
    assert not client.is_model_ready("slow")
    assert client.is_server_ready()
    client.load_model("slow")
    assert client.is_model_ready("slow")
    assert client.infer("slow", [batch_input(2)[1]]).get_response()["model_version"] == "1"


def raw_request(url: str, method: str, path: str, headers: dict, body: bytes = b""):
    host, port = url.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for key, value in headers.items():
            connection.putheader(key, value)
        connection.endheaders()
        if body:
            connection.send(body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_200_mb_body_is_refused_unread(server):
    started = time.monotonic()
    # Only the headers and the first kilobyte are sent: the answer comes without the rest.
    status, body = raw_request(server[0], "POST", "/v2/models/slow/infer",
                               {"Content-Length": str(200 * 2 ** 20),
                                "Content-Type": "application/json"}, b"{" * 1024)
    assert status == 413 and b"exceeds the limit" in body
    assert time.monotonic() - started < 5


def test_dot_dot_model_names_are_refused(server):
    # The last: a name longer than a folder name can be (schemathesis found it answered 500).
    too_long = "%CC%BA" * 130 + "x"
    for path in ("/v2/repository/models/../load", "/v2/repository/models/..%2F..%2Fetc/load",
                 f"/v2/repository/models/{too_long}/load",
                 f"/v2/repository/models/{too_long}/unload"):
        status, body = raw_request(server[0], "POST", path, {"Content-Length": "0"})
        assert status in (400, 404), (path, status, body)
    status, _ = raw_request(server[0], "GET", "/v2/models/../config", {})
    assert status in (400, 404)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_classification_extension_returns_the_top_classes_with_labels(client, binary):
    # Triton's image_client asks for `class_count`: "value:index:label" strings, best first.
    x, tensor = batch_input(0.0, batch=2)
    x[1] = [1.0, -2.0, 0.5, 3.0]
    tensor.set_data_from_numpy(x)
    wanted = httpclient.InferRequestedOutput("y", binary_data=binary, class_count=2)
    result = client.infer("slow", [tensor], outputs=[wanted])
    classes = result.as_numpy("y")
    assert classes.shape == (2, 2)
    y = expected_output(x)
    for row in range(2):
        best = np.argsort(-y[row], kind="stable")[:2]
        assert [c.decode() if isinstance(c, bytes) else c for c in classes[row]] == [
            f"{y[row, i]:f}:{i}:{LABELS[i]}" for i in best]
    assert "classification" in client.get_server_metadata()["extensions"]
