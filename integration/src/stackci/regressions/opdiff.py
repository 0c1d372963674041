"""The per-op diff of two profiles: which ops changed, by how many cycles, which kernel or
fusion changed. Usually enough to say which layer moved before any bisect: a new kernel is
the compiler's selection or opslib's catalogue, a new fusion is the compiler, the same kernel
at a new cost is opslib's cost or the driver's device model.

Profiles are the `simulated.ops` lists of the stack's run JSON (or the store's op_profiles
rows): dicts with name, op_type, kernel, fusion, cycles, macs, bytes_read, bytes_written, unit.
Ops are matched by name (and occurrence, when a name repeats).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Mapping, Sequence

FIGURES = ("cycles", "macs", "bytes_read", "bytes_written")
LABELS = ("op_type", "kernel", "fusion", "unit")


@dataclass(frozen=True)
class OpChange:
    name: str
    status: str                                  # changed | added | removed
    op_type: str
    before: Mapping[str, float | str] | None
    after: Mapping[str, float | str] | None

    def delta(self, figure: str = "cycles") -> float:
        return float((self.after or {}).get(figure, 0) or 0) - \
            float((self.before or {}).get(figure, 0) or 0)

    def relabelled(self, label: str) -> bool:
        """Whether `label` (kernel, fusion, unit) differs; added and removed ops count."""
        if self.before is None or self.after is None:
            return True
        return self.before.get(label, "") != self.after.get(label, "")

    def describe(self) -> str:
        if self.status != "changed":
            side = self.after if self.status == "added" else self.before
            return (f"{self.name} ({self.op_type}) {self.status}: {side.get('kernel', '')}, "
                    f"{float(side.get('cycles', 0)):g} cycles")
        parts = [f"{self.delta():+g} cycles"]
        for label in ("kernel", "fusion", "unit"):
            if self.relabelled(label):
                parts.append(f"{label} {self.before.get(label) or '-'} -> "
                             f"{self.after.get(label) or '-'}")
        return f"{self.name} ({self.op_type}): " + ", ".join(parts)

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "op_type": self.op_type,
                "before": dict(self.before) if self.before else None,
                "after": dict(self.after) if self.after else None,
                "delta_cycles": self.delta()}

    @classmethod
    def from_dict(cls, data: Mapping) -> "OpChange":
        return cls(data["name"], data["status"], data["op_type"], data["before"],
                   data["after"])


@dataclass(frozen=True)
class OpDiff:
    changes: tuple[OpChange, ...] = field(default_factory=tuple)
    total_before: float = 0.0
    total_after: float = 0.0
    unchanged: int = 0

    @property
    def delta_cycles(self) -> float:
        return self.total_after - self.total_before

    def top(self, n: int = 10) -> list[OpChange]:
        return sorted(self.changes, key=lambda c: -abs(c.delta()))[:n]

    def hint(self) -> str:
        """Which layer the diff points at (a hint for a person, not a verdict)."""
        if not self.changes:
            return "no op changed: the difference is outside the op profile"
        if any(c.status != "changed" for c in self.changes) or \
                any(c.relabelled("fusion") for c in self.changes):
            return "ops were fused, split, added or removed: the compiler's passes"
        if any(c.relabelled("kernel") or c.relabelled("unit") for c in self.changes):
            return "other kernels were selected: the compiler's selection or opslib's kernels"
        return ("the same kernels and fusions cost differently: opslib's kernel cost or the "
                "driver's device model")

    def to_dict(self) -> dict:
        return {"changes": [c.to_dict() for c in self.changes],
                "total_before": self.total_before, "total_after": self.total_after,
                "unchanged": self.unchanged, "hint": self.hint()}

    @classmethod
    def from_dict(cls, data: Mapping) -> "OpDiff":
        return cls(tuple(OpChange.from_dict(c) for c in data["changes"]),
                   data["total_before"], data["total_after"], data["unchanged"])


def _keyed(ops: Sequence[Mapping]) -> dict[str, Mapping]:
    seen: Counter[str] = Counter()
    keyed = {}
    for op in ops:
        name = str(op.get("name", ""))
        seen[name] += 1
        keyed[name if seen[name] == 1 else f"{name}#{seen[name]}"] = _entry(op)
    return keyed


def _entry(op: Mapping) -> dict:
    entry = {label: str(op.get(label) or "") for label in LABELS}
    entry.update({figure: float(op.get(figure) or 0) for figure in FIGURES})
    return entry


def op_diff(before: Sequence[Mapping], after: Sequence[Mapping]) -> OpDiff:
    old, new = _keyed(before), _keyed(after)
    changes, unchanged = [], 0
    for name in [*old, *(n for n in new if n not in old)]:
        a, b = old.get(name), new.get(name)
        if a is not None and b is not None and a == b:
            unchanged += 1
            continue
        status = "changed" if a is not None and b is not None else \
            ("added" if a is None else "removed")
        changes.append(OpChange(name, status, (b or a)["op_type"], a, b))
    return OpDiff(tuple(changes), sum(o["cycles"] for o in old.values()),
                  sum(o["cycles"] for o in new.values()), unchanged)


def profile_totals(ops: Sequence[Mapping]) -> dict[str, float]:
    """The deterministic figures the store does not keep as metrics, summed over a profile:
    `macs` and `bytes_moved` (registered in metrics.py)."""
    return {"macs": sum(float(op.get("macs") or 0) for op in ops),
            "bytes_moved": sum(float(op.get("bytes_read") or 0) +
                               float(op.get("bytes_written") or 0) for op in ops)}
