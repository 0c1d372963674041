"""Prometheus metrics of one server, in a registry of its own (so that servers in one process,
as in tests, do not share counts): this server's own `npu_serving_*` families, Triton's
`nv_inference_*` families (same names, labels and units, so Triton dashboards work), and the
simulated device's `npu_device_*` gauges per SKU."""

from __future__ import annotations

import threading
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import Summary
from prometheus_client import generate_latest

LABELS = ("model", "version")
# Seconds, from a fast toy model on the loopback to a large model simulated on the CPU.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "npu_serving_inference_requests",
            "Inference requests by model and outcome (success, client_error, server_error).",
            LABELS + ("outcome",),
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "npu_serving_request_duration_seconds",
            "Time from receiving an inference request to answering it.",
            LABELS,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_duration = Histogram(
            "npu_serving_queue_duration_seconds",
            "Time a request waited before its batch started running.",
            LABELS,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.compute_duration = Histogram(
            "npu_serving_compute_duration_seconds",
            "Time the backend took to run one batch (compiling a new batch size included).",
            LABELS,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "npu_serving_batch_size",
            "Batch size of each model execution (requests merged by the dynamic batcher).",
            LABELS,
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.model_ready = Gauge(
            "npu_serving_model_ready",
            "1 when the model is loaded and serving, else 0.",
            LABELS,
            registry=self.registry,
        )

        self._triton_metrics()
        self._device_metrics()

    def _triton_metrics(self) -> None:
        def counter(name, doc, labels=LABELS):
            return Counter(name, doc, labels, registry=self.registry)

        self.nv_success = counter("nv_inference_request_success",
                                  "Number of successful inference requests, all batch sizes")
        self.nv_failure = counter("nv_inference_request_failure",
                                  "Number of failed inference requests, all batch sizes "
                                  "(reason: REJECTED, CANCELED, BACKEND, OTHER)",
                                  LABELS + ("reason",))
        self.nv_count = counter("nv_inference_count",
                                "Number of inferences performed (a batch of n counts n)")
        self.nv_exec_count = counter("nv_inference_exec_count",
                                     "Number of model executions performed")
        self.nv_pending = Gauge("nv_inference_pending_request_count",
                                "Instantaneous number of pending requests awaiting execution "
                                "per-model.", LABELS, registry=self.registry)
        self.nv_durations = {}
        self.nv_summaries = {}
        for phase, doc in (("request", "Cumulative inference request duration"),
                           ("queue", "Cumulative inference queuing duration"),
                           ("compute_input", "Cumulative compute input duration"),
                           ("compute_infer", "Cumulative compute inference duration"),
                           ("compute_output", "Cumulative inference compute output duration")):
            self.nv_durations[phase] = counter(f"nv_inference_{phase}_duration_us",
                                               f"{doc} in microseconds")
            self.nv_summaries[phase] = Summary(f"nv_inference_{phase}_summary_us",
                                               f"Summary of {phase} durations in microseconds "
                                               "(per request)", LABELS, registry=self.registry)

    def observe_us(self, phase: str, labels: dict, seconds: float, count: int = 1) -> None:
        us = seconds * 1e6
        self.nv_durations[phase].labels(**labels).inc(us * count)
        summary = self.nv_summaries[phase].labels(**labels)
        for _ in range(count):
            summary.observe(us)

    def _device_metrics(self) -> None:
        self.device = DeviceUsage()
        labels = ("sku",)
        self.device_busy = Counter("npu_device_busy_us",
                                   "Simulated device time of every execution, in microseconds",
                                   labels, registry=self.registry)
        self.device_executions = Counter("npu_device_executions",
                                         "Executions on the simulated device", labels,
                                         registry=self.registry)
        self.device_utilization = Gauge("npu_device_utilization",
                                        "Simulated device busy time over wall time in the last "
                                        f"{DeviceUsage.WINDOW_S:g} s, per device (model "
                                        "instance) of the SKU, 0 to 1", labels,
                                        registry=self.registry)
        self.device_memory_used = Gauge("npu_device_memory_used_bytes",
                                        "Peak device memory of the latest execution, summed "
                                        "over the model instances on the SKU", labels,
                                        registry=self.registry)
        self.device_memory_total = Gauge("npu_device_memory_total_bytes",
                                         "Device memory of the SKU times its devices (model "
                                         "instances)", labels, registry=self.registry)

    def device_execution(self, sku: str, key: tuple, busy_us: float, peak_bytes: int | None):
        self.device_busy.labels(sku=sku).inc(busy_us)
        self.device_executions.labels(sku=sku).inc()
        self.device.record(sku, key, busy_us, peak_bytes)

    def device_attached(self, sku: str, key: tuple, memory_bytes: int | None) -> None:
        self.device.attach(sku, key, memory_bytes)

    def device_detached(self, sku: str, key: tuple) -> None:
        self.device.detach(sku, key)

    def exposition(self) -> bytes:
        for sku, (utilization, used, total) in self.device.snapshot().items():
            self.device_utilization.labels(sku=sku).set(utilization)
            self.device_memory_used.labels(sku=sku).set(used)
            self.device_memory_total.labels(sku=sku).set(total)
        return generate_latest(self.registry)


class DeviceUsage:
    """Busy time and memory of the simulated devices: one device per model instance."""

    WINDOW_S = 10.0

    def __init__(self):
        self._lock = threading.Lock()
        self._busy: dict[str, list[tuple[float, float]]] = {}  # sku -> [(end time, busy us)]
        self._devices: dict[str, dict[tuple, list]] = {}  # sku -> key -> [memory, last peak]

    def attach(self, sku: str, key: tuple, memory_bytes: int | None) -> None:
        with self._lock:
            self._devices.setdefault(sku, {})[key] = [memory_bytes or 0, 0]

    def detach(self, sku: str, key: tuple) -> None:
        """An unloaded instance: its device no longer counts in the SKU's memory."""
        with self._lock:
            self._devices.get(sku, {}).pop(key, None)

    def record(self, sku: str, key: tuple, busy_us: float, peak_bytes: int | None) -> None:
        now = time.monotonic()
        with self._lock:
            samples = self._busy.setdefault(sku, [])
            samples.append((now, busy_us))
            while samples and samples[0][0] < now - self.WINDOW_S:
                samples.pop(0)
            device = self._devices.setdefault(sku, {}).setdefault(key, [0, 0])
            device[1] = peak_bytes or 0

    def snapshot(self) -> dict[str, tuple[float, int, int]]:
        now = time.monotonic()
        with self._lock:
            result = {}
            for sku, devices in self._devices.items():
                busy_us = sum(us for end, us in self._busy.get(sku, []) if end >= now - self.WINDOW_S)
                wall_us = self.WINDOW_S * 1e6 * max(1, len(devices))
                result[sku] = (min(1.0, busy_us / wall_us), sum(d[1] for d in devices.values()),
                               sum(d[0] for d in devices.values()))
            return result
