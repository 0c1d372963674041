"""Serving throughput with dynamic batching against without it, as Triton users measure it:
`python -m npu_serving` in a subprocess, loaded by the harness's perf_analyzer-like load
generator over HTTP at concurrency 1, 4 and 16, one model folder with dynamic batching
(max 16, 2 ms delay) and one without (same model, same server, same instances: one per core).

The baseline is the same server without batching, measured interleaved with it: each repeat
measures every concurrency with batching off and on back to back (the order alternating), so a
shared, noisy machine loads both alike; the table holds the medians over the repeats and the
load average. Besides throughput, the server process's CPU time per inference (from /proc), and
per image at batch 1 against batch 16 (requests of 1 and of 16 images sent one at a time,
alternating), which the machine's load disturbs far less than wall-clock rates.

The session ends with the table per model and concurrency, and the ratio at concurrency 16
(goal: batching >= 1.5x). Choose models with STACKCI_SERVING_MODELS=squeezenet,bert_smoke;
window seconds with STACKCI_SERVING_WINDOW_S, repeats with STACKCI_SERVING_REPEATS, the SKU with
STACKCI_SERVING_SKU (default npu-micro: the one SKU whose simulated time exceeds this host's
numpy time for every model, so pacing binds; on npu-edge and npu-dc the device is faster than
numpy and paced rows are functional ones again), and the instances of both model folders with
STACKCI_SERVING_INSTANCES (instance_group count; default the server's, one per core).

Execution modes (STACKCI_SERVING_EXECUTION=functional,paced; functional by default): functional
measures the numpy execution on this host; paced runs the server with --pace-device-time, so
each execution lasts at least its simulated device time and throughput shows what batching buys
on the modelled NPU (the simulated time per image by batch and SKU: docs/design.md, kserve-v2 2.1).
"""

from __future__ import annotations

import os
import statistics
import sys

import pytest

from stackci.loadgen import Settings, measure_concurrency
from stackci.stack.server import ServerProcess
from stackci.workloads.prepare import prepare
from stackci.workloads.suite import load_suite
from stackci.workspace import Workspace

SKU = os.environ.get("STACKCI_SERVING_SKU", "npu-micro")
INSTANCES = int(os.environ.get("STACKCI_SERVING_INSTANCES", "0"))  # 0: the server's default
GOAL = 1.5
CONCURRENCY = (1, 4, 16)
# The smoke CNNs and the BERT-style encoder.
DEFAULT_MODELS = ("squeezenet", "alexnet", "resnet50", "bert_smoke")
MODELS = [m for m in os.environ.get("STACKCI_SERVING_MODELS", ",".join(DEFAULT_MODELS))
          .split(",") if m]
WINDOW_S = float(os.environ.get("STACKCI_SERVING_WINDOW_S", "3"))
REPEATS = int(os.environ.get("STACKCI_SERVING_REPEATS", "3"))
EXECUTIONS = {"functional": [], "paced": ["--pace-device-time"]}
EXECUTION_MODES = [m for m in os.environ.get("STACKCI_SERVING_EXECUTION", "functional")
                   .split(",") if m]
CONFIGS = {
    "off": "max_batch_size: 16\n",
    "on": "max_batch_size: 16\ndynamic_batching { max_queue_delay_microseconds: 2000 }\n",
}
if INSTANCES:
    CONFIGS = {mode: f"{text}instance_group {{ count: {INSTANCES} }}\n"
               for mode, text in CONFIGS.items()}

MEASURED: dict[str, dict] = {}
"""model -> {"points": {(mode, concurrency): [Point per repeat]}, "per_image": {batch: [ms]},
"load": [load averages]}, keyed by model ("squeezenet") or model and mode ("squeezenet paced")"""


class Point:
    def __init__(self, measurement, cpu_ms_per_inference):
        self.m, self.cpu_ms = measurement, cpu_ms_per_inference


@pytest.fixture(scope="module", autouse=True)
def summary(request):
    """The table, written when the module's benchmarks are done."""
    yield
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    if reporter is not None and MEASURED:
        for line in summary_lines():
            reporter.write_line(line)


def _median(values) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def summary_lines() -> list[str]:
    instances = INSTANCES or "one per core"
    lines = ["", f"serving throughput on {SKU} (instances: {instances}), dynamic batching on / "
             f"off, medians of {REPEATS} interleaved repeats (goal at concurrency "
             f"{CONCURRENCY[-1]}: >= {GOAL}x)",
             f"{'model':<18}{'conc.':>6}{'off infer/s':>13}{'on infer/s':>12}{'on batch':>10}"
             f"{'off cpu ms':>12}{'on cpu ms':>11}{'off p50 ms':>12}{'on p50 ms':>11}"
             f"{'off p99 ms':>12}{'on p99 ms':>11}{'ratio':>8}"]
    for name, result in MEASURED.items():
        points = result["points"]
        for level in CONCURRENCY:
            off, on = points[("off", level)], points[("on", level)]
            ratio = _ratio(off, on)
            lines.append(
                f"{name:<18}{level:>6}{_median(p.m.throughput for p in off):>13.1f}"
                f"{_median(p.m.throughput for p in on):>12.1f}"
                f"{_median(p.m.avg_batch for p in on):>10.1f}"
                f"{_median(p.cpu_ms for p in off):>12.2f}{_median(p.cpu_ms for p in on):>11.2f}"
                f"{_median(p.m.p50_us for p in off) / 1e3:>12.1f}"
                f"{_median(p.m.p50_us for p in on) / 1e3:>11.1f}"
                f"{_median(p.m.p99_us for p in off) / 1e3:>12.1f}"
                f"{_median(p.m.p99_us for p in on) / 1e3:>11.1f}{ratio:>7.2f}x")
        per_image = result["per_image"]
        lines.append(f"{name:<18} server CPU per image: batch 1 {_median(per_image[1]):.2f} ms, "
                     f"batch 16 {_median(per_image[16]):.2f} ms; load average during the run "
                     f"{min(result['load']):.1f}-{max(result['load']):.1f} (2 cores)")
    lines.append("cpu ms: the server process's CPU time per inference during the point")
    return lines


def _ratio(off, on) -> float:
    """The median of each repeat's on/off ratio (its two points were measured back to back)."""
    ratios = [b.m.throughput / a.m.throughput for a, b in zip(off, on) if a.m.throughput]
    return _median(ratios) if ratios else 0.0


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


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of process `pid` and its threads (None off Linux)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def inferences(client, model: str) -> int:
    stats = client.get_inference_statistics(model)["model_stats"]
    return sum(entry["inference_count"] for entry in stats)


def cpu_ms_per_inference(server, client, model: str, work) -> tuple:
    """(what `work()` returns, the server's CPU milliseconds per inference it served)."""
    count, cpu = inferences(client, model), process_cpu_s(server.pid)
    result = work()
    count, after = inferences(client, model) - count, process_cpu_s(server.pid)
    if cpu is None or after is None or count <= 0:
        return result, None
    return result, (after - cpu) * 1e3 / count


def per_image_cpu_ms(server, client, batch: int, images: int = 16) -> float | None:
    """Server CPU per image of `images` images sent `batch` at a time, one request after
    another (on the batching model: its plans for 1 and 16 are prepared at load)."""
    from stackci.loadgen.inputs import model_inputs

    inputs, outputs = model_inputs(client, "on", batch)

    def work():
        for _ in range(max(1, images // batch)):
            client.infer("on", inputs, outputs=outputs)

    return cpu_ms_per_inference(server, client, "on", work)[1]


@pytest.mark.parametrize("execution", EXECUTION_MODES)
@pytest.mark.parametrize("name", MODELS)
def test_serving_batching(benchmark, workspace, tmp_path, name, execution):
    if execution not in EXECUTIONS:
        pytest.fail(f"STACKCI_SERVING_EXECUTION: unknown mode {execution!r}, expected "
                    f"{' or '.join(EXECUTIONS)}")
    import tritonclient.http as httpclient

    prepared = prepare(workspace, load_suite().get(name))
    repository(tmp_path, prepared.model_path)
    points = {(mode, level): [] for mode in CONFIGS for level in CONCURRENCY}
    per_image = {1: [], 16: []}
    load = [os.getloadavg()[0]]

    def measure_all():
        with ServerProcess(sys.executable, tmp_path, SKU, EXECUTIONS[execution]) as server:
            client = httpclient.InferenceServerClient(server.url, network_timeout=600)
            try:
                for repeat in range(REPEATS):
                    for index, level in enumerate(CONCURRENCY):
                        modes = list(CONFIGS) if (repeat + index) % 2 == 0 else \
                            list(CONFIGS)[::-1]
                        for mode in modes:
                            settings = Settings(server.url, mode, window_s=WINDOW_S,
                                                max_trials=5)
                            m, cpu = cpu_ms_per_inference(
                                server, client, mode, lambda: measure_concurrency(settings, level))
                            points[(mode, level)].append(Point(m, cpu))
                            load.append(os.getloadavg()[0])
                            print(f"{name} {execution} repeat {repeat + 1} batching {mode} "
                                  f"concurrency {level}: {m.throughput:.1f} infer/s, batch "
                                  f"{m.avg_batch:.1f}, server cpu {cpu or 0:.2f} ms/infer, "
                                  f"load {load[-1]:.1f}", file=sys.stderr)
                    for batch in ((1, 16) if repeat % 2 == 0 else (16, 1)):
                        per_image[batch].append(per_image_cpu_ms(server, client, batch))
            finally:
                client.close()

    benchmark.pedantic(measure_all, rounds=1, iterations=1)
    label = name if execution == "functional" else f"{name} {execution}"
    MEASURED[label] = {"points": points, "per_image": per_image, "load": load}
    ratio = _ratio(points[("off", CONCURRENCY[-1])], points[("on", CONCURRENCY[-1])])
    benchmark.extra_info.update(
        execution=execution, sku=SKU, instances=INSTANCES or None, ratio_at_16=ratio, goal=GOAL, repeats=REPEATS,
        load_average=[min(load), max(load)],
        cpu_ms_per_image_b1=_median(per_image[1]), cpu_ms_per_image_b16=_median(per_image[16]),
        **{f"{mode}_c{level}": _median(p.m.throughput for p in ps)
           for (mode, level), ps in points.items()})
