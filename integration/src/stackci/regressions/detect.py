"""Detection on every run: each series is read by the method its metric kind calls for."""

from __future__ import annotations

from typing import Iterable

from stackci.regressions.changepoint import DEFAULT, NoiseConfig, noisy_changes
from stackci.regressions.exact import determinism_bugs, exact_changes
from stackci.regressions.findings import Finding
from stackci.regressions.metrics import Kind, lookup
from stackci.regressions.outcomes import outcome_flips
from stackci.regressions.series import Series


def detect(series: Series, config: NoiseConfig = DEFAULT) -> list[Finding]:
    """Every change, determinism bug and outcome flip in a series' history, oldest first.
    A metric with no registered kind gives nothing (see metrics.py)."""
    metric = lookup(series.key.metric)
    if metric is None:
        return []
    if metric.kind is Kind.OUTCOME:
        return outcome_flips(series)
    if metric.kind is Kind.DETERMINISTIC:
        found = exact_changes(series, metric) + determinism_bugs(series, metric)
    else:
        found = noisy_changes(series, metric, config)
    return sorted(found, key=lambda f: (f.first_bad.run_time, f.first_bad.run_id))


def detect_all(all_series: Iterable[Series], config: NoiseConfig = DEFAULT,
               regressions_only: bool = True) -> list[Finding]:
    """Findings of many series; improvements left out unless `regressions_only` is False
    (a trend still marks them as change points)."""
    found = []
    for series in all_series:
        found += [f for f in detect(series, config) if f.regressed or not regressions_only]
    return found
