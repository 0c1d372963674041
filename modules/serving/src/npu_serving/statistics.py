"""Triton's statistics extension: per model version, cumulative counts and durations (ns).

`inference_stats` counts requests (each request of a batch gets the batch's compute times, as
Triton counts them); `batch_stats` counts executions per batch size; `execution_count` is
executions and `inference_count` the inferences (batch elements) they ran.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

PHASES = ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output",
          "cache_hit", "cache_miss")
BATCH_PHASES = ("compute_input", "compute_infer", "compute_output")


class ModelStatistics:
    def __init__(self, name: str, version: str):
        self.name, self.version = name, version
        self._lock = threading.Lock()  # instances record from their own threads
        self.inference = {phase: [0, 0] for phase in PHASES}
        self.batches: dict[int, dict[str, list[int]]] = defaultdict(
            lambda: {phase: [0, 0] for phase in BATCH_PHASES})
        self.execution_count = 0
        self.inference_count = 0
        self.last_inference_ms = 0

    def request(self, outcome: str, duration_s: float) -> None:
        with self._lock:
            self._add(self.inference[outcome], 1, duration_s)
            if outcome == "success":
                self.last_inference_ms = int(time.time() * 1000)

    def execution(self, requests: int, batch: int, queue_s: list[float],
                  phases: dict[str, float]) -> None:
        with self._lock:
            self.execution_count += 1
            self.inference_count += batch
            for waited in queue_s:
                self._add(self.inference["queue"], 1, waited)
            for phase, seconds in phases.items():
                self._add(self.inference[phase], requests, seconds * requests)
                self._add(self.batches[batch][phase], 1, seconds)

    @staticmethod
    def _add(pair: list[int], count: int, seconds: float) -> None:
        pair[0] += count
        pair[1] += int(seconds * 1e9)

    def to_dict(self) -> dict:
        with self._lock:
            return {
                "name": self.name,
                "version": self.version,
                "last_inference": self.last_inference_ms,
                "inference_count": self.inference_count,
                "execution_count": self.execution_count,
                "inference_stats": {phase: {"count": c, "ns": ns}
                                    for phase, (c, ns) in self.inference.items()},
                "batch_stats": [
                    {"batch_size": size,
                     **{phase: {"count": c, "ns": ns} for phase, (c, ns) in phases.items()}}
                    for size, phases in sorted(self.batches.items())
                ],
                "memory_usage": [],
            }
