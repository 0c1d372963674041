"""Probes and how their measurements are judged good or bad.

A probe measures one version vector: `probe(vector) -> Measurement`, a figure (float) or, for
an outcome regression, the job's status (str). The harness implements probes by building the
vector as a combination and running the series' job on it. A vector that does not build,
violates a contract, or does not run is untestable: the probe raises `Untestable` (or returns
one), and the search skips that point instead of blaming it, as `git bisect skip` does.

A `Criterion` judges with references taken from the regression itself: the last good and first
bad measurements. Deterministic figures take one probe and are bad from half-way to the bad
value on (several commits may each add part of a regression; the one that crosses the middle
is named). Wall-clock figures take `repeats` probes and the detection's own statistics: bad
when the probe's samples differ from the good ones (Mann-Whitney at alpha, min magnitude) and
their median lies beyond half-way (in log space) towards the bad median.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence, Union

import numpy as np

from stackci.regressions.changepoint import DEFAULT, NoiseConfig, samples_differ
from stackci.regressions.metrics import Kind
from stackci.regressions.series import BAD_STATUSES, NOT_RUN, VersionVector

GOOD, BAD, UNTESTABLE = "good", "bad", "untestable"
WALL_CLOCK_REPEATS = 8   # 8 against 8 repeats can reach p < 0.001 (two-sided Mann-Whitney)


class Untestable(Exception):
    """The probed vector cannot be measured: it did not build, broke a contract, did not run."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


Measurement = Union[float, str]
Probe = Callable[[VersionVector], Union[Measurement, Untestable]]


@dataclass(frozen=True)
class Criterion:
    kind: Kind
    good: tuple            # reference samples of the last good point (floats or statuses)
    bad: tuple             # and of the first bad one
    repeats: int = 1
    config: NoiseConfig = field(default=DEFAULT)

    def judge(self, samples: Sequence[Measurement]) -> tuple[str, str]:
        """(verdict, why) for the samples of one probed vector."""
        if self.kind is Kind.OUTCOME:
            return _judge_outcome(samples)
        if any(isinstance(s, str) for s in samples):
            return UNTESTABLE, f"no figure: the job ended {samples[0]}"
        values = [float(s) for s in samples]
        if self.kind is Kind.DETERMINISTIC:
            return _judge_exact(values[0], float(self.good[0]), float(self.bad[0]))
        return _judge_noisy(values, self.good, self.bad, self.config)

    def to_dict(self) -> dict:
        return {"kind": self.kind.value, "good": list(self.good), "bad": list(self.bad),
                "repeats": self.repeats, "config": self.config.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Criterion":
        return cls(Kind(data["kind"]), tuple(data["good"]), tuple(data["bad"]),
                   data["repeats"], NoiseConfig(**data["config"]))


def _judge_outcome(samples: Sequence[Measurement]) -> tuple[str, str]:
    status = str(samples[0])
    if status == NOT_RUN:
        return UNTESTABLE, "the job did not run"
    return (BAD, f"the job {status}") if status in BAD_STATUSES else (GOOD, "the job passed")


def _judge_exact(value: float, good: float, bad: float) -> tuple[str, str]:
    if bad == good:
        return (GOOD if value == good else BAD), f"{value:g} (good {good:g})"
    towards_bad = (value - good) / (bad - good)
    verdict = BAD if towards_bad >= 0.5 else GOOD
    return verdict, f"{value:g}: {towards_bad:.0%} of the way from {good:g} to {bad:g}"


def _judge_noisy(values: Sequence[float], good: Sequence[float], bad: Sequence[float],
                 config: NoiseConfig) -> tuple[str, str]:
    differ, relative, pvalue = samples_differ(good, values, config)
    good_median, bad_median = float(np.median(good)), float(np.median(bad))
    span = math.log(bad_median / good_median)
    towards_bad = math.log(float(np.median(values)) / good_median) / span if span else 0.0
    why = (f"median {np.median(values):.4g} ({relative:+.1%} on good, p={pvalue:.2g}; "
           f"{towards_bad:.0%} of the way to bad)")
    return (BAD if differ and towards_bad >= 0.5 else GOOD), why


def measure(probe: Probe, vector: VersionVector, repeats: int) -> tuple[list, str]:
    """`repeats` measurements of one vector, or ([], reason) when it is untestable."""
    samples = []
    for _ in range(repeats):
        try:
            result = probe(vector)
        except Untestable as exc:
            return [], exc.reason
        if isinstance(result, Untestable):
            return [], result.reason
        samples.append(result)
    return samples, ""


def probe_once(probe: Probe, vector: VersionVector, criterion: Criterion) -> tuple[str, list, str]:
    """(verdict, samples, why): one step of a search."""
    samples, reason = measure(probe, vector, criterion.repeats)
    if reason:
        return UNTESTABLE, [], reason
    verdict, why = criterion.judge(samples)
    return verdict, samples, why
