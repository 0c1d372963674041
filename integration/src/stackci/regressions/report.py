"""Per-team reports: the open regressions of each team as Markdown and as JSON, the shape an
automation posts as an issue (title, labels, body) with every regression's facts beside it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from stackci.regressions.metrics import lookup
from stackci.regressions.owners import OwnerOf, Team, owners
from stackci.regressions.regression import Regression
from stackci.regressions.series import vector_label, vector_to_dict


@dataclass(frozen=True)
class TeamReport:
    team: Team
    regressions: tuple[Regression, ...]


def team_reports(regressions: Iterable[Regression], owner_of: OwnerOf,
                 open_only: bool = True) -> list[TeamReport]:
    """One report per team with at least one regression, teams by name, regressions by state
    (new first) then size."""
    by_team: dict[str, tuple[Team, list[Regression]]] = {}
    for regression in regressions:
        if open_only and not regression.open:
            continue
        for team in owners(regression, owner_of):
            by_team.setdefault(team.name, (team, []))[1].append(regression)
    return [TeamReport(team, tuple(sorted(found, key=_order)))
            for _, (team, found) in sorted(by_team.items())]


def _order(regression: Regression):
    relative = regression.size.relative if regression.size and regression.size.relative else 0
    return (regression.state.value != "new", -abs(relative), regression.id)


def culprit_text(regression: Regression) -> str:
    if regression.search is not None and regression.search.modules.done:
        return regression.search.describe()
    modules = regression.culprit_modules()
    return modules[0] if modules else "not known yet"


def size_text(regression: Regression) -> str:
    if regression.size is None:
        return regression.first_bad.status
    metric = lookup(regression.series.metric)
    return regression.size.describe(metric.unit if metric else "")


def regression_json(regression: Regression, owner_of: OwnerOf) -> dict:
    return {"id": regression.id, "state": regression.state.value,
            "kind": regression.kind.value, "series": str(regression.series),
            "summary": regression.summary, "size": size_text(regression),
            "last_good_run": regression.last_good.run_id,
            "first_bad_run": regression.first_bad.run_id,
            "last_good_vector": vector_to_dict(regression.last_good.vector),
            "first_bad_vector": vector_to_dict(regression.first_bad.vector),
            "culprit": culprit_text(regression),
            "modules": list(regression.culprit_modules()),
            "commits": regression.culprit_commits(),
            "owners": [t.to_dict() for t in owners(regression, owner_of)],
            "op_diff": [c.describe() for c in regression.op_diff.top(5)]
            if regression.op_diff else [],
            "hint": regression.op_diff.hint() if regression.op_diff else ""}


def render_markdown(report: TeamReport) -> str:
    team = report.team
    lines = [f"# Open regressions of {team.name}" + (f" ({team.contact})" if team.contact else ""),
             "", f"{len(report.regressions)} open.", "",
             "| id | state | series | size | culprit |", "| --- | --- | --- | --- | --- |"]
    for r in report.regressions:
        lines.append(f"| {r.id} | {r.state.value} | `{r.series}` | {_cell(size_text(r))} | "
                     f"{_cell(culprit_text(r))} |")
    for r in report.regressions:
        lines += ["", f"## {r.id}: {_cell(r.summary)}", "",
                  f"- last good: run {r.last_good.run_id}; first bad: run {r.first_bad.run_id}, "
                  f"where {vector_label(r.last_good.vector, r.first_bad.vector)} moved"]
        if r.op_diff and r.op_diff.changes:
            lines.append(f"- per-op diff ({r.op_diff.delta_cycles:+g} cycles): "
                         f"{r.op_diff.hint()}")
            lines += [f"  - {c.describe()}" for c in r.op_diff.top(5)]
        if r.search is not None:
            lines += ["", "| probe | verdict | measured | why |", "| --- | --- | --- | --- |"]
            rows = list(r.search.modules.evidence) + \
                [e for b in r.search.bisections for e in b.evidence]
            lines += [f"| {_cell(e.label)} | {e.verdict} | {_samples(e.samples)} | "
                      f"{_cell(e.why)} |" for e in rows]
    return "\n".join(lines) + "\n"


def render_json(report: TeamReport, owner_of: OwnerOf) -> dict:
    """What an automation posts: an issue title, labels and body, and the facts."""
    count = len(report.regressions)
    return {"team": report.team.to_dict(),
            "title": f"{count} open regression{'s' if count != 1 else ''} of {report.team.name}",
            "labels": ["regression", f"team:{report.team.name}"],
            "body": render_markdown(report),
            "regressions": [regression_json(r, owner_of) for r in report.regressions]}


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _samples(samples) -> str:
    if not samples:
        return "-"
    shown = ", ".join(f"{s:g}" if isinstance(s, (int, float)) else str(s)
                      for s in samples[:4])
    return shown + (", ..." if len(samples) > 4 else "")
