"""Wall-clock figures: change points that survive the machine's noise.

The method (measured in docs/design.md; `integration/benchmarks/changepoint_noise.py` repeats
the measurement):
  1. work on log(value): load slows a job by a factor, so the noise is multiplicative;
  2. scale by a robust noise estimate, the MAD of successive differences (a step moves one
     difference, so it barely moves the estimate);
  3. PELT (Killick et al. 2012; `ruptures`) proposes change points of the mean, each segment at
     least `min_size` points long, with a BIC-like penalty of `penalty * log(n)`;
  4. each proposal must pass a two-sided Mann-Whitney U test (scipy.stats) of the segment before
     against the segment after (at most `window` points each) at `alpha`, and
  5. the medians of the two segments must differ by at least `min_magnitude`.
The medians make a single spike no change (it moves neither median), and `min_size` means a
step is reported once that many runs sit at the new level. Apache Otava's E-Divisive would
be the closest anchor, but apache-otava 0.8.0 pins scipy<1.17 and numpy 2.2, which the stack's
environments cannot share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from stackci.errors import UsageError
from stackci.regressions.findings import Finding, FindingKind, Size
from stackci.regressions.metrics import MetricKind
from stackci.regressions.series import Series, moved_modules


@dataclass(frozen=True)
class NoiseConfig:
    min_size: int = 4           # runs on each side of a change
    alpha: float = 0.001        # Mann-Whitney significance (Otava's default p-value too)
    min_magnitude: float = 0.10  # relative change of the medians
    penalty: float = 3.0        # PELT penalty per change point, times log(n)
    window: int = 30            # at most this many runs each side enter the test

    def to_dict(self) -> dict:
        return {"min_size": self.min_size, "alpha": self.alpha,
                "min_magnitude": self.min_magnitude, "penalty": self.penalty,
                "window": self.window}


DEFAULT = NoiseConfig()


@dataclass(frozen=True)
class ChangePoint:
    index: int           # first point of the new level
    before: float        # median of the segment before
    after: float         # median of the segment after
    pvalue: float
    n_before: int
    n_after: int

    @property
    def relative(self) -> float:
        return self.after / self.before - 1.0


def noise_scale(logs: np.ndarray) -> float:
    """Robust standard deviation of iid noise from successive differences (Var(d) = 2 s^2)."""
    diffs = np.diff(logs)
    mad = float(np.median(np.abs(diffs - np.median(diffs))))
    return 1.4826 * mad / np.sqrt(2.0)


def candidates(logs: np.ndarray, config: NoiseConfig = DEFAULT) -> list[int]:
    n = len(logs)
    if n < 2 * config.min_size:
        return []
    scale = noise_scale(logs)
    if scale == 0.0:
        # Flat apart from exact steps (a quiet machine, rounded timings): any step is a
        # candidate; the magnitude and the test still decide.
        scale = max(float(np.std(logs)), 1e-12) * 1e-3
    signal = ((logs - np.median(logs)) / scale).reshape(-1, 1)
    # Imported here: ruptures brings scipy (~3 s of a start on this machine), and only a
    # series long enough to split needs it; every harness command imports this module.
    import ruptures
    algo = ruptures.Pelt(model="l2", min_size=config.min_size, jump=1).fit(signal)
    return algo.predict(pen=config.penalty * np.log(n))[:-1]


def change_points(values: Sequence[float], config: NoiseConfig = DEFAULT) -> list[ChangePoint]:
    """Change points of a positive series, oldest value first.

    Each candidate is tested against its neighbours' segments; the weakest failing candidate
    is dropped and the rest re-tested, so the segment a spike made does not split the
    windows of a real step around it (Otava re-tests its change points the same way)."""
    data = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(data) & (data > 0)):
        raise UsageError("wall-clock values must be positive and finite")
    cuts = candidates(np.log(data), config)
    while True:
        bounds = [0, *cuts, len(data)]
        tested = [_tested(cut, data[max(bounds[i], cut - config.window):cut],
                          data[cut:min(bounds[i + 2], cut + config.window)], config)
                  for i, cut in enumerate(cuts)]
        failing = [(score, cut) for cut, (score, cp) in zip(cuts, tested) if cp is None]
        if not failing:
            return [cp for _, cp in tested]
        cuts.remove(max(failing)[1])


def _tested(cut: int, before: np.ndarray, after: np.ndarray,
            config: NoiseConfig) -> tuple[float, ChangePoint | None]:
    """(how badly it failed: the p-value, above 1 when too small; the change point or None)."""
    median_before, median_after = float(np.median(before)), float(np.median(after))
    relative = abs(median_after / median_before - 1.0)
    if relative < config.min_magnitude:
        return 2.0 - relative, None
    pvalue = mann_whitney(before, after)
    if pvalue >= config.alpha:
        return pvalue, None
    return pvalue, ChangePoint(cut, median_before, median_after, pvalue, len(before),
                               len(after))


def mann_whitney(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value; exact when there are no ties (timings rarely tie), where the normal
    approximation scipy otherwise uses above 8 values per side is too coarse for small
    segments."""
    ties = len(np.unique(np.concatenate([a, b]))) < len(a) + len(b)
    method = "asymptotic" if ties else "exact"
    from scipy import stats  # here, like ruptures: see candidates
    return float(stats.mannwhitneyu(a, b, alternative="two-sided", method=method).pvalue)


def noisy_changes(series: Series, metric: MetricKind,
                  config: NoiseConfig = DEFAULT) -> list[Finding]:
    """Change points as findings. A wall-clock level can move with no code moving (on a
    shared machine, another engineer's load halved compile times in the recording of
    docs/design.md): a change point with no version change within `REACH` runs is the
    machine's, reported as a change but not a regression. One near a version change is
    moved onto it, so the culprit search starts from the vectors that differ."""
    points = [p for p in series.measured() if p.value > 0]
    findings = []
    for cp in change_points([p.value for p in points], config):
        at = attributed(points, cp.index)
        before, after = points[(at or cp.index) - 1], points[at or cp.index]
        size = Size(cp.before, cp.after)
        if at is None:
            cause, regressed = "no module moved: the machine, not the code", False
        else:
            cause = ", ".join(moved_modules(before.vector, after.vector)) + " moved"
            regressed = metric.worse(cp.before, cp.after)
        findings.append(Finding(
            FindingKind.CHANGE, series.key, before, after, size, regressed,
            f"{series.key.metric} median {size.describe(metric.unit)} from run {after.run_id} "
            f"({cause}), Mann-Whitney p={cp.pvalue:.2g}",
            {"method": "pelt+mannwhitney", "pvalue": cp.pvalue, "n_before": cp.n_before,
             "n_after": cp.n_after, "machine": at is None, **config.to_dict()}))
    return findings


REACH = 1   # runs a change point may sit from the version change it is put on


def attributed(points, index: int) -> int | None:
    """The index of the version change nearest a change point (the change point's own first,
    then one run either side), or None when no version changed near it."""
    for offset in sorted(range(-REACH, REACH + 1), key=lambda o: (abs(o), o)):
        i = index + offset
        if 0 < i < len(points) and points[i - 1].identity != points[i].identity:
            return i
    return None


def samples_differ(good: Sequence[float], probe: Sequence[float],
                   config: NoiseConfig = DEFAULT) -> tuple[bool, float, float]:
    """The detection's own test for two sets of repeats (the culprit search's probes):
    (different, relative change of medians, p-value)."""
    good_a, probe_a = np.asarray(good, float), np.asarray(probe, float)
    relative = float(np.median(probe_a) / np.median(good_a) - 1.0)
    pvalue = mann_whitney(good_a, probe_a)
    return (abs(relative) >= config.min_magnitude and pvalue < config.alpha), relative, pvalue
