"""The results database's tables (SQLAlchemy); only portable SQL, so SQLite and PostgreSQL
hold the same schema. Any change here comes with one Alembic revision in migrations/versions/
(docs/design.md, "The results store's schema"); a test holds the two equal."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class SchemaVersion(Base):
    """The version mark of the harness before Alembic (1), frozen at 2 by revision 0002 so an
    older harness refuses an upgraded database; alembic_version is the schema's place now."""

    __tablename__ = "schema_version"
    version: Mapped[int] = mapped_column(Integer, primary_key=True)


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="running")
    tier: Mapped[str] = mapped_column(String(40))
    budget_s: Mapped[float] = mapped_column(Float)
    host: Mapped[str] = mapped_column(String(255), default="")
    harness_version: Mapped[str] = mapped_column(String(40), default="")
    plan: Mapped[dict] = mapped_column(JSON, default=dict)
    summary: Mapped[dict] = mapped_column(JSON, default=dict)


class CombinationRow(Base):
    __tablename__ = "combinations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CombinationModule(Base):
    __tablename__ = "combination_modules"
    combination_id: Mapped[int] = mapped_column(ForeignKey("combinations.id"), primary_key=True)
    module: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(64))
    commit: Mapped[str] = mapped_column(String(64))
    tree_hash: Mapped[str] = mapped_column(String(64))


class JobRow(Base):
    __tablename__ = "jobs"
    # ix_jobs_stage (migration 0008): the jobs of one stage without reading a year's rows
    # (the compatibility matrix's measured vectors), from the index alone, in its order.
    __table_args__ = (UniqueConstraint("run_id", "key"),
                      Index("ix_jobs_stage", "stage", "run_id", "combination_id", "status"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    combination_id: Mapped[int | None] = mapped_column(ForeignKey("combinations.id"),
                                                       nullable=True)
    key: Mapped[str] = mapped_column(String(400))
    stage: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(255))
    sku: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="not_run")
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    estimate_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict] = mapped_column(JSON, default=dict)


class MetricRow(Base):
    __tablename__ = "metrics"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    combination_id: Mapped[int | None] = mapped_column(ForeignKey("combinations.id"),
                                                       nullable=True)
    workload: Mapped[str | None] = mapped_column(String(255), nullable=True)
    sku: Mapped[str | None] = mapped_column(String(64), nullable=True)
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(32), default="")

    # The dashboard's newest values (migration 0006) and trends, read from the index alone
    # (0007).
    __table_args__ = (Index("ix_metrics_series", "name", "workload", "sku"),
                      Index("ix_metrics_trend", "name", "run_id", "workload", "sku",
                            "combination_id", "value", "job_id", "unit"))


class OpProfileRow(Base):
    __tablename__ = "op_profiles"
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    op_type: Mapped[str] = mapped_column(String(64))
    kernel: Mapped[str] = mapped_column(String(255), default="")
    fusion: Mapped[str] = mapped_column(String(255), default="")
    cycles: Mapped[float] = mapped_column(Float, default=0)
    macs: Mapped[float] = mapped_column(Float, default=0)
    bytes_read: Mapped[float] = mapped_column(Float, default=0)
    bytes_written: Mapped[float] = mapped_column(Float, default=0)
    unit: Mapped[str] = mapped_column(String(32), default="")
    array_utilization: Mapped[float] = mapped_column(Float, default=0)


class ContractVerdictRow(Base):
    """The verified verdict of one pair along a contract edge, per `contracts verify` batch.

    A pair whose consumer tests and provider environment are unchanged is not re-run: its row
    in a later batch copies the verdict and names the row it came from (`cached_from`)."""

    __tablename__ = "contract_verdicts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch: Mapped[int] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    interface: Mapped[str] = mapped_column(String(64))
    consumer: Mapped[str] = mapped_column(String(64))
    consumer_version: Mapped[str] = mapped_column(String(64))
    consumer_label: Mapped[str] = mapped_column(String(80))
    consumer_commit: Mapped[str] = mapped_column(String(64))
    consumer_tree: Mapped[str] = mapped_column(String(64), index=True)
    tests_commit: Mapped[str] = mapped_column(String(64), default="")
    tests_hash: Mapped[str] = mapped_column(String(64), default="")
    provider: Mapped[str] = mapped_column(String(64))
    provider_version: Mapped[str] = mapped_column(String(64))
    provider_label: Mapped[str] = mapped_column(String(80))
    provider_commit: Mapped[str] = mapped_column(String(64))
    provider_tree: Mapped[str] = mapped_column(String(64), index=True)
    environment_key: Mapped[str] = mapped_column(String(64), default="")
    declared: Mapped[bool | None] = mapped_column(nullable=True)
    status: Mapped[str] = mapped_column(String(20))  # passed | failed | error | untested
    message: Mapped[str] = mapped_column(Text, default="")
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    cached_from: Mapped[int | None] = mapped_column(Integer, nullable=True)
    details: Mapped[dict] = mapped_column(JSON, default=dict)


class CombinationLock(Base):
    """The lock of a built combination: module versions, commits, trees, third-party pins."""

    __tablename__ = "combination_locks"
    combination_id: Mapped[int] = mapped_column(ForeignKey("combinations.id"), primary_key=True)
    lock_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    lock: Mapped[dict] = mapped_column(JSON, default=dict)


class SkuRow(Base):
    __tablename__ = "skus"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[dict] = mapped_column(JSON, default=dict)


class RegressionRow(Base):
    """A regression (stackci.regressions.Regression): the series' fields as columns for the
    filters (`stackci regressions --state --team`), the rest as the object's own JSON."""

    __tablename__ = "regressions"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    track: Mapped[str] = mapped_column(String(255), index=True)
    workload: Mapped[str] = mapped_column(String(255), default="")
    sku: Mapped[str] = mapped_column(String(64), default="")
    precision: Mapped[str] = mapped_column(String(16), default="")
    metric: Mapped[str] = mapped_column(String(64))
    last_good_run: Mapped[int] = mapped_column(Integer)
    first_bad_run: Mapped[int] = mapped_column(Integer, index=True)
    found_run: Mapped[int | None] = mapped_column(Integer, nullable=True)
    found_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    relative: Mapped[float | None] = mapped_column(Float, nullable=True)
    summary: Mapped[str] = mapped_column(Text, default="")
    teams: Mapped[list] = mapped_column(JSON, default=list)       # owning team names
    search_of: Mapped[str | None] = mapped_column(String(16), nullable=True)
    data: Mapped[dict] = mapped_column(JSON, default=dict)        # Regression.to_dict()


class RegressionEventRow(Base):
    """Every state change of a regression, who made it and why."""

    __tablename__ = "regression_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    regression_id: Mapped[str] = mapped_column(ForeignKey("regressions.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    before: Mapped[str] = mapped_column(String(20), default="")
    after: Mapped[str] = mapped_column(String(20))
    by: Mapped[str] = mapped_column(String(255), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class BisectionRow(Base):
    """The culprit search of one regression (CulpritSearch.to_dict()), rewritten after every
    probe, so a search the budget stopped continues the next night where it was."""

    __tablename__ = "bisections"
    regression_id: Mapped[str] = mapped_column(ForeignKey("regressions.id"), primary_key=True)
    done: Mapped[bool] = mapped_column(default=False)
    probes: Mapped[int] = mapped_column(Integer, default=0)
    culprit: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_run: Mapped[int | None] = mapped_column(Integer, nullable=True)
    state: Mapped[dict] = mapped_column(JSON, default=dict)


class AnalysisDocumentRow(Base):
    """One workload x SKU x precision analysed by the stack (`npu_compiler analyze --json`),
    by a night's analysis stage (run and job set) or by `stackci analyze` (neither), under a
    label (the combination's name); the document whole, and the plan it analysed (plan.json,
    for the next night's plan diff)."""

    __tablename__ = "analysis_documents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), nullable=True, index=True)
    job_key: Mapped[str | None] = mapped_column(String(400), nullable=True)
    combination_id: Mapped[int | None] = mapped_column(ForeignKey("combinations.id"),
                                                       nullable=True)
    label: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    workload: Mapped[str] = mapped_column(String(255), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    precision: Mapped[str] = mapped_column(String(16))
    modelled_cycles: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_us: Mapped[float | None] = mapped_column(Float, nullable=True)
    document: Mapped[dict] = mapped_column(JSON, default=dict)
    plan: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class AnalysisOpRow(Base):
    """Each op of an analysed plan: where its cycles go and what bounds it (counterfactual)."""

    __tablename__ = "analysis_ops"
    document_id: Mapped[int] = mapped_column(ForeignKey("analysis_documents.id"),
                                             primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    op_type: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str] = mapped_column(String(32), default="")
    kernel: Mapped[str] = mapped_column(String(255), default="")
    cycles: Mapped[float] = mapped_column(Float, default=0)
    compute: Mapped[float] = mapped_column(Float, default=0)
    fill_drain: Mapped[float] = mapped_column(Float, default=0)
    stall: Mapped[float] = mapped_column(Float, default=0)
    intensity: Mapped[float | None] = mapped_column(Float, nullable=True)
    achieved_ops_per_cycle: Mapped[float | None] = mapped_column(Float, nullable=True)
    bound: Mapped[str] = mapped_column(String(32), default="")
    roofline_bound: Mapped[str] = mapped_column(String(32), default="")
    helped_by: Mapped[str] = mapped_column(String(64), default="")
    gain: Mapped[float] = mapped_column(Float, default=0)
    counterfactual_cycles: Mapped[dict] = mapped_column(JSON, default=dict)


class SweetSpotRow(Base):
    """The batch sweep's sweet spots of one analysed document, so a moved one is a query."""

    __tablename__ = "sweet_spots"
    document_id: Mapped[int] = mapped_column(ForeignKey("analysis_documents.id"),
                                             primary_key=True)
    workload: Mapped[str] = mapped_column(String(255), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    precision: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(255), default="")
    offline: Mapped[int | None] = mapped_column(Integer, nullable=True)
    server: Mapped[int | None] = mapped_column(Integer, nullable=True)
    knee: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_bound_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    stopped: Mapped[str] = mapped_column(Text, default="")
    confirmed: Mapped[bool | None] = mapped_column(nullable=True)
    points: Mapped[list] = mapped_column(JSON, default=list)


class DesignSweepRow(Base):
    """One `explore` over design points (its document whole)."""

    __tablename__ = "design_sweeps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), nullable=True, index=True)
    label: Mapped[str] = mapped_column(String(255), default="")
    name: Mapped[str] = mapped_column(String(255))
    sku: Mapped[str] = mapped_column(String(64))
    precision: Mapped[str] = mapped_column(String(16), default="fp32")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    points: Mapped[int] = mapped_column(Integer, default=0)
    document: Mapped[dict] = mapped_column(JSON, default=dict)


class AdviceItemRow(Base):
    """One item of an advice report (stackci.analysis.advice): a batch is one report."""

    __tablename__ = "advice_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch: Mapped[int] = mapped_column(Integer, index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    team: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    change: Mapped[str] = mapped_column(Text, default="")
    gain_us: Mapped[float] = mapped_column(Float, default=0)
    gain_share: Mapped[float] = mapped_column(Float, default=0)
    item: Mapped[dict] = mapped_column(JSON, default=dict)


class LeaseRow(Base):
    """Who runs a run now (nightly/lease.py): the owner refreshes `heartbeat_at` from a
    thread and lists the process groups its jobs run in, so a resume can tell a live owner
    from a lost one and reap what a lost one left."""

    __tablename__ = "leases"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    pid_started: Mapped[str] = mapped_column(String(40), default="")
    acquired_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    ttl_s: Mapped[float] = mapped_column(Float)
    processes: Mapped[list] = mapped_column(JSON, default=list)
