"""Outcome flips: a job that passed on the last measured night and fails on this one.

`not_run` (out of budget, not applicable, a failed dependency) says nothing about the code and
is skipped, never compared: the flip is between the last two nights the job really ran.
"""

from __future__ import annotations

from stackci.regressions.findings import Finding, FindingKind
from stackci.regressions.series import BAD_STATUSES, NOT_RUN, PASSED, Series

# The stack's failure classes (`StackError.kind`) that name what stopped working.
FLIP_NAMES = {"unsupported-operator": "a new unsupported operator",
              "out-of-memory": "stopped fitting device memory",
              "timeout": "timed out", "failed": "wrong answer", "error": "crashed"}


def flip_name(status: str, kind: str) -> str:
    return FLIP_NAMES.get(kind) or FLIP_NAMES.get(status, status)


def outcome_flips(series: Series) -> list[Finding]:
    ran = [p for p in series.points if p.status != NOT_RUN]
    findings = []
    for before, after in zip(ran, ran[1:]):
        if before.status != PASSED or after.status not in BAD_STATUSES:
            continue
        what = flip_name(after.status, after.kind)
        message = f": {after.message}" if after.message else ""
        findings.append(Finding(
            FindingKind.OUTCOME, series.key, before, after, None, True,
            f"passed in run {before.run_id}, {after.status} in run {after.run_id} "
            f"({what}){message}",
            {"before": before.status, "after": after.status, "kind": after.kind}))
    return findings
