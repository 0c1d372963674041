"""Regressions: detect every night what moved, and find the module and commit that moved it.

Self-contained on purpose: it reads plain series (series.py) and probes version vectors through
an injected callable, so the nightly, the store and the CLI wire it in without it importing
them. Its only imports from the rest of the harness are `stackci.errors`; git is behind the
`GitHistory` protocol (git.py).

    detect(series)                 -> [Finding]          detect.py
    from_finding(finding, at)      -> Regression          regression.py
    criterion_for(regression, ...) -> Criterion           references.py
    start_search(good, bad, crit)  -> CulpritSearch       search.py; step/run advance it
    team_reports(regs, owner_of)   -> [TeamReport]        report.py
"""

from types import ModuleType as _ModuleType

from stackci.regressions.changepoint import DEFAULT as DEFAULT_NOISE
from stackci.regressions.changepoint import ChangePoint, NoiseConfig, change_points
from stackci.regressions.compare import ComparisonRow, compare_profiles, compare_runs
from stackci.regressions.detect import detect, detect_all
from stackci.regressions.findings import Finding, FindingKind, Size
from stackci.regressions.history import GitHistory, SubprocessGit
from stackci.regressions.metrics import Direction, Kind, MetricKind, kind_of, lookup
from stackci.regressions.opdiff import OpChange, OpDiff, op_diff, profile_totals
from stackci.regressions.owners import TRIAGE, OwnerOf, Team, owners
from stackci.regressions.probe import (
    BAD, GOOD, UNTESTABLE, Criterion, Measurement, Probe, Untestable)
from stackci.regressions.references import back_to_good, criterion_for
from stackci.regressions.regression import (
    ALLOWED, OPEN_STATES, Regression, State, from_finding, new_findings, parse_state,
    transition)
from stackci.regressions.report import TeamReport, render_json, render_markdown, team_reports
from stackci.regressions.search import CulpritSearch, run, start_search, step
from stackci.regressions.series import (
    ModuleVersion, Point, Series, SeriesKey, VersionVector, moved_modules, vector_label)

__all__ = [name for name, value in dict(globals()).items()
           if not name.startswith("_") and not isinstance(value, _ModuleType)]
