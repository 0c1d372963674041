"""Two runs side by side (`stackci compare RUN_A RUN_B`): every series either run measured,
judged as detection would judge one step, and the per-op diff of every workload job."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from stackci.regressions.findings import Size
from stackci.regressions.metrics import Kind, lookup
from stackci.regressions.opdiff import OpDiff, op_diff
from stackci.regressions.series import BAD_STATUSES, PASSED, Point, SeriesKey


@dataclass(frozen=True)
class ComparisonRow:
    series: SeriesKey
    a: Point | None
    b: Point | None
    size: Size | None
    verdict: str    # same | regressed | improved | determinism-bug | noisy | flipped | only-a..

    def to_dict(self) -> dict:
        return {"series": str(self.series), "a": self.a.value if self.a else None,
                "b": self.b.value if self.b else None,
                "a_status": self.a.status if self.a else None,
                "b_status": self.b.status if self.b else None,
                "size": self.size.to_dict() if self.size else None, "verdict": self.verdict}


def judge_step(key: SeriesKey, a: Point, b: Point) -> tuple[Size | None, str]:
    metric = lookup(key.metric)
    if metric is None:
        return None, "unregistered"
    if metric.kind is Kind.OUTCOME:
        flipped = a.status == PASSED and b.status in BAD_STATUSES
        fixed = a.status in BAD_STATUSES and b.status == PASSED
        return None, "flipped" if flipped else ("fixed" if fixed else "same")
    if a.value is None or b.value is None:
        return None, "not measured"
    size = Size(a.value, b.value)
    if a.value == b.value:
        return size, "same"
    if metric.kind is Kind.WALL_CLOCK:
        # One sample each: a trend needs the series (detection), not two points.
        return size, "noisy"
    if a.identity == b.identity:
        return size, "determinism-bug"
    return size, "regressed" if metric.worse(a.value, b.value) else "improved"


def compare_runs(a: Mapping[SeriesKey, Point], b: Mapping[SeriesKey, Point]
                 ) -> list[ComparisonRow]:
    rows = []
    for key in sorted(set(a) | set(b)):
        pa, pb = a.get(key), b.get(key)
        if pa is None or pb is None:
            rows.append(ComparisonRow(key, pa, pb, None, "only-b" if pa is None else "only-a"))
            continue
        size, verdict = judge_step(key, pa, pb)
        rows.append(ComparisonRow(key, pa, pb, size, verdict))
    return rows


def compare_profiles(a: Mapping[tuple, Sequence[Mapping]], b: Mapping[tuple, Sequence[Mapping]]
                     ) -> dict[tuple, OpDiff]:
    """Per-op diffs of the jobs both runs ran, keyed as given (track, workload, sku,
    precision); only the jobs whose profiles differ."""
    diffs = {}
    for job in sorted(set(a) & set(b)):
        diff = op_diff(a[job], b[job])
        if diff.changes:
            diffs[job] = diff
    return diffs
