"""regressions: after a combination's workload and conformance jobs, read every series of its
track from the store, detect, and conclude: new regressions (with the per-op diff of the two
profiles), determinism bugs, outcome flips, and open regressions that are good again (fixed).

The job reads through `ctx.resources.results` (a HistoryReader) and returns what it concluded
in `Outcome.regressions`; the executor stores it. Only findings the night itself brought are
raised: a change between two older runs was the business of the night that measured it.
"""

from __future__ import annotations

from datetime import datetime, timezone

from stackci.model import NOT_APPLICABLE, NOT_RUN, PASSED, JobContext, Outcome
from stackci.owners import FILENAME, load_owners
from stackci.regressions.changepoint import DEFAULT, REACH
from stackci.regressions.detect import detect
from stackci.regressions.findings import Finding, FindingKind
from stackci.regressions.opdiff import op_diff
from stackci.regressions.references import back_to_good
from stackci.regressions.regression import (OPEN_STATES, Regression, State, from_finding,
                                            new_findings, transition)
from stackci.regressions.stored import (event_rows, found_event, regression_row,
                                        regressions_from_rows, series_from_history)

# Which figure of a job carries the culprit search that its sibling figures share (one change
# of cost moves cycles, latency and throughput together: one search, not three).
SEARCH_ORDER = ("total_cycles", "latency_us", "outcome", "ops", "peak_device_bytes",
                "conformance_passed")


def now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def owner_of(ws):
    """The OWNERS file's `owner_of_module`, or nobody when the repository has none."""
    path = ws.repo / FILENAME
    if not path.is_file():
        return lambda module: None
    return load_owners(path).owner_of_module


def action(combination, params: dict):
    def run(ctx: JobContext) -> Outcome:
        reader = ctx.resources.results
        if reader is None:
            return Outcome(NOT_RUN, "not applicable: no results store to read",
                           details={"reason": NOT_APPLICABLE})
        return conclude(reader, combination.name, owner_of(ctx.resources.ws))
    return run


def recent(finding: Finding, series, run_id: int) -> bool:
    """Whether this night brought the finding: an exact change, determinism bug or flip at
    this run; a change point within the runs a change point needs to be seen."""
    if finding.evidence.get("method") != "pelt+mannwhitney":
        return finding.first_bad.run_id == run_id
    runs = [p.run_id for p in series.measured()]
    return run_id in runs and finding.first_bad.run_id in runs[-(DEFAULT.min_size + REACH + 1):]


def worth_raising(finding: Finding) -> bool:
    return finding.regressed or finding.kind is FindingKind.DETERMINISM


def conclude(reader, track: str, owners, at: datetime | None = None) -> Outcome:
    at = at or now()
    run_id = reader.run_id
    series_of = series_from_history(reader.history(track), track)
    touched = {key: s for key, s in series_of.items()
               if any(p.run_id == run_id for p in s.points)}
    rows = reader.regression_rows(track=track)
    known = regressions_from_rows(rows, reader.bisection_rows([r["id"] for r in rows]))
    findings = [f for key, series in sorted(touched.items()) for f in detect(series)
                if worth_raising(f) and recent(f, series, run_id)]
    fresh = [from_finding(f, at, profile_diff(reader, f))
             for f in new_findings(findings, known, touched)]
    fixed = []
    for regression in known:
        series = touched.get(regression.series)
        if regression.state not in OPEN_STATES or series is None:
            continue
        good = back_to_good(regression, series)
        if good is not None:
            fixed.append(transition(regression, State.FIXED, at, "nightly",
                                    f"run {good.run_id} measures good again"))
    shared = search_groups(fresh)
    changes = {"regressions": [regression_row(r, owners, shared.get(r.id)) for r in fresh] +
               [regression_row(r, owners, row_of(rows, r.id).get("search_of")) for r in fixed],
               "events": [found_event(r, at) for r in fresh] +
               [e for r in fixed for e in event_rows(r, len(r.history) - 1)]}
    message = describe(fresh, fixed)
    return Outcome(PASSED, message, details={
        "series": len(touched), "new": [r.id for r in fresh], "fixed": [r.id for r in fixed]},
        regressions=changes if fresh or fixed else None)


def row_of(rows, regression_id: str) -> dict:
    return next((r for r in rows if r["id"] == regression_id), {})


def profile_diff(reader, finding: Finding):
    """The per-op diff of the two workload jobs a finding compares (None elsewhere)."""
    good, bad = finding.last_good.job_id, finding.first_bad.job_id
    if not finding.series.workload or ":" in finding.series.workload or None in (good, bad):
        return None
    before, after = reader.op_profile(good), reader.op_profile(bad)
    return op_diff(before, after) if before or after else None


def search_groups(fresh: list[Regression]) -> dict[str, str]:
    """regression id -> the id of the regression whose culprit search it shares: the
    figures of one job that moved between the same two runs share one search."""
    groups: dict[tuple, list[Regression]] = {}
    for regression in fresh:
        if regression.kind is FindingKind.DETERMINISM:
            continue   # the same vector: there is no culprit to search for
        key = regression.series
        groups.setdefault((key.track, key.workload, key.sku, key.precision,
                           regression.last_good.run_id, regression.first_bad.run_id),
                          []).append(regression)
    shared = {}
    for members in groups.values():
        members.sort(key=lambda r: (SEARCH_ORDER.index(r.series.metric)
                                    if r.series.metric in SEARCH_ORDER else len(SEARCH_ORDER),
                                    r.series.metric))
        shared.update({r.id: members[0].id for r in members[1:]})
    return shared


def describe(fresh: list[Regression], fixed: list[Regression]) -> str:
    if not fresh and not fixed:
        return "no new regression"
    parts = []
    if fresh:
        parts.append(f"{len(fresh)} new: " + "; ".join(f"{r.id} {r.series}" for r in fresh[:5])
                     + (" ..." if len(fresh) > 5 else ""))
    if fixed:
        parts.append(f"{len(fixed)} fixed: " + ", ".join(r.id for r in fixed))
    return "; ".join(parts)
