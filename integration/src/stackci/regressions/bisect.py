"""Which commit: bisect the culprit module's own history, everything else held still.

The range is the commits that touched `modules/<m>/` after the last good vector's commit up to
the first bad one's (GitHistory). Each probe is the base vector (the last good one, plus the
other module of an interaction at its bad version) with only <m> at the probed commit. An
untestable probe is skipped, never blamed; when only untestable commits separate the last good
from the first bad, the answer is that range plus the first testable bad commit after it.

The state is plain data (`to_dict`/`from_dict`), advanced one probe at a time by `step`: a
bisection that does not fit the night's budget continues the next night where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

from stackci.errors import StackciError
from stackci.regressions.history import GitHistory
from stackci.regressions.modules import Evidence
from stackci.regressions.probe import BAD, GOOD, UNTESTABLE, Criterion, Probe, probe_once
from stackci.regressions.series import (
    ModuleVersion, VersionVector, vector_from_dict, vector_to_dict)


@dataclass(frozen=True)
class CommitVerdict:
    module: str
    last_good: str                 # the newest commit measured good (or the range's start)
    first_bad: str | None          # the first testable bad commit (None: no commit in range)
    untestable: tuple[str, ...]    # untestable commits between the two
    probes: int

    @property
    def exact(self) -> bool:
        return self.first_bad is not None and not self.untestable

    def describe(self) -> str:
        if self.first_bad is None:
            return f"{self.module}: no commit in the range reproduces it"
        if self.exact:
            return f"{self.module} commit {self.first_bad[:12]}"
        return (f"{self.module}: {len(self.untestable)} untestable commit(s) "
                f"{self.untestable[0][:12]}..{self.untestable[-1][:12]}, then the first "
                f"testable bad commit {self.first_bad[:12]}")

    def to_dict(self) -> dict:
        return {"module": self.module, "last_good": self.last_good,
                "first_bad": self.first_bad, "untestable": list(self.untestable),
                "probes": self.probes}

    @classmethod
    def from_dict(cls, data: Mapping) -> "CommitVerdict":
        return cls(data["module"], data["last_good"], data["first_bad"],
                   tuple(data["untestable"]), data["probes"])


@dataclass(frozen=True)
class Bisection:
    module: str
    base: Mapping[str, ModuleVersion]       # every other module, held still
    good_commit: str
    commits: tuple[ModuleVersion, ...]      # the range, oldest first; the last one is bad
    criterion: Criterion
    verdicts: Mapping[str, str] = field(default_factory=dict)   # commit -> good|bad|untestable
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)
    result: CommitVerdict | None = None

    @property
    def done(self) -> bool:
        return self.result is not None

    def to_dict(self) -> dict:
        return {"module": self.module, "base": vector_to_dict(self.base),
                "good_commit": self.good_commit,
                "commits": [c.to_list() for c in self.commits],
                "criterion": self.criterion.to_dict(), "verdicts": dict(self.verdicts),
                "evidence": [e.to_dict() for e in self.evidence],
                "result": self.result.to_dict() if self.result else None}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Bisection":
        return cls(data["module"], vector_from_dict(data["base"]), data["good_commit"],
                   tuple(ModuleVersion(*c) for c in data["commits"]),
                   Criterion.from_dict(data["criterion"]), dict(data["verdicts"]),
                   tuple(Evidence.from_dict(e) for e in data["evidence"]),
                   CommitVerdict.from_dict(data["result"]) if data["result"] else None)


def start_bisection(git: GitHistory, module: str, base: VersionVector, good_commit: str,
                    bad_commit: str, criterion: Criterion) -> Bisection:
    shas = git.commits_touching(module, good_commit, bad_commit)
    if not shas:
        raise StackciError(f"no commit touched modules/{module} in {good_commit[:12]}.."
                           f"{bad_commit[:12]}: is {good_commit[:12]} an ancestor?")
    commits = tuple(git.module_version(module, sha) for sha in shas)
    # The last commit of the range carries the first-bad tree: it is known bad.
    bisection = Bisection(module, dict(base), good_commit, commits, criterion,
                          {shas[-1]: BAD})
    return _conclude(bisection)


def bounds(bisection: Bisection) -> tuple[int, int]:
    """(index of the newest known good commit, -1 for the range's start; index of the oldest
    known bad commit at or after it)."""
    shas = [c.commit for c in bisection.commits]
    hi = min(i for i, sha in enumerate(shas) if bisection.verdicts.get(sha) == BAD)
    lo = max([i for i in range(hi) if bisection.verdicts.get(shas[i]) == GOOD], default=-1)
    return lo, hi


def next_commit(bisection: Bisection) -> ModuleVersion | None:
    if bisection.done:
        return None
    lo, hi = bounds(bisection)
    open_ = [i for i in range(lo + 1, hi)
             if bisection.commits[i].commit not in bisection.verdicts]
    if not open_:
        return None
    middle = (lo + hi) / 2
    return bisection.commits[min(open_, key=lambda i: (abs(i - middle), i))]


def step(bisection: Bisection, probe: Probe) -> Bisection:
    """Probe the next commit (one job) and return the advanced bisection."""
    entry = next_commit(bisection)
    if entry is None:
        return _conclude(bisection)
    vector = dict(bisection.base)
    vector[bisection.module] = entry
    verdict, samples, why = probe_once(probe, vector, bisection.criterion)
    row = Evidence(entry.commit[:12], (bisection.module,), vector, tuple(samples), verdict, why)
    advanced = replace(bisection, verdicts={**bisection.verdicts, entry.commit: verdict},
                       evidence=bisection.evidence + (row,))
    return _conclude(advanced)


def _conclude(bisection: Bisection) -> Bisection:
    if bisection.done or next_commit(bisection) is not None:
        return bisection
    lo, hi = bounds(bisection)
    shas = [c.commit for c in bisection.commits]
    last_good = shas[lo] if lo >= 0 else bisection.good_commit
    skipped = tuple(sha for sha in shas[lo + 1:hi]
                    if bisection.verdicts.get(sha) == UNTESTABLE)
    probes = sum(1 for e in bisection.evidence)
    return replace(bisection, result=CommitVerdict(bisection.module, last_good, shas[hi],
                                                   skipped, probes))
