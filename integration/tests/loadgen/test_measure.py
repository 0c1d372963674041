"""The load generator against a real `python -m npu_serving` process (a subprocess of this
environment's stack; the harness imports none of it): concurrency and request-rate loads,
windows until stable, the server's breakdown, perf_analyzer's CSV, and `stackci serve-bench`."""

from __future__ import annotations

import csv
import io
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from stackci.cli import main
from stackci.commands.serve import parse_range
from stackci.errors import UsageError
from stackci.loadgen import Settings, csv_text, measure_concurrency, measure_rate
from stackci.loadgen.measure import Measurement, _stable
from stackci.stack.server import ServerProcess

PERF_ANALYZER_COLUMNS = (
    "Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,"
    "Server Compute Input,Server Compute Infer,Server Compute Output,Client Recv,p50 latency,"
    "p90 latency,p95 latency,p99 latency,Avg latency,request/response,response wait")


def dense_model() -> onnx.ModelProto:
    w = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel())])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    root = tmp_path_factory.mktemp("repository")
    (root / "dense" / "1").mkdir(parents=True)
    onnx.save(dense_model(), str(root / "dense" / "1" / "model.onnx"))
    (root / "dense" / "config.pbtxt").write_text(
        "max_batch_size: 8\ndynamic_batching { max_queue_delay_microseconds: 500 }\n")
    (root / "sixteen" / "1").mkdir(parents=True)
    onnx.save(sixteen_model(), str(root / "sixteen" / "1" / "model.onnx"))
    return root


def sixteen_model() -> onnx.ModelProto:
    """x of any length, reshaped to 4x4: a request of another length than 16 fails on the
    server (its plan does not compile)."""
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])], "sixteen",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["L"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 4])],
        [helper.make_tensor("shape", TensorProto.INT64, [2], [4, 4])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def server(repository):
    with ServerProcess(sys.executable, repository, "npu-edge") as running:
        yield running


def test_concurrency_load_is_measured_until_stable(server):
    settings = Settings(server.url, "dense", window_s=0.4, stability_percentage=50,
                        max_trials=6)
    seen = []
    m = measure_concurrency(settings, 4, progress=lambda window, n: seen.append(n))
    assert m.errors == 0 and m.requests > 0 and m.throughput > 0
    assert seen == list(range(1, m.windows + 1)) and m.windows >= 3
    assert m.p50_us <= m.p90_us <= m.p95_us <= m.p99_us
    assert m.server_compute_infer_us > 0 and m.avg_batch >= 1
    assert 0 < m.server_queue_us + m.server_compute_infer_us < m.avg_us


@pytest.mark.parametrize("distribution", ["constant", "poisson"])
def test_request_rate_load(server, distribution):
    settings = Settings(server.url, "dense", window_s=0.5, stability_percentage=60,
                        max_trials=5, max_threads=8, distribution=distribution)
    m = measure_rate(settings, 40, None)
    assert m.errors == 0
    assert 20 < m.throughput < 60  # about the 40 requests per second asked for


def test_csv_has_perf_analyzers_columns():
    m = Measurement("concurrency", 4, 1, throughput=120.5, requests=10, p50_us=1000,
                    p90_us=2000, p95_us=2500, p99_us=3000, avg_us=1500, server_queue_us=200,
                    server_compute_infer_us=800)
    text = csv_text([m])
    assert text.splitlines()[0] == PERF_ANALYZER_COLUMNS
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["Concurrency"] == "4" and row["Inferences/Second"] == "120.5"
    assert row["p99 latency"] == "3000" and row["Network+Server Send/Recv"] == "500"
    rate = csv_text([Measurement("request_rate", 12.5, 1)])
    assert rate.startswith("Request Rate,Inferences/Second")


def test_stability_is_perf_analyzers_criterion():
    settings = Settings("unused", "m", stability_percentage=10)

    def windows(*pairs):
        return [Measurement("concurrency", 1, 1, throughput=t, avg_us=a, requests=5)
                for t, a in pairs]

    assert _stable(windows((100, 10), (105, 10.5), (98, 9.8)), settings)
    assert not _stable(windows((100, 10), (130, 10), (98, 10)), settings)  # throughput moved
    assert not _stable(windows((100, 10), (100, 14), (100, 10)), settings)  # latency moved
    assert not _stable(windows((100, 10), (100, 10)), settings)  # fewer than 3 windows


def test_ranges():
    assert parse_range("1:16:5", "--concurrency-range") == [1, 6, 11, 16]
    assert parse_range("1,4,16", "--concurrency-range") == [1, 4, 16]
    assert parse_range("2.5", "--request-rate-range", float) == [2.5]
    for bad in ("0", "4:1", "a:b", "1:4:0"):
        with pytest.raises(UsageError):
            parse_range(bad, "--concurrency-range")


def test_serve_bench_command(repository, tmp_path, capsys):
    target = tmp_path / "out.csv"
    code = main(["serve-bench", "--model", "dense", "--model-repository", str(repository),
                 "--python", sys.executable, "--concurrency-range", "1,2",
                 "--measurement-interval", "300", "--stability-percentage", "80",
                 "--max-trials", "4", "-f", str(target)])
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [row["Concurrency"] for row in rows] == ["1", "2"]
    assert "dense (batch 1)" in capsys.readouterr().out


def test_serve_bench_bad_usage_is_one_line(capsys):
    assert main(["serve-bench", "--model", "m"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stackci: error: give either --model-repository") and \
        err.count("\n") == 1


def test_serve_bench_sends_the_shape_given_and_says_why_requests_fail(repository, capsys):
    common = ["serve-bench", "--model", "sixteen", "--model-repository", str(repository),
              "--python", sys.executable, "--measurement-interval", "300",
              "--stability-percentage", "80", "--max-trials", "4"]
    assert main(common + ["--shape", "x:16"]) == 0
    capsys.readouterr()
    assert main(common + ["--shape", "x:3"]) == 1
    err = capsys.readouterr().err
    # every request of the first window failed: measuring stopped there, and says why
    assert "window 1: 0.0 infer/s" in err and "window 2" not in err, err
    assert "concurrency 1: " in err and "requests failed: [400]" in err and \
        "cannot reshape (3,)" in err, err
