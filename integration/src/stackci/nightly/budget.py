"""The day budget: wall time allowed for a run, and how long each job is expected to take."""

from __future__ import annotations

import time

# Before a job has history, assume this long (seconds): generous, so a new job does not push
# the night past its budget unnoticed.
DEFAULT_ESTIMATES = {"build": 600.0, "contracts": 10.0, "tests": 300.0, "workloads": 300.0,
                     "conformance": 900.0, "regressions": 30.0, "analysis": 300.0,
                     "bisect": 600.0, "publish": 30.0}


class Budget:
    """Wall time allowed for a run; `used_before` carries the time of earlier sessions of a
    resumed run, so a resume does not get a fresh day."""

    def __init__(self, total_s: float, used_before: float = 0.0, clock=time.monotonic):
        self.total_s = total_s
        self.used_before = used_before
        self._clock = clock
        self._started = clock()

    def used(self) -> float:
        return self.used_before + self._clock() - self._started

    def fits(self, estimate_s: float) -> bool:
        return self.used() + estimate_s <= self.total_s

