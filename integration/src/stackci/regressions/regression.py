"""A regression: a finding worth a person's attention, with a state and its evidence.

States and who moves them:
  new            found by a night's detection
  confirmed      the culprit search reproduced it (or a later night still measures it)
  acknowledged   a team took it (`stackci regressions ack ID`)
  false_positive a person says it is not one; kept, so the same change is not raised again
  fixed          the figure is back (the nightly sees it) or a person says so
`fixed` and `false_positive` are final: a regression that comes back is a new finding.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Iterable, Mapping

from stackci.errors import UsageError
from stackci.regressions.findings import Finding, FindingKind, Size
from stackci.regressions.opdiff import OpDiff
from stackci.regressions.search import CulpritSearch
from stackci.regressions.series import Point, Series, SeriesKey


class State(str, enum.Enum):
    NEW = "new"
    CONFIRMED = "confirmed"
    ACKNOWLEDGED = "acknowledged"
    FALSE_POSITIVE = "false_positive"
    FIXED = "fixed"


ALLOWED: dict[State, frozenset[State]] = {
    State.NEW: frozenset({State.CONFIRMED, State.ACKNOWLEDGED, State.FALSE_POSITIVE,
                          State.FIXED}),
    State.CONFIRMED: frozenset({State.ACKNOWLEDGED, State.FALSE_POSITIVE, State.FIXED}),
    State.ACKNOWLEDGED: frozenset({State.FALSE_POSITIVE, State.FIXED}),
    State.FALSE_POSITIVE: frozenset(),
    State.FIXED: frozenset(),
}
OPEN_STATES = (State.NEW, State.CONFIRMED, State.ACKNOWLEDGED)


@dataclass(frozen=True)
class Transition:
    at: datetime
    before: State
    after: State
    by: str
    note: str = ""

    def to_dict(self) -> dict:
        return {"at": self.at.isoformat(), "before": self.before.value,
                "after": self.after.value, "by": self.by, "note": self.note}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Transition":
        return cls(datetime.fromisoformat(data["at"]), State(data["before"]),
                   State(data["after"]), data["by"], data.get("note", ""))


@dataclass(frozen=True)
class Regression:
    id: str
    kind: FindingKind
    series: SeriesKey
    state: State
    last_good: Point
    first_bad: Point
    size: Size | None
    summary: str
    found_at: datetime
    evidence: Mapping = field(default_factory=dict)
    op_diff: OpDiff | None = None
    search: CulpritSearch | None = None
    history: tuple[Transition, ...] = field(default_factory=tuple)

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES

    def culprit_modules(self) -> tuple[str, ...]:
        """The modules to route to: the search's verdict, else the only module that moved."""
        if self.search is not None and self.search.modules.done:
            return self.search.modules.verdict.modules
        changed = tuple(m for m in self.first_bad.vector
                        if m not in self.last_good.vector or
                        self.first_bad.vector[m].tree_hash != self.last_good.vector[m].tree_hash)
        return changed if len(changed) == 1 else ()

    def culprit_commits(self) -> list[str]:
        if self.search is None:
            return []
        return [b.result.first_bad for b in self.search.bisections
                if b.done and b.result.first_bad]

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind.value, "series": self.series.to_dict(),
                "state": self.state.value, "last_good": self.last_good.to_dict(),
                "first_bad": self.first_bad.to_dict(),
                "size": self.size.to_dict() if self.size else None, "summary": self.summary,
                "found_at": self.found_at.isoformat(), "evidence": dict(self.evidence),
                "op_diff": self.op_diff.to_dict() if self.op_diff else None,
                "search": self.search.to_dict() if self.search else None,
                "history": [t.to_dict() for t in self.history]}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Regression":
        return cls(data["id"], FindingKind(data["kind"]), SeriesKey.from_dict(data["series"]),
                   State(data["state"]), Point.from_dict(data["last_good"]),
                   Point.from_dict(data["first_bad"]),
                   Size.from_dict(data["size"]) if data["size"] else None, data["summary"],
                   datetime.fromisoformat(data["found_at"]), data.get("evidence", {}),
                   OpDiff.from_dict(data["op_diff"]) if data.get("op_diff") else None,
                   CulpritSearch.from_dict(data["search"]) if data.get("search") else None,
                   tuple(Transition.from_dict(t) for t in data.get("history", ())))


def regression_id(finding: Finding) -> str:
    """Stable across nights: the same change of the same series gets the same id."""
    text = f"{finding.kind.value}|{finding.series}|{finding.first_bad.run_id}"
    return "R" + hashlib.sha256(text.encode()).hexdigest()[:8]


def from_finding(finding: Finding, found_at: datetime, op_diff: OpDiff | None = None
                 ) -> Regression:
    return Regression(regression_id(finding), finding.kind, finding.series, State.NEW,
                      finding.last_good, finding.first_bad, finding.size, finding.summary,
                      found_at, dict(finding.evidence), op_diff)


def transition(regression: Regression, to: State | str, at: datetime, by: str = "",
               note: str = "") -> Regression:
    target = State(to) if not isinstance(to, State) else to
    allowed = ALLOWED[regression.state]
    if target not in allowed:
        names = ", ".join(sorted(s.value for s in allowed)) or "none: it is closed"
        raise UsageError(f"regression {regression.id} is {regression.state.value}: it cannot "
                         f"become {target.value} (allowed: {names})")
    record = Transition(at, regression.state, target, by, note)
    return replace(regression, state=target, history=regression.history + (record,))


def parse_state(text: str) -> State:
    try:
        return State(text.replace("-", "_"))
    except ValueError:
        raise UsageError(f"unknown regression state {text!r}: expected one of "
                         f"{', '.join(s.value for s in State)}") from None


def same_change(finding: Finding, known: Regression, series: Series, tolerance: int) -> bool:
    """Whether a finding is a regression already stored. Exact findings are the same when
    they start at the same run; a wall-clock change point may move by a few runs as nights
    are added, so within `tolerance` measured points it is the same change."""
    if finding.series != known.series or finding.kind != known.kind:
        return False
    if finding.first_bad.run_id == known.first_bad.run_id:
        return True
    if finding.evidence.get("method") != "pelt+mannwhitney":
        return False
    runs = [p.run_id for p in series.measured()]
    if finding.first_bad.run_id not in runs or known.first_bad.run_id not in runs:
        return False
    return abs(runs.index(finding.first_bad.run_id) - runs.index(known.first_bad.run_id)) \
        <= tolerance


def new_findings(findings: Iterable[Finding], known: Iterable[Regression],
                 series_of: Mapping[SeriesKey, Series], tolerance: int = 3) -> list[Finding]:
    """The findings no stored regression (of any state) already covers."""
    known = list(known)
    return [f for f in findings
            if not any(same_change(f, k, series_of[f.series], tolerance) for k in known)]
