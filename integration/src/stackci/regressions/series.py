"""Series: one figure of one job, night after night, with the version vector of each night.

A series key names what is compared (workload, SKU, precision, metric) and on which track (the
combination's name: `master`, `release:latest`, a coverage combination...): numbers of
different tracks are different histories. A point carries the run, the version vector the job
ran on, the value and the job's outcome, so detection and the culprit search need nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Mapping

from stackci.errors import UsageError

# Job statuses as the store writes them; `not_run` is never evidence of anything.
PASSED = "passed"
BAD_STATUSES = ("failed", "error", "timeout")
NOT_RUN = "not_run"


@dataclass(frozen=True, order=True)
class SeriesKey:
    workload: str        # "" for run-level figures (conformance, opslib size, job durations)
    sku: str
    precision: str
    metric: str
    track: str           # the combination name

    def __str__(self) -> str:
        parts = [self.track, self.workload or "-", self.sku or "-", self.precision or "-",
                 self.metric]
        return "/".join(parts)

    @classmethod
    def parse(cls, text: str) -> "SeriesKey":
        """The inverse of str(): `track/workload/sku/precision/metric` ("-" for empty).
        A track may hold "/"; the last four fields never do."""
        parts = text.rsplit("/", 4)
        if len(parts) != 5 or not all(parts):
            raise UsageError(f"series {text!r}: expected TRACK/WORKLOAD/SKU/PRECISION/METRIC "
                             f"('-' for an empty field)")
        track, workload, sku, precision, metric = (("" if p == "-" else p) for p in parts)
        return cls(workload, sku, precision, metric, track)

    def to_dict(self) -> dict:
        return {"workload": self.workload, "sku": self.sku, "precision": self.precision,
                "metric": self.metric, "track": self.track}

    @classmethod
    def from_dict(cls, data: Mapping) -> "SeriesKey":
        return cls(data["workload"], data["sku"], data["precision"], data["metric"],
                   data["track"])


@dataclass(frozen=True)
class ModuleVersion:
    """One module of a version vector, as a combination records it."""
    version: str
    commit: str
    tree_hash: str

    def to_list(self) -> list[str]:
        return [self.version, self.commit, self.tree_hash]


VersionVector = Mapping[str, ModuleVersion]


def vector_from_dict(data: Mapping) -> dict[str, ModuleVersion]:
    """{module: [version, commit, tree_hash]} or {module: {version, commit, tree_hash}}."""
    vector = {}
    for module, entry in data.items():
        if isinstance(entry, Mapping):
            vector[module] = ModuleVersion(entry["version"], entry["commit"],
                                           entry["tree_hash"])
        else:
            vector[module] = ModuleVersion(*entry)
    return vector


def vector_to_dict(vector: VersionVector) -> dict[str, list[str]]:
    return {module: entry.to_list() for module, entry in vector.items()}


def vector_identity(vector: VersionVector, environment: str = "") -> tuple:
    """What makes two runs "the same code": the module trees (not the commits that carried
    them) and the third-party lock. Equal identities must give equal deterministic figures."""
    return (tuple(sorted((m, e.tree_hash) for m, e in vector.items())), environment)


def moved_modules(before: VersionVector, after: VersionVector) -> list[str]:
    """Modules whose tree differs (or that one side lacks), in `after`'s order."""
    names = list(after) + [m for m in before if m not in after]
    return [m for m in names
            if m not in before or m not in after or before[m].tree_hash != after[m].tree_hash]


def vector_label(before: VersionVector | None, after: VersionVector) -> str:
    """What moved at this point, for a trend's x-axis: `compiler 1.6.0 (abc1234)`."""
    if before is None:
        return "first run"
    moved = moved_modules(before, after)
    if not moved:
        return "no module moved"
    return ", ".join(f"{m} {after[m].version} ({after[m].commit[:7]})" if m in after
                     else f"{m} removed" for m in moved)


@dataclass(frozen=True)
class Point:
    run_id: int
    run_time: datetime
    vector: VersionVector
    value: float | None
    status: str = PASSED
    kind: str = ""            # the stack's failure class (unsupported-operator, out-of-memory)
    message: str = ""
    environment: str = ""     # hash of the third-party lock
    job_id: int | None = None

    @property
    def identity(self) -> tuple:
        return vector_identity(self.vector, self.environment)

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "run_time": self.run_time.isoformat(),
                "vector": vector_to_dict(self.vector), "value": self.value,
                "status": self.status, "kind": self.kind, "message": self.message,
                "environment": self.environment, "job_id": self.job_id}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Point":
        return cls(data["run_id"], datetime.fromisoformat(data["run_time"]),
                   vector_from_dict(data["vector"]), data.get("value"),
                   data.get("status", PASSED), data.get("kind", ""), data.get("message", ""),
                   data.get("environment", ""), data.get("job_id"))


@dataclass(frozen=True)
class Series:
    key: SeriesKey
    points: tuple[Point, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, key: SeriesKey, points: Iterable[Point]) -> "Series":
        """Points in run order (time, then run id): the order detection reads them in."""
        return cls(key, tuple(sorted(points, key=lambda p: (p.run_time, p.run_id))))

    def measured(self) -> list[Point]:
        """Points that carry a value: a job that did not run or crashed measured nothing."""
        return [p for p in self.points if p.value is not None and p.status != NOT_RUN]
