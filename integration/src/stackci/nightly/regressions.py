"""The stored regressions as values, for the nightly's summary and its per-team reports and
for the CLI: the one place that reads them from the store and routes them to their owners;
two stored runs side by side; a culprit search a person starts by hand."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from stackci.errors import UsageError
from stackci.nightly.stages.regressions import owner_of
from stackci.regressions.compare import compare_profiles, compare_runs
from stackci.regressions.findings import Finding, FindingKind, Size
from stackci.regressions.metrics import OUTCOME_METRIC
from stackci.regressions.references import criterion_for
from stackci.regressions.regression import from_finding
from stackci.regressions.search import start_search
from stackci.regressions.series import Series, SeriesKey
from stackci.regressions.regression import Regression
from stackci.regressions.report import (culprit_text, render_json, render_markdown, size_text,
                                        team_reports)
from stackci.regressions.owners import owners
from stackci.regressions.stored import regressions_from_rows, series_from_history
from stackci.results.store import Store

REPORTS_DIR = "regressions"   # under a run's directory: <team>.md and <team>.json


def load(store: Store, **filters) -> list[Regression]:
    """Stored regressions with their culprit searches (filters as Store.regression_rows)."""
    rows = store.regression_rows(**filters)
    return regressions_from_rows(rows, store.bisection_rows())


def culprit_entry(regression: Regression, owner) -> dict:
    """What the summary says of one regression: series, size, module, commit, team."""
    return {"id": regression.id, "state": regression.state.value,
            "kind": regression.kind.value, "series": str(regression.series),
            "size": size_text(regression), "culprit": culprit_text(regression),
            "modules": list(regression.culprit_modules()),
            "commits": regression.culprit_commits(),
            "teams": [t.name for t in owners(regression, owner)]}


def run_regressions(store: Store, ws, run_id: int) -> list[dict]:
    """The regressions a run found, with their culprits as far as the night got."""
    owner = owner_of(ws)
    found = [r for r in store.regression_rows() if r["found_run"] == run_id]
    ids = {r["id"] for r in found}
    return [culprit_entry(r, owner) for r in load(store) if r.id in ids]


def write_team_reports(store: Store, ws, out_dir: Path) -> list[Path]:
    """<out_dir>/regressions/<team>.md and .json for every team with open regressions, and
    index.json listing them; reports of teams with none left are removed (closed)."""
    owner = owner_of(ws)
    directory = Path(out_dir) / REPORTS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.*"):
        old.unlink()
    written, index = [], []
    for report in team_reports(load(store), owner):
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", report.team.name)
        markdown, document = directory / f"{name}.md", directory / f"{name}.json"
        markdown.write_text(render_markdown(report))
        document.write_text(json.dumps(render_json(report, owner), indent=1, default=str))
        written += [markdown, document]
        index.append({"team": report.team.name, "open": len(report.regressions),
                      "markdown": markdown.name, "json": document.name})
    (directory / "index.json").write_text(json.dumps(index, indent=1))
    return written


# -- two runs side by side (`stackci compare`) --------------------------------------------------

def run_points(store: Store, run_id: int) -> tuple[dict, dict]:
    """({SeriesKey: Point}, {(track, workload, sku, precision): op profile}) of one run."""
    if store.run(run_id) is None:
        raise UsageError(f"no run {run_id} in {store.url} (see `stackci runs`)")
    points, profiles = {}, {}
    for track in sorted({c["name"] for c in store.run_combinations(run_id) if c}):
        for key, series in series_from_history(store.history(track), track).items():
            for point in series.points:
                if point.run_id != run_id:
                    continue
                points[key] = point
                job = (track, key.workload, key.sku, key.precision)
                if key.metric == OUTCOME_METRIC and point.job_id and job not in profiles:
                    profiles[job] = store.op_profile(point.job_id)
    return points, profiles


def compare_stored(store: Store, run_a: int, run_b: int) -> dict:
    """Every series either run measured, judged as one step of detection, and the per-op
    diffs of the workload jobs both ran. Runs of different tracks (master against
    release:latest) are compared series by series without the track."""
    (a, profiles_a), (b, profiles_b) = run_points(store, run_a), run_points(store, run_b)
    if not {k.track for k in a} & {k.track for k in b}:
        a, b = _untracked(a), _untracked(b)
        profiles_a, profiles_b = _untracked_jobs(profiles_a), _untracked_jobs(profiles_b)
    rows = compare_runs(a, b)
    diffs = compare_profiles(profiles_a, profiles_b)
    return {"run_a": run_a, "run_b": run_b,
            "rows": [row.to_dict() for row in rows],
            "op_diffs": [{"job": "/".join(j for j in job if j), **diff.to_dict()}
                         for job, diff in diffs.items()]}


def _untracked(points: dict) -> dict:
    return {replace(key, track=""): point for key, point in points.items()}


def _untracked_jobs(profiles: dict) -> dict:
    return {("", *job[1:]): ops for job, ops in profiles.items()}


# -- one culprit search by hand (`stackci bisect`) ----------------------------------------------

def point_of(series: Series, run_id: int, role: str):
    found = [p for p in series.points if p.run_id == run_id]
    if not found:
        runs = sorted({p.run_id for p in series.points})
        raise UsageError(f"--{role} {run_id}: series {series.key} has no point in that run "
                         f"(runs with one: {', '.join(map(str, runs[-10:])) or 'none'})")
    return found[0]


def hand_search(store: Store, key: SeriesKey, good_run: int, bad_run: int):
    """The regression a person names (series, good and bad run) and its search's start."""
    series = series_from_history(store.history(key.track), key.track).get(key)
    if series is None:
        known = sorted(str(k) for k in series_from_history(store.history(key.track),
                                                           key.track))[:5]
        raise UsageError(f"--series {key}: no such series stored (e.g. "
                         f"{', '.join(known) or 'none on track ' + repr(key.track)})")
    good, bad = point_of(series, good_run, "good"), point_of(series, bad_run, "bad")
    kind = FindingKind.OUTCOME if key.metric == OUTCOME_METRIC else FindingKind.CHANGE
    size = Size(good.value, bad.value) if kind is FindingKind.CHANGE and \
        None not in (good.value, bad.value) else None
    if kind is FindingKind.CHANGE and size is None:
        raise UsageError(f"--series {key}: runs {good_run} and {bad_run} must both measure it")
    finding = Finding(kind, key, good, bad, size, True, f"by hand: run {good_run} against "
                      f"run {bad_run}")
    regression = from_finding(finding, datetime.now())
    criterion = criterion_for(regression, series)
    return regression, start_search(good.vector, bad.vector, criterion,
                                    f"good (run {good_run})", f"bad (run {bad_run})")
