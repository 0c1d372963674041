"""Prometheus metrics of one server, in a registry of its own (so that servers in one process,
as in tests, do not share counts)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
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

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
