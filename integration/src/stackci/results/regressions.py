"""The regressions' rows in the store: regressions, their state changes and culprit searches,
and the history detection reads (a track's figures, job outcomes and version vectors).

Plain dicts in and out: the store stays below `stackci.regressions` (import-linter), which
turns these rows into its Series and Regression values (regressions/stored.py). A mixin of
`Store`, so it shares the store's sessions and its one write lock.
"""

from __future__ import annotations

from pathlib import PurePath

from sqlalchemy import select

from stackci.errors import UsageError
from stackci.results.schema import (BisectionRow, CombinationModule, CombinationRow, JobRow,
                                    MetricRow, RegressionEventRow, RegressionRow, Run, utcnow)

# The stages whose jobs make series; their job's own outcome and duration are series too.
SERIES_STAGES = ("workloads", "conformance", "tests")


def _row(row) -> dict:
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}


class RegressionStore:
    """Store methods for the regressions (mixed into results.store.Store)."""

    # -- writing -----------------------------------------------------------------------------

    def record_regression_changes(self, run_id: int | None, changes: dict) -> None:
        """One transaction: `regressions` (rows to insert or replace: id, state, kind, series
        fields, data...), `events` (state changes) and `bisections` (search states)."""
        with self._write_lock, self._sessions.begin() as session:
            for entry in changes.get("regressions", ()):
                row = session.get(RegressionRow, entry["id"])
                fields = {k: v for k, v in entry.items() if k != "id"}
                if row is None:
                    session.add(RegressionRow(id=entry["id"], found_run=run_id, **fields))
                else:
                    for name, value in fields.items():
                        setattr(row, name, value)
                    row.updated_at = utcnow()
            session.flush()
            for event in changes.get("events", ()):
                session.add(RegressionEventRow(run_id=run_id, **event))
            for entry in changes.get("bisections", ()):
                row = session.get(BisectionRow, entry["regression_id"])
                if row is None:
                    session.add(BisectionRow(updated_run=run_id, **entry))
                else:
                    for name, value in entry.items():
                        setattr(row, name, value)
                    row.updated_at, row.updated_run = utcnow(), run_id

    # -- reading -----------------------------------------------------------------------------

    def regression_rows(self, *, state: str | tuple | None = None, team: str | None = None,
                        track: str | None = None) -> list[dict]:
        """Regressions, newest first; `state` one state or several, `team` an owning team."""
        with self._sessions() as session:
            query = select(RegressionRow).order_by(RegressionRow.found_at.desc(),
                                                   RegressionRow.id)
            if state is not None:
                states = (state,) if isinstance(state, str) else tuple(state)
                query = query.where(RegressionRow.state.in_(states))
            if track is not None:
                query = query.where(RegressionRow.track == track)
            rows = [_row(r) for r in session.scalars(query)]
        return [r for r in rows if team is None or team in (r["teams"] or [])]

    def regression_row(self, regression_id: str) -> dict:
        with self._sessions() as session:
            row = session.get(RegressionRow, regression_id)
            if row is None:
                known = session.scalars(select(RegressionRow.id).order_by(
                    RegressionRow.found_at.desc()).limit(5)).all()
                raise UsageError(f"no regression {regression_id!r} (newest: "
                                 f"{', '.join(known) or 'none stored'})")
            return _row(row)

    def regression_events(self, regression_id: str) -> list[dict]:
        with self._sessions() as session:
            return [_row(r) for r in session.scalars(
                select(RegressionEventRow).where(RegressionEventRow.regression_id ==
                                                 regression_id)
                .order_by(RegressionEventRow.id))]

    def bisection_rows(self, regression_ids=None) -> dict[str, dict]:
        """regression id -> its search row (state: the CulpritSearch's dict)."""
        with self._sessions() as session:
            query = select(BisectionRow)
            if regression_ids is not None:
                query = query.where(BisectionRow.regression_id.in_(list(regression_ids)))
            return {r.regression_id: _row(r) for r in session.scalars(query)}

    def history(self, track: str) -> dict:
        """What detection reads for one track (a combination name), oldest run first:
        `points` (one per stored figure, job outcome and job duration: run_id, run_time,
        job_id, stage, workload, sku, precision, metric, value, status, kind, message,
        combination_id), `vectors` ({combination_id: {module: {version, commit,
        tree_hash}}}) and `environments` ({"run:combination": lock hash of its build})."""
        with self._sessions() as session:
            combos = dict(session.execute(select(CombinationRow.id, CombinationRow.name)
                                          .where(CombinationRow.name == track)).all())
            if not combos:
                return {"points": [], "vectors": {}, "environments": {}}
            jobs = list(session.execute(
                select(JobRow, Run.started_at).join(Run, Run.id == JobRow.run_id)
                .where(JobRow.combination_id.in_(list(combos)))
                .order_by(Run.started_at, Run.id, JobRow.id)))
            metrics: dict[int, list] = {}
            for m in session.scalars(select(MetricRow).where(
                    MetricRow.combination_id.in_(list(combos)))):
                metrics.setdefault(m.job_id, []).append(m)
            vectors: dict[int, dict] = {}
            for m in session.scalars(select(CombinationModule).where(
                    CombinationModule.combination_id.in_(list(combos)))):
                vectors.setdefault(m.combination_id, {})[m.module] = {
                    "version": m.version, "commit": m.commit, "tree_hash": m.tree_hash}
        points, environments = [], {}
        for job, started in jobs:
            details = job.details or {}
            if job.stage == "build" and details.get("environment"):
                environments[f"{job.run_id}:{job.combination_id}"] = \
                    PurePath(details["environment"]).name
            if job.stage not in SERIES_STAGES:
                continue
            base = {"run_id": job.run_id, "run_time": started, "job_id": job.id,
                    "stage": job.stage, "job_name": job.name, "status": job.status,
                    "kind": str(details.get("kind", "")), "message": job.message or "",
                    "precision": str(details.get("precision", "")),
                    "combination_id": job.combination_id, "job_sku": job.sku or ""}
            # Run-level jobs (a module's tests, the node suite) are named by stage and name.
            workload = job.name if job.stage == "workloads" else f"{job.stage}:{job.name}"
            points.append({**base, "workload": workload, "sku": job.sku or "",
                           "metric": "outcome", "value": None})
            if job.duration_s is not None and job.status in ("passed", "failed"):
                points.append({**base, "workload": workload, "sku": job.sku or "",
                               "metric": "duration_s", "value": job.duration_s})
            for m in metrics.get(job.id, ()):
                owner = m.workload or ("" if job.stage == "conformance" else workload)
                points.append({**base, "workload": owner, "sku": m.sku or "",
                               "metric": m.name, "value": m.value})
        # A job that crashed stored no precision: it is the workload's, as its other nights say.
        precision = {(p["workload"], p["sku"]): p["precision"] for p in points if p["precision"]}
        for point in points:
            point["precision"] = point["precision"] or \
                precision.get((point["workload"], point["sku"]), "")
        return {"points": points, "vectors": vectors, "environments": environments}

    def plan_params(self, run_id: int, stage: str, name: str) -> dict | None:
        """The parameters a run's stored plan kept for its first job of `stage` named `name`
        (a workload's full record, the node suite's spec): what a probe runs again."""
        run = self.run(run_id)
        for job in (run.plan.get("jobs") or []) if run else []:
            if isinstance(job, dict) and job.get("stage") == stage and job.get("name") == name:
                return dict(job.get("params") or {})
        return None


class HistoryReader:
    """The reads the nightly's regressions and bisect jobs make, for one run: handed to them
    through the run's resources, since stages do not import the store (and write nothing)."""

    def __init__(self, store, run_id: int):
        self._store, self.run_id = store, run_id

    def history(self, track: str) -> dict:
        return self._store.history(track)

    def regression_rows(self, **filters) -> list[dict]:
        return self._store.regression_rows(**filters)

    def bisection_rows(self, regression_ids=None) -> dict[str, dict]:
        return self._store.bisection_rows(regression_ids)

    def op_profile(self, job_id: int) -> list[dict]:
        return self._store.op_profile(job_id)

    def plan_params(self, run_id: int, stage: str, name: str) -> dict | None:
        return self._store.plan_params(run_id, stage, name)

    # The analysis stage's reads (results/analysis.py): earlier nights' plans and documents.

    def previous_plan(self, workload: str, sku: str, precision: str) -> dict | None:
        return self._store.previous_plan(workload, sku, precision, self.run_id)

    def analysis_documents(self, **filters) -> list[dict]:
        return self._store.analysis_documents(**filters)

    def latest_analyses(self, before_run: int | None = None):
        return self._store.latest_analyses(before_run)

    def design_sweeps(self, **filters) -> list[dict]:
        return self._store.design_sweeps(**filters)
