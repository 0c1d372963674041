"""The whole culprit search of one regression: modules first, then each culprit's commits.

`CulpritSearch` is the resumable state the store keeps beside a regression; `step` runs one
probe (one nightly job) and `run` runs steps until the search ends or the budget of probes is
spent. A module's bisection starts from the module verdict: for a single module, the last good
vector with that module walked through its commits; for an interaction, each module of the
pair walked with the other one at its bad version.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

from stackci.regressions import bisect, modules
from stackci.regressions.bisect import Bisection
from stackci.regressions.history import GitHistory
from stackci.regressions.modules import ModuleSearch
from stackci.regressions.probe import Criterion, Probe
from stackci.regressions.series import VersionVector


@dataclass(frozen=True)
class CulpritSearch:
    modules: ModuleSearch
    bisections: tuple[Bisection, ...] = field(default_factory=tuple)
    started_bisections: bool = False

    @property
    def done(self) -> bool:
        return self.modules.done and self.started_bisections and \
            all(b.done for b in self.bisections)

    @property
    def probes(self) -> int:
        return len(self.modules.evidence) - 2 + sum(len(b.evidence) for b in self.bisections)

    def describe(self) -> str:
        if not self.modules.done:
            return "culprit search under way"
        text = self.modules.verdict.describe(self.modules.bad)
        commits = [b.result.describe() for b in self.bisections if b.done]
        return text + ("; " + "; ".join(commits) if commits else "")

    def to_dict(self) -> dict:
        return {"modules": self.modules.to_dict(),
                "bisections": [b.to_dict() for b in self.bisections],
                "started_bisections": self.started_bisections}

    @classmethod
    def from_dict(cls, data: Mapping) -> "CulpritSearch":
        return cls(ModuleSearch.from_dict(data["modules"]),
                   tuple(Bisection.from_dict(b) for b in data["bisections"]),
                   data["started_bisections"])


def start_search(good: VersionVector, bad: VersionVector, criterion: Criterion,
                 good_label: str = "last good", bad_label: str = "first bad") -> CulpritSearch:
    return CulpritSearch(modules.start_module_search(good, bad, criterion, good_label,
                                                     bad_label))


def _bisections(search: ModuleSearch, git: GitHistory) -> tuple[Bisection, ...]:
    verdict = search.verdict
    if verdict.kind not in ("module", "interaction"):
        return ()
    found = []
    for group in verdict.groups:
        for module in group:
            if module not in search.good or module not in search.bad:
                continue   # added or removed: no history in common to bisect
            others = tuple(m for m in group if m != module)
            base = modules.moved(search.good, search.bad, others)
            found.append(bisect.start_bisection(
                git, module, base, search.good[module].commit, search.bad[module].commit,
                search.criterion))
    return tuple(found)


def step(search: CulpritSearch, probe: Probe, git: GitHistory) -> CulpritSearch:
    """One probe: of the module search while it runs, then of the first unfinished bisection.
    Starting the bisections reads git only, no probe."""
    if not search.modules.done:
        return replace(search, modules=modules.step(search.modules, probe))
    if not search.started_bisections:
        return replace(search, bisections=_bisections(search.modules, git),
                       started_bisections=True)
    for i, bisection in enumerate(search.bisections):
        if not bisection.done:
            advanced = bisect.step(bisection, probe)
            return replace(search, bisections=search.bisections[:i] + (advanced,) +
                           search.bisections[i + 1:])
    return search


def run(search: CulpritSearch, probe: Probe, git: GitHistory,
        max_probes: int | None = None, progress=None) -> CulpritSearch:
    """Steps until the search is done or `max_probes` probes were spent (then resume later
    from the returned state). `progress(message)` hears each step."""
    spent = 0
    while not search.done and (max_probes is None or spent < max_probes):
        before = search.probes
        search = step(search, probe, git)
        spent += search.probes - before
        if progress is not None:
            progress(f"{search.probes} probe(s): {search.describe()}")
    return search
