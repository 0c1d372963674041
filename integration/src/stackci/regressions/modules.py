"""Which module moved the figure: the culprit search across the modules of a version vector.

Only modules whose tree differs between the last good and the first bad vector can be blamed.
With one, it is the culprit without a probe. With several, probe the last good vector with one
module moved at a time; when no single move reproduces the regression, the pairs; a pair that
reproduces while neither of its modules does alone is an interaction ("only compiler 1.6.0 with
opslib 1.4.0"). The search is a plain state advanced one probe at a time (`step`), so each
probe can be one job of the nightly and a search can stop at the budget and resume.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from itertools import combinations
from typing import Mapping

from stackci.regressions.probe import BAD, GOOD, UNTESTABLE, Criterion, Probe, probe_once
from stackci.regressions.series import (
    ModuleVersion, VersionVector, moved_modules, vector_from_dict, vector_to_dict)


@dataclass(frozen=True)
class Evidence:
    """One row of an evidence table: a probed vector and what it measured."""
    label: str                 # "last good (run 3)", "compiler moved", "abc1234"...
    moved: tuple[str, ...]
    vector: Mapping[str, ModuleVersion]
    samples: tuple
    verdict: str               # good | bad | untestable
    why: str = ""

    def to_dict(self) -> dict:
        return {"label": self.label, "moved": list(self.moved),
                "vector": vector_to_dict(self.vector), "samples": list(self.samples),
                "verdict": self.verdict, "why": self.why}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Evidence":
        return cls(data["label"], tuple(data["moved"]), vector_from_dict(data["vector"]),
                   tuple(data["samples"]), data["verdict"], data.get("why", ""))


@dataclass(frozen=True)
class ModuleVerdict:
    kind: str                           # module | interaction | unresolved | none
    groups: tuple[tuple[str, ...], ...]  # each group reproduces the regression by itself

    @property
    def modules(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m for group in self.groups for m in group))

    def describe(self, bad: VersionVector) -> str:
        def name(m: str) -> str:
            return f"{m} {bad[m].version}" if m in bad else m
        if self.kind == "none":
            return "no module tree moved: the environment or the machine"
        texts = []
        for group in self.groups:
            texts.append(name(group[0]) if len(group) == 1 else
                         "only " + " with ".join(name(m) for m in group))
        prefix = "unresolved, together: " if self.kind == "unresolved" else ""
        return prefix + "; ".join(texts)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "groups": [list(g) for g in self.groups]}

    @classmethod
    def from_dict(cls, data: Mapping) -> "ModuleVerdict":
        return cls(data["kind"], tuple(tuple(g) for g in data["groups"]))


@dataclass(frozen=True)
class ModuleSearch:
    good: Mapping[str, ModuleVersion]
    bad: Mapping[str, ModuleVersion]
    criterion: Criterion
    changed: tuple[str, ...]
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)
    verdict: ModuleVerdict | None = None

    @property
    def done(self) -> bool:
        return self.verdict is not None

    def to_dict(self) -> dict:
        return {"good": vector_to_dict(self.good), "bad": vector_to_dict(self.bad),
                "criterion": self.criterion.to_dict(), "changed": list(self.changed),
                "evidence": [e.to_dict() for e in self.evidence],
                "verdict": self.verdict.to_dict() if self.verdict else None}

    @classmethod
    def from_dict(cls, data: Mapping) -> "ModuleSearch":
        return cls(vector_from_dict(data["good"]), vector_from_dict(data["bad"]),
                   Criterion.from_dict(data["criterion"]), tuple(data["changed"]),
                   tuple(Evidence.from_dict(e) for e in data["evidence"]),
                   ModuleVerdict.from_dict(data["verdict"]) if data["verdict"] else None)


def moved(good: VersionVector, bad: VersionVector, modules: tuple[str, ...]) -> dict:
    """The last good vector with `modules` at their first-bad versions."""
    vector = dict(good)
    vector.update({m: bad[m] for m in modules if m in bad})
    for m in modules:
        if m not in bad:
            vector.pop(m, None)
    return vector


def start_module_search(good: VersionVector, bad: VersionVector, criterion: Criterion,
                        good_label: str = "last good", bad_label: str = "first bad"
                        ) -> ModuleSearch:
    changed = tuple(moved_modules(good, bad))
    endpoints = (Evidence(good_label, (), dict(good), criterion.good, GOOD, "measured"),
                 Evidence(bad_label, changed, dict(bad), criterion.bad, BAD, "measured"))
    search = ModuleSearch(dict(good), dict(bad), criterion, changed, endpoints)
    return _conclude(search)


def next_probe(search: ModuleSearch) -> tuple[str, ...] | None:
    """The modules to move in the next probe, or None when the search is over."""
    if search.done:
        return None
    tried = {e.moved for e in search.evidence}
    for group in _plan(search):
        if group not in tried:
            return group
    return None


def _plan(search: ModuleSearch) -> list[tuple[str, ...]]:
    singles = [(m,) for m in search.changed]
    if len(search.changed) <= 2 or not _all_tried(search, singles) or _bad(search, singles):
        return singles
    return singles + list(combinations(search.changed, 2))


def _all_tried(search: ModuleSearch, groups) -> bool:
    tried = {e.moved for e in search.evidence}
    return all(g in tried for g in groups)


def _bad(search: ModuleSearch, groups) -> list[tuple[str, ...]]:
    wanted = set(groups)
    return [e.moved for e in search.evidence if e.moved in wanted and e.verdict == BAD]


def step(search: ModuleSearch, probe: Probe) -> ModuleSearch:
    """Probe the next vector (one job) and return the advanced search."""
    group = next_probe(search)
    if group is None:
        return _conclude(search)
    vector = moved(search.good, search.bad, group)
    verdict, samples, why = probe_once(probe, vector, search.criterion)
    row = Evidence(" + ".join(group) + " moved", group, vector, tuple(samples), verdict, why)
    return _conclude(replace(search, evidence=search.evidence + (row,)))


def _conclude(search: ModuleSearch) -> ModuleSearch:
    if search.done or next_probe_pending(search):
        return search
    return replace(search, verdict=_verdict(search))


def next_probe_pending(search: ModuleSearch) -> bool:
    if len(search.changed) <= 1:
        return False
    tried = {e.moved for e in search.evidence}
    return any(g not in tried for g in _plan(search))


def _verdict(search: ModuleSearch) -> ModuleVerdict:
    changed = search.changed
    if not changed:
        return ModuleVerdict("none", ())
    if len(changed) == 1:
        return ModuleVerdict("module", (changed,))
    singles = _bad(search, [(m,) for m in changed])
    if singles:
        return ModuleVerdict("module", tuple(singles))
    # An interaction: a pair reproduces while each of its modules, measured alone, did not.
    # With two modules moved the pair is the first-bad vector itself.
    alone_good = {e.moved[0] for e in search.evidence if len(e.moved) == 1 and e.verdict == GOOD}
    pairs = [changed] if len(changed) == 2 else _bad(search, combinations(changed, 2))
    clean = tuple(p for p in pairs if all(m in alone_good for m in p))
    if clean:
        return ModuleVerdict("interaction", clean)
    return ModuleVerdict("unresolved", (changed,))


def untestable_groups(search: ModuleSearch) -> list[tuple[str, ...]]:
    return [e.moved for e in search.evidence if e.verdict == UNTESTABLE]
