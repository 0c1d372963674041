"""What detection concludes about a series: a change, a determinism bug or an outcome flip."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Mapping

from stackci.regressions.series import Point, SeriesKey


class FindingKind(str, enum.Enum):
    CHANGE = "change"              # a figure moved between two different version vectors
    DETERMINISM = "determinism"    # the same vector gave two different deterministic figures
    OUTCOME = "outcome"            # passed -> failed / error / timeout


@dataclass(frozen=True)
class Size:
    before: float
    after: float

    @property
    def absolute(self) -> float:
        return self.after - self.before

    @property
    def relative(self) -> float | None:
        return self.absolute / abs(self.before) if self.before else None

    def describe(self, unit: str = "") -> str:
        unit = f" {unit}" if unit else ""
        text = f"{self.before:g} -> {self.after:g}{unit} ({self.absolute:+g}{unit}"
        if self.relative is not None:
            text += f", {self.relative:+.1%}"
        return text + ")"

    def to_dict(self) -> dict:
        return {"before": self.before, "after": self.after, "absolute": self.absolute,
                "relative": self.relative}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Size":
        return cls(data["before"], data["after"])


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    series: SeriesKey
    last_good: Point
    first_bad: Point
    size: Size | None          # None for outcome flips
    regressed: bool            # the move is in the metric's bad direction
    summary: str
    evidence: Mapping = field(default_factory=dict)   # p-value, window sizes, statuses...
