"""Serving throughput with dynamic batching against without it, as Triton users measure it:
`python -m npu_serving` in a subprocess, loaded by the harness's perf_analyzer-like load
generator over HTTP at concurrency 1, 4 and 16, one model folder with dynamic batching
(max 16, 2 ms delay) and one without (same model, same instances: one per core).

The session ends with the table per model and concurrency, and the ratio at concurrency 16
(goal: batching >= 1.5x). Also in the table: the server's per-image compute at batch 16 against
batch 1 (from the statistics extension's batch_stats). Choose models with
STACKCI_SERVING_MODELS=squeezenet,bert_smoke; window seconds with STACKCI_SERVING_WINDOW_S.
"""

from __future__ import annotations

import os
import sys

import pytest

from stackci.loadgen import Settings, measure_concurrency
from stackci.stack.server import ServerProcess
from stackci.workloads import load_suite, prepare
from stackci.workspace import Workspace

SKU = "npu-edge"
GOAL = 1.5
CONCURRENCY = (1, 4, 16)
# Not alexnet: its Reshape to a constant [1, 9216] does not compile at batch > 1 (the compiler's
# batch override keeps the constant), so it cannot batch until dynamic shapes land.
DEFAULT_MODELS = ("squeezenet", "resnet50", "bert_smoke")
MODELS = [m for m in os.environ.get("STACKCI_SERVING_MODELS", ",".join(DEFAULT_MODELS))
          .split(",") if m]
WINDOW_S = float(os.environ.get("STACKCI_SERVING_WINDOW_S", "3"))
CONFIGS = {
    "off": "max_batch_size: 16\n",
    "on": "max_batch_size: 16\ndynamic_batching { max_queue_delay_microseconds: 2000 }\n",
}

MEASURED: dict[str, dict] = {}
"""model -> {"rows": [(mode, concurrency, Measurement)], "per_image_ms": {1: ms, 16: ms}}"""


@pytest.fixture(scope="module", autouse=True)
def summary(request):
    """The table, written when the module's benchmarks are done."""
    yield
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    if reporter is not None and MEASURED:
        for line in summary_lines():
            reporter.write_line(line)


def summary_lines() -> list[str]:
    lines = ["", f"serving throughput, dynamic batching on / off (goal at concurrency "
             f"{CONCURRENCY[-1]}: >= {GOAL}x)",
             f"{'model':<12}{'conc.':>6}{'off infer/s':>13}{'on infer/s':>12}{'on batch':>10}"
             f"{'off p99 ms':>12}{'on p99 ms':>11}{'ratio':>8}"]
    for name, result in MEASURED.items():
        by = {(mode, level): m for mode, level, m in result["rows"]}
        for level in CONCURRENCY:
            off, on = by[("off", level)], by[("on", level)]
            ratio = on.throughput / off.throughput if off.throughput else 0.0
            lines.append(f"{name:<12}{level:>6}{off.throughput:>13.1f}{on.throughput:>12.1f}"
                         f"{on.avg_batch:>10.1f}{off.p99_us / 1e3:>12.1f}"
                         f"{on.p99_us / 1e3:>11.1f}{ratio:>7.2f}x")
        per_image = result["per_image_ms"]
        if 1 in per_image and 16 in per_image:
            lines.append(f"{name:<12} server compute per image: batch 1 {per_image[1]:.2f} ms,"
                         f" batch 16 {per_image[16]:.2f} ms")
    return lines


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return Workspace.discover(home=tmp_path_factory.mktemp("stackci"))


def repository(root, model_path) -> None:
    for mode, config in CONFIGS.items():
        folder = root / mode / "1"
        folder.mkdir(parents=True)
        os.link(model_path, folder / "model.onnx") if _same_device(model_path, folder) else \
            (folder / "model.onnx").write_bytes(model_path.read_bytes())
        (root / mode / "config.pbtxt").write_text(config)


def _same_device(a, b) -> bool:
    return os.stat(a).st_dev == os.stat(b).st_dev


def per_image_compute_ms(url: str) -> dict[int, float]:
    """Server compute (input + infer + output) per image, by executed batch size."""
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(url)
    try:
        stats = client.get_inference_statistics("on")["model_stats"][0]
    finally:
        client.close()
    result = {}
    for entry in stats["batch_stats"]:
        count = entry["compute_infer"]["count"]
        if count:
            ns = sum(entry[p]["ns"] for p in ("compute_input", "compute_infer", "compute_output"))
            result[entry["batch_size"]] = ns / count / 1e6 / entry["batch_size"]
    return result


def warm_batch(url: str, batch: int, repeats: int = 3) -> None:
    """A few requests of `batch` images, so batch_stats holds that size."""
    from stackci.loadgen.inputs import model_inputs
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(url, network_timeout=600)
    try:
        inputs, outputs = model_inputs(client, "on", batch)
        for _ in range(repeats):
            client.infer("on", inputs, outputs=outputs)
    finally:
        client.close()


@pytest.mark.parametrize("name", MODELS)
def test_serving_batching(benchmark, workspace, tmp_path, name):
    prepared = prepare(workspace, load_suite().get(name))
    repository(tmp_path, prepared.model_path)
    rows = []

    def measure_all():
        with ServerProcess(sys.executable, tmp_path, SKU) as server:
            for mode in CONFIGS:
                for level in CONCURRENCY:
                    settings = Settings(server.url, mode, window_s=WINDOW_S, max_trials=5)
                    m = measure_concurrency(settings, level)
                    print(f"{name} batching {mode} concurrency {level}: "
                          f"{m.throughput:.1f} infer/s", file=sys.stderr)
                    rows.append((mode, level, m))
            for batch in (1, 16):
                warm_batch(server.url, batch)
            return per_image_compute_ms(server.url)

    per_image = benchmark.pedantic(measure_all, rounds=1, iterations=1)
    top = {mode: m.throughput for mode, level, m in rows if level == CONCURRENCY[-1]}
    ratio = top["on"] / top["off"] if top["off"] else 0.0
    MEASURED[name] = {"rows": rows, "per_image_ms": per_image, "ratio": ratio}
    benchmark.extra_info.update(ratio_at_16=ratio, goal=GOAL,
                                per_image_ms_b1=per_image.get(1), per_image_ms_b16=per_image.get(16),
                                **{f"{mode}_c{level}": m.throughput for mode, level, m in rows})
