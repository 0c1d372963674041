"""Deterministic figures are compared exactly: no threshold, no repeats.

The simulator and the counters give the same number for the same module trees and lock, so
  - two consecutive measured points of different vectors whose values differ are a change;
  - any two points of the same vector whose values differ are a determinism bug, wherever
    they sit in the history (a vector can come back: a revert, or a track that did not move).
"""

from __future__ import annotations

from stackci.regressions.findings import Finding, FindingKind, Size
from stackci.regressions.metrics import MetricKind
from stackci.regressions.series import Point, Series, moved_modules


def exact_changes(series: Series, metric: MetricKind) -> list[Finding]:
    points = series.measured()
    findings = []
    for before, after in zip(points, points[1:]):
        if before.identity == after.identity or before.value == after.value:
            continue
        size = Size(before.value, after.value)
        moved = ", ".join(moved_modules(before.vector, after.vector)) or "the environment"
        findings.append(Finding(
            FindingKind.CHANGE, series.key, before, after, size,
            metric.worse(before.value, after.value),
            f"{series.key.metric} {size.describe(metric.unit)} when {moved} moved",
            {"method": "exact"}))
    return findings


def determinism_bugs(series: Series, metric: MetricKind) -> list[Finding]:
    """One finding per vector that measured more than one value: its first point against the
    first point that disagreed with it."""
    first_of: dict[tuple, Point] = {}
    reported: set[tuple] = set()
    findings = []
    for point in series.measured():
        first = first_of.setdefault(point.identity, point)
        if point.value == first.value or point.identity in reported:
            continue
        reported.add(point.identity)
        size = Size(first.value, point.value)
        findings.append(Finding(
            FindingKind.DETERMINISM, series.key, first, point, size,
            metric.worse(first.value, point.value),
            f"determinism bug: the same module trees gave {series.key.metric} "
            f"{size.describe(metric.unit)} in runs {first.run_id} and {point.run_id}",
            {"method": "exact", "runs": [first.run_id, point.run_id]}))
    return findings
