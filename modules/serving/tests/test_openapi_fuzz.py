"""A real server process fuzzed from its own OpenAPI description (schemathesis): whatever a
generated request holds, the answer is never a 5xx. Bounded: few examples per operation."""

from __future__ import annotations

import subprocess
import sys

import hypothesis
import onnx
import pytest
import schemathesis

from serving_helpers import build_dense_relu
from test_live_server import free_loopback_port, wait_until_ready


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    repository = tmp_path_factory.mktemp("fuzz")
    for name, config in (("dense", "max_batch_size: 4\n"), ("fixed", "")):
        (repository / name).mkdir()
        onnx.save(build_dense_relu(batch="N" if config else 1),
                  str(repository / name / "model.onnx"))
        (repository / name / "config.yaml").write_text(config or "{}\n")
    port = free_loopback_port()
    log = (repository / "server.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "npu_serving", "--model-repository", str(repository),
         "--sku", "npu-edge", "--port", str(port), "--log-level", "warning",
         "--model-control-mode", "explicit", "--load-model", "*"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process, log)
        yield schemathesis.openapi.from_url(f"{url}/openapi.json")
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_no_server_errors(api):
    # Each operation's strategy driven by hypothesis directly (schemathesis's pytest plugin
    # predates the pytest this project pins).
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) > 15
    failures = []
    for operation in operations:
        @hypothesis.given(operation.as_strategy())
        @hypothesis.settings(max_examples=12, deadline=None, database=None,
                             suppress_health_check=list(hypothesis.HealthCheck))
        def fuzz(case):
            response = case.call(timeout=10)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: "
                                f"{response.status_code} {response.text[:200]}")

        fuzz()
    assert not failures, "\n".join(failures[:10])
