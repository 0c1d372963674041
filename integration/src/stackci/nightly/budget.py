"""The day budget: wall time allowed for a run, and how long each job is expected to take."""

from __future__ import annotations

import time

# Before a job has history, assume this long (seconds): generous, so a new job does not push
# the night past its budget unnoticed.
DEFAULT_ESTIMATES = {"build": 600.0, "contracts": 10.0, "tests": 300.0, "workloads": 300.0,
                     "conformance": 900.0, "regressions": 30.0, "analysis": 300.0,
                     "bisect": 600.0, "publish": 30.0}

# Before any job of a kind has history, a job running models of known work (workloads/work.py:
# operations) takes intercept + seconds-per-operation x work. Fitted by Theil-Sen on the first
# night of a fresh clone on this 2-core machine (2026-12-04, 3 combinations, smoke tier: work
# 0.35 G operations for SqueezeNet to 6.8 G for the GPT, median job 0.9 to 5.5 s; the
# analysis' batch sweeps 2.8 to 15 s); a machine's own history replaces them from the
# second night on (planner.WorkRates).
DEFAULT_WORK_RATES = {"workloads": (1.2, 5.3e-10), "analysis": (8.2, 1.44e-9),
                      "analysis-explore": (0.0, 3.3e-10)}


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

