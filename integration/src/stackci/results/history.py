"""What the planner reads of past nights (nightly/planner.py): every job of the recent runs,
newest first, in one query, as small records (no metrics, no op profiles; the details only of
jobs that were not run, where the reason lives)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from stackci.model import NOT_RUN, PASSED
from stackci.results.records import JobRecord
from stackci.results.schema import JobRow, MetricRow, OpProfileRow, Run


@dataclass(frozen=True)
class PastJob:
    run_id: int
    started_at: datetime  # the run's
    key: str
    stage: str
    name: str
    sku: str | None
    status: str
    duration_s: float | None
    reason: str  # why it was not run, "" otherwise


def past_jobs(store, runs: int = 30) -> list[PastJob]:
    """Every job of the newest `runs` runs other than the publish job, newest run first."""
    with store._sessions() as session:
        run_ids = list(session.scalars(select(Run.id).order_by(Run.id.desc()).limit(runs)))
        if not run_ids:
            return []
        started = dict(session.execute(select(Run.id, Run.started_at)
                                       .where(Run.id.in_(run_ids))).all())
        rows = session.execute(
            select(JobRow.run_id, JobRow.key, JobRow.stage, JobRow.name, JobRow.sku,
                   JobRow.status, JobRow.duration_s, JobRow.id)
            .where(JobRow.run_id.in_(run_ids), JobRow.stage != "publish")
            .order_by(JobRow.run_id.desc(), JobRow.id)).all()
        not_run = [row.id for row in rows if row.status == NOT_RUN]
        reasons = {}
        for start in range(0, len(not_run), 500):
            chunk = not_run[start:start + 500]
            reasons.update({job_id: (details or {}).get("reason", "") for job_id, details in
                            session.execute(select(JobRow.id, JobRow.details)
                                            .where(JobRow.id.in_(chunk)))})
    return [PastJob(row.run_id, started[row.run_id], row.key, row.stage, row.name, row.sku,
                    row.status, row.duration_s, str(reasons.get(row.id, "")))
            for row in rows]


def reusable_result(store, stage: str, name: str, sku: str | None, inputs: str,
                    recent: int = 60) -> tuple[JobRecord, list[dict], list[dict]] | None:
    """The newest passing job of this stage, name and SKU whose inputs key is `inputs`
    (details["inputs"], nightly/reuse.py), among its `recent` newest passes, with its metrics
    and op profile; None when there is none."""
    with store._sessions() as session:
        query = (select(JobRow).where(JobRow.stage == stage, JobRow.name == name,
                                      JobRow.status == PASSED)
                 .order_by(JobRow.id.desc()).limit(recent))
        query = query.where(JobRow.sku.is_(None) if sku is None else JobRow.sku == sku)
        row = next((row for row in session.scalars(query)
                    if (row.details or {}).get("inputs") == inputs), None)
        if row is None:
            return None
        metrics = [{"name": m.name, "value": m.value, "unit": m.unit, "workload": m.workload,
                    "sku": m.sku} for m in session.scalars(
                        select(MetricRow).where(MetricRow.job_id == row.id)
                        .order_by(MetricRow.id))]
        ops = [{column.key: getattr(op, column.key) for column in op.__table__.columns
                if column.key not in ("job_id", "idx")}
               for op in session.scalars(select(OpProfileRow)
                                         .where(OpProfileRow.job_id == row.id)
                                         .order_by(OpProfileRow.idx))]
        return JobRecord.of(row), metrics, ops
