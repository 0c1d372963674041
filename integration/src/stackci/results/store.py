"""The results store: every run, combination, job, metric and op profile, in one database.

SQLite in the working directory by default, any SQLAlchemy URL (PostgreSQL for a team) otherwise;
only portable SQL is used. Each job result is committed as the job ends, from whichever worker
thread ran it, so a killed run loses at most the jobs that were running. Runs and jobs come out
as typed records (results/records.py).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import case, create_engine, event, func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from stackci.errors import StackciError, UsageError
from stackci.model import JOB_STATUSES, RAN_THROUGH_STATUSES, UNFINISHED_RUN_STATUSES
from stackci.results import migrate
from stackci.results.journal import JournalStore
from stackci.results.leases import LeaseStore
from stackci.results.records import JobRecord, RunRecord
from stackci.results.analysis import AnalysisStore
from stackci.results.regressions import RegressionStore
from stackci.results.series import SeriesStore
from stackci.results.sqlite import BUSY_TIMEOUT_S, enable_wal
from stackci.results.schema import (Base, CombinationLock, CombinationModule, CombinationRow,
                                    ContractVerdictRow, JobRow, MetricRow, OpProfileRow, Run,
                                    SkuRow, utcnow)


def _with_attempt(job: JobRow) -> dict:
    """A job starting again (a resumed run) keeps what its earlier attempt ended with, so a
    rerun never hides that the first attempt was lost or interrupted."""
    details = dict(job.details or {})
    if job.status in ("passed", "failed", "error", "timeout") or details.get("reason"):
        details["attempts"] = [*details.get("attempts", []), {
            "status": job.status, "message": job.message, "reason": details.get("reason", ""),
            "finished_at": job.finished_at.isoformat() if job.finished_at else None}]
    return {"attempts": details["attempts"]} if details.get("attempts") else {}


def _row_dict(row: Base) -> dict[str, Any]:
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}


class Store(RegressionStore, AnalysisStore, LeaseStore, JournalStore, SeriesStore):
    """The results database. Methods open their own short sessions, so one Store is safe to
    share between worker threads; writes are serialised by a lock (SQLite has one writer)."""

    @classmethod
    def open(cls, ws, url: str | None = None) -> "Store":
        """The store at `url` (a --db option), else the workspace's (STACKCI_DB or SQLite)."""
        return cls(url or ws.db_url)

    def __init__(self, url: str):
        self.url = url
        self._write_lock = threading.Lock()
        try:
            if url.startswith("sqlite:///"):
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
                # timeout: the busy timeout from the open on, so the dialect's first reads
                # (before enable_wal sets it again) wait as long as the rest.
                self.engine = create_engine(url, connect_args={
                    "check_same_thread": False, "timeout": BUSY_TIMEOUT_S})
                event.listen(self.engine, "connect", enable_wal)
            else:
                self.engine = create_engine(url, pool_pre_ping=True)
            migrate.upgrade(self.engine, url)  # schema changes are Alembic revisions
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise UsageError(f"cannot open results database {url}: {exc}".splitlines()[0]) from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    def _insert_if_absent(self, change):
        """`change(session)` in one write transaction, its result. It creates a row only if
        none has its key yet (a combination, a lock, a SKU): another process sharing the
        database (a second nightly) may insert the same key between the check and the insert;
        then this transaction fails on the unique key and runs again, finding that row."""
        for attempt in range(3):
            try:
                with self._write_lock, self._sessions.begin() as session:
                    return change(session)
            except IntegrityError:
                if attempt == 2:
                    raise

    # -- writing -----------------------------------------------------------------------------

    def start_run(self, *, tier: str, budget_s: float, plan: dict, host: str = "",
                  harness_version: str = "") -> int:
        with self._write_lock, self._sessions.begin() as session:
            run = Run(tier=tier, budget_s=budget_s, plan=plan, host=host,
                      harness_version=harness_version, status="running", summary={})
            session.add(run)
            session.flush()
            return run.id

    def update_run(self, run_id: int, **fields) -> None:
        with self._write_lock, self._sessions.begin() as session:
            run = session.get(Run, run_id)
            for name, value in fields.items():
                setattr(run, name, value)

    def finish_run(self, run_id: int, status: str, summary: dict) -> None:
        self.update_run(run_id, status=status, summary=summary, finished_at=utcnow())

    def record_combination(self, name: str, key: str, modules: dict[str, dict]) -> int:
        """The id of the combination `key`, created with its version vector if new.
        `modules` maps module -> {version, commit, tree_hash}."""
        return self._insert_if_absent(lambda session: self._combination_row(session, name, key,
                                                                            modules))

    @staticmethod
    def _combination_row(session: Session, name: str, key: str, modules: dict) -> int:
        found = session.scalar(select(CombinationRow).where(CombinationRow.key == key))
        if found is not None:
            return found.id
        row = CombinationRow(name=name, key=key)
        session.add(row)
        session.flush()
        for module, info in modules.items():
            session.add(CombinationModule(
                combination_id=row.id, module=module, version=str(info["version"]),
                commit=str(info["commit"]), tree_hash=str(info["tree_hash"])))
        return row.id

    def add_jobs(self, run_id: int, jobs: list[dict]) -> None:
        """Create the planned jobs of a run (status not_run until they start); jobs already
        present (a resumed run) are left as they are."""
        with self._write_lock, self._sessions.begin() as session:
            existing = set(session.scalars(select(JobRow.key).where(JobRow.run_id == run_id)))
            for job in jobs:
                if job["key"] not in existing:
                    session.add(JobRow(run_id=run_id, status="not_run",
                                       message="not started", details={}, **job))

    def start_job(self, run_id: int, key: str, *, estimate_s: float | None = None) -> None:
        with self._write_lock, self._sessions.begin() as session:
            job = self._job(session, run_id, key)
            job.details = _with_attempt(job)
            job.status, job.started_at, job.finished_at = "running", utcnow(), None
            job.duration_s, job.message, job.estimate_s = None, "", estimate_s

    def finish_job(self, run_id: int, key: str, *, status: str, message: str = "",
                   duration_s: float | None = None, details: dict | None = None,
                   metrics: list[dict] = (), ops: list[dict] = ()) -> int:
        """Store a job's outcome with its metrics and op profile, in one transaction.
        Metrics are `{name, value, unit, workload?, sku?}`; ops as the stack's profile."""
        if status not in JOB_STATUSES:
            raise ValueError(f"job status {status!r} is not one of {JOB_STATUSES}")
        with self._write_lock, self._sessions.begin() as session:
            job = self._job(session, run_id, key)
            attempts = (job.details or {}).get("attempts")
            job.status, job.message, job.details = status, message, {
                **(details or {}), **({"attempts": attempts} if attempts else {})}
            job.finished_at, job.duration_s = utcnow(), duration_s
            # A redone job (resume) replaces what an earlier attempt left.
            session.query(MetricRow).filter(MetricRow.job_id == job.id).delete()
            session.query(OpProfileRow).filter(OpProfileRow.job_id == job.id).delete()
            for metric in metrics:
                session.add(MetricRow(
                    job_id=job.id, run_id=run_id, combination_id=job.combination_id,
                    workload=metric.get("workload"), sku=metric.get("sku", job.sku),
                    name=metric["name"], value=float(metric["value"]),
                    unit=metric.get("unit", "")))
            for idx, op in enumerate(ops):
                session.add(OpProfileRow(
                    job_id=job.id, idx=idx, name=str(op.get("name", "")),
                    op_type=str(op.get("op_type", "")), kernel=str(op.get("kernel") or ""),
                    fusion=str(op.get("fusion") or ""), cycles=float(op.get("cycles") or 0),
                    macs=float(op.get("macs") or 0), bytes_read=float(op.get("bytes_read") or 0),
                    bytes_written=float(op.get("bytes_written") or 0),
                    unit=str(op.get("unit") or ""),
                    array_utilization=float(op.get("array_utilization") or 0)))
            return job.id

    def upsert_sku(self, name: str, data: dict) -> None:
        def change(session: Session) -> None:
            row = session.get(SkuRow, name)
            if row is None:
                session.add(SkuRow(name=name, data=data))
            else:
                row.data = data
        self._insert_if_absent(change)

    def record_lock(self, combination_key: str, lock_hash: str, lock: dict) -> None:
        """Store a built environment's lock with its combination (once per lock)."""
        def change(session: Session) -> None:
            combination = session.scalar(select(CombinationRow)
                                         .where(CombinationRow.key == combination_key))
            if combination is None:
                raise StackciError(f"no combination {combination_key} to lock")
            if session.get(CombinationLock, (combination.id, lock_hash)) is None:
                session.add(CombinationLock(combination_id=combination.id, lock_hash=lock_hash,
                                            lock=lock))
        self._insert_if_absent(change)

    def locks(self, combination_id: int) -> list[dict]:
        with self._sessions() as session:
            rows = session.scalars(select(CombinationLock)
                                   .where(CombinationLock.combination_id == combination_id)
                                   .order_by(CombinationLock.created_at))
            return [_row_dict(row) for row in rows]

    def next_verdict_batch(self) -> int:
        with self._sessions() as session:
            return (session.scalar(select(func.max(ContractVerdictRow.batch))) or 0) + 1

    def add_verdict(self, **fields) -> int:
        with self._write_lock, self._sessions.begin() as session:
            row = ContractVerdictRow(**fields)
            session.add(row)
            session.flush()
            return row.id

    def cached_verdict(self, tests_hash: str, environment_key: str) -> dict | None:
        """The newest verdict that ran these consumer tests in this provider environment
        (errors are not reused: they may be transient)."""
        with self._sessions() as session:
            row = session.scalar(
                select(ContractVerdictRow)
                .where(ContractVerdictRow.tests_hash == tests_hash,
                       ContractVerdictRow.environment_key == environment_key,
                       ContractVerdictRow.status.in_(("passed", "failed")),
                       ContractVerdictRow.cached_from.is_(None))
                .order_by(ContractVerdictRow.id.desc()).limit(1))
            return _row_dict(row) if row else None

    def verdicts(self, batch: int | None = None) -> list[dict]:
        """The verdicts of one batch (default: the newest), in the order they were stored."""
        with self._sessions() as session:
            if batch is None:
                batch = session.scalar(select(func.max(ContractVerdictRow.batch)))
            rows = session.scalars(select(ContractVerdictRow)
                                   .where(ContractVerdictRow.batch == batch)
                                   .order_by(ContractVerdictRow.id))
            return [_row_dict(row) for row in rows]

    def verdict_for(self, interface: str, consumer_tree: str, provider_tree: str) -> dict | None:
        """The newest verdict of a pair, by the two module trees."""
        with self._sessions() as session:
            row = session.scalar(
                select(ContractVerdictRow)
                .where(ContractVerdictRow.interface == interface,
                       ContractVerdictRow.consumer_tree == consumer_tree,
                       ContractVerdictRow.provider_tree == provider_tree,
                       ContractVerdictRow.status != "error")
                .order_by(ContractVerdictRow.id.desc()).limit(1))
            return _row_dict(row) if row else None

    def measured_vectors(self) -> list[dict]:
        """`{run_id, combination_id, trees: {module: tree_hash}}` of every (run, combination)
        whose workload jobs all passed (at least one): the **measured** evidence. One GROUP
        BY (a year of nights is 200k workload jobs, each read one by one before)."""
        failed = func.sum(case((JobRow.status == "passed", 0), else_=1))
        with self.engine.connect() as conn:
            passed = conn.execute(select(JobRow.run_id, JobRow.combination_id)
                                  .where(JobRow.stage == "workloads",
                                         JobRow.combination_id.is_not(None))
                                  .group_by(JobRow.run_id, JobRow.combination_id)
                                  .having(failed == 0)
                                  .order_by(JobRow.run_id, JobRow.combination_id)).all()
            trees: dict[int, dict[str, str]] = {cid: {} for _, cid in passed}
            for cid, module, tree in conn.execute(
                    select(CombinationModule.combination_id, CombinationModule.module,
                           CombinationModule.tree_hash)
                    .where(CombinationModule.combination_id.in_(sorted(trees)))):
                trees[cid][module] = tree
        return [{"run_id": run_id, "combination_id": cid, "trees": trees[cid]}
                for run_id, cid in passed]

    @staticmethod
    def _job(session: Session, run_id: int, key: str) -> JobRow:
        job = session.scalar(select(JobRow).where(JobRow.run_id == run_id, JobRow.key == key))
        if job is None:
            raise StackciError(f"run {run_id} has no job {key!r}")
        return job

    # -- reading -----------------------------------------------------------------------------

    def run(self, run_id: int) -> RunRecord | None:
        with self._sessions() as session:
            run = session.get(Run, run_id)
            return RunRecord.of(run) if run else None

    def runs(self, limit: int | None = None, tier: str | None = None) -> list[RunRecord]:
        """Runs (of `tier`, if given), newest first, each with `counts` (jobs per status)."""
        with self._sessions() as session:
            query = select(Run).order_by(Run.id.desc())
            if tier is not None:
                query = query.where(Run.tier == tier)
            if limit:
                query = query.limit(limit)
            rows = list(session.scalars(query))
            counts: dict[int, dict[str, int]] = {}
            tally = select(JobRow.run_id, JobRow.status, func.count()).group_by(
                JobRow.run_id, JobRow.status)
            if limit or tier is not None:
                # only the runs asked for: a year of jobs is hundreds of thousands
                tally = tally.where(JobRow.run_id.in_([run.id for run in rows]))
            tally = session.execute(tally)
            for run_id, status, count in tally:
                counts.setdefault(run_id, {})[status] = count
            return [RunRecord.of(run, counts.get(run.id, {})) for run in rows]

    def latest_unfinished_run(self) -> RunRecord | None:
        with self._sessions() as session:
            run = session.scalar(select(Run).where(Run.status.in_(UNFINISHED_RUN_STATUSES))
                                 .order_by(Run.id.desc()).limit(1))
            return RunRecord.of(run) if run else None

    def jobs(self, run_id: int) -> list[JobRecord]:
        with self._sessions() as session:
            rows = session.scalars(select(JobRow).where(JobRow.run_id == run_id)
                                   .order_by(JobRow.id))
            return [JobRecord.of(row) for row in rows]

    def job(self, job_id: int) -> JobRecord | None:
        with self._sessions() as session:
            row = session.get(JobRow, job_id)
            return JobRecord.of(row) if row else None

    def combination(self, combination_id: int) -> dict | None:
        """`{id, name, key, created_at, modules: {module: {version, commit, tree_hash}}}`."""
        with self._sessions() as session:
            row = session.get(CombinationRow, combination_id)
            if row is None:
                return None
            found = _row_dict(row)
            modules = session.scalars(select(CombinationModule)
                                      .where(CombinationModule.combination_id == row.id))
            found["modules"] = {m.module: {"version": m.version, "commit": m.commit,
                                           "tree_hash": m.tree_hash} for m in modules}
            return found

    def run_combinations(self, run_id: int) -> list[dict]:
        with self._sessions() as session:
            ids = session.scalars(select(JobRow.combination_id).distinct()
                                  .where(JobRow.run_id == run_id,
                                         JobRow.combination_id.is_not(None)))
            ids = sorted(ids)
        return [self.combination(cid) for cid in ids]

    def metrics(self, run_id: int | None = None, job_id: int | None = None) -> list[dict]:
        with self._sessions() as session:
            query = select(MetricRow).order_by(MetricRow.id)
            if run_id is not None:
                query = query.where(MetricRow.run_id == run_id)
            if job_id is not None:
                query = query.where(MetricRow.job_id == job_id)
            return [_row_dict(row) for row in session.scalars(query)]

    def op_profile(self, job_id: int) -> list[dict]:
        with self._sessions() as session:
            rows = session.scalars(select(OpProfileRow).where(OpProfileRow.job_id == job_id)
                                   .order_by(OpProfileRow.idx))
            return [_row_dict(row) for row in rows]

    def skus(self) -> dict[str, dict]:
        with self._sessions() as session:
            return {row.name: row.data for row in session.scalars(select(SkuRow))}

    def estimate(self, stage: str, name: str, sku: str | None, *, recent: int = 5
                 ) -> float | None:
        """Mean duration of the same job (stage, name, SKU) over its `recent` last runs that
        went the whole way (passed, failed or timed out), or None without history."""
        with self._sessions() as session:
            query = (select(JobRow.duration_s)
                     .where(JobRow.stage == stage, JobRow.name == name,
                            JobRow.status.in_(RAN_THROUGH_STATUSES),
                            JobRow.duration_s.is_not(None))
                     .order_by(JobRow.finished_at.desc()).limit(recent))
            query = query.where(JobRow.sku.is_(None) if sku is None else JobRow.sku == sku)
            durations = list(session.scalars(query))
        return sum(durations) / len(durations) if durations else None
