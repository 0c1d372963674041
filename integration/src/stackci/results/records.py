"""Typed records of the store: what `Store.run(s)` and `Store.job(s)` return.

Callers read attributes (`job.reason`, `run.used_s`), never `(job["details"] or {})`;
`details`, `plan` and `summary` are always dicts. `to_dict()` gives the JSON the CLI prints
(`stackci runs --json`). Item access (`job["status"]`) reads the same fields, for Jinja
templates, which address rows that way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime


class _Readable:
    def __getitem__(self, name: str):
        try:
            return getattr(self, name)
        except AttributeError:
            raise KeyError(name) from None

    def get(self, name: str, default=None):
        return getattr(self, name, default)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RunRecord(_Readable):
    id: int
    started_at: datetime
    finished_at: datetime | None
    status: str
    tier: str
    budget_s: float
    host: str
    harness_version: str
    plan: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # jobs per status (Store.runs)

    @property
    def used_s(self) -> float:
        """Wall time used so far (the summary of a finished run, the last checkpoint else)."""
        return float(self.summary.get("used_s", 0.0))

    @classmethod
    def of(cls, row, counts: dict[str, int] | None = None) -> "RunRecord":
        return cls(**{f.name: getattr(row, f.name) for f in fields(cls)
                      if f.name != "counts"}, counts=counts or {})

    def __post_init__(self):
        self.plan, self.summary = self.plan or {}, self.summary or {}


@dataclass
class JobRecord(_Readable):
    id: int
    run_id: int
    combination_id: int | None
    key: str
    stage: str
    name: str
    sku: str | None
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    estimate_s: float | None
    message: str
    details: dict = field(default_factory=dict)

    @property
    def reason(self) -> str:
        """Why a not-run job was not run (model.BUDGET, DEPENDENCY, ...), else ""."""
        return str(self.details.get("reason", ""))

    @classmethod
    def of(cls, row) -> "JobRecord":
        return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})

    def __post_init__(self):
        self.details = self.details or {}
        self.message = self.message or ""
