"""How a culprit search measures one version vector: build it as a combination through
sources/ (the port's environment, cached by lock like every night's), check its contracts, and
run the series' job on it again with the parameters the first bad run's plan stored.

A vector that does not build or breaks a contract is untestable (`Untestable`): the search
skips it, it never blames it. The history a bisection walks is the workspace's git, through
the harness's one git runner.
"""

from __future__ import annotations

import time

from stackci.compat.contracts import check_declared
from stackci.errors import StackciError, StackError
from stackci.model import BAD_STATUSES, PASSED, JobContext
from stackci.nightly.stages import conformance, workloads
from stackci.regressions.metrics import OUTCOME_METRIC
from stackci.regressions.probe import Untestable
from stackci.regressions.series import ModuleVersion as VectorEntry
from stackci.regressions.series import SeriesKey
from stackci.sources.combination import Combination, ModuleVersion
from stackci.sources.modules import module_at, module_path

PROBE_PREFIX = "probe:"   # probed combinations are named after the track they stand in for


class WorkspaceHistory:
    """regressions.history.GitHistory over the workspace's repository (the stack may sit in a
    subdirectory of its git repository: paths are module_path's)."""

    def __init__(self, ws):
        self.ws = ws

    def commits_touching(self, module: str, good: str, bad: str) -> list[str]:
        return self.ws.git("log", "--format=%H", "--reverse", f"{good}..{bad}", "--",
                           module_path(self.ws, module)).split()

    def module_version(self, module: str, commit: str) -> VectorEntry:
        try:
            found = module_at(self.ws, module, commit)
            return VectorEntry(found.version, found.commit, found.tree_hash)
        except StackciError:
            # A commit whose pyproject does not parse is still a point of the history (it
            # will not build: the probe finds it untestable).
            tree = self.ws.git("rev-parse", f"{commit}:{module_path(self.ws, module)}").strip()
            return VectorEntry("0+unparsable", commit, tree)


def job_of(key: SeriesKey) -> tuple[str, str] | None:
    """(stage, job name) of the job that measures a series, or None when no probe can
    measure it again (a module's tests, a job's own duration)."""
    if key.workload and ":" not in key.workload:
        return ("workloads", key.workload)
    if key.metric.startswith("conformance_"):
        return ("conformance", "onnx-node")
    if key.metric.startswith("opslib_"):
        return ("conformance", "opslib-size")
    return None


class JobProbe:
    """probe(vector) -> the series' figure (or the job's status, for an outcome series)."""

    def __init__(self, ctx: JobContext, key: SeriesKey, params: dict):
        self.ctx, self.key, self.params = ctx, key, params
        self.stage, self.name = job_of(key)

    def combination(self, vector) -> Combination:
        return Combination(PROBE_PREFIX + self.key.track, {
            module: ModuleVersion(module, entry.version, entry.commit, entry.tree_hash)
            for module, entry in vector.items()})

    def __call__(self, vector):
        combination = self.combination(vector)
        resources = self.ctx.resources
        try:
            resources.environment(combination)
            verdict = check_declared(resources.contracts(combination))
        except StackciError as exc:
            raise Untestable(f"does not build: {str(exc).splitlines()[0]}") from None
        if not verdict.ok:
            raise Untestable("violates a contract: " + "; ".join(verdict.problems)[:300])
        started = time.monotonic()
        try:
            outcome = self._action(combination)(self.ctx)
        except StackError as exc:
            if self.key.metric == OUTCOME_METRIC:
                return "timeout" if exc.kind == "timeout" else "error"
            raise Untestable(f"the job did not run through: {exc}") from None
        if self.key.metric == OUTCOME_METRIC:
            return outcome.status
        if self.key.metric == "duration_s" and outcome.status in (PASSED, *BAD_STATUSES):
            return time.monotonic() - started
        for metric in outcome.metrics:
            if metric["name"] == self.key.metric and (metric.get("sku") or "") in \
                    ("", self.key.sku):
                return float(metric["value"])
        raise Untestable(f"the job ended {outcome.status} without {self.key.metric}: "
                         f"{outcome.message}")

    def _action(self, combination):
        if self.stage == "workloads":
            return workloads.action(combination, self.params)
        if self.name == "onnx-node":
            return conformance.conformance_action(combination, self.params)
        return conformance.opslib_size_action(combination, self.params)
