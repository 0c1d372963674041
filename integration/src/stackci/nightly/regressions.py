"""The stored regressions as values, for the nightly's summary and its per-team reports and
for the CLI: the one place that reads them from the store and routes them to their owners."""

from __future__ import annotations

import json
import re
from pathlib import Path

from stackci.nightly.stages.regressions import owner_of
from stackci.regressions.regression import Regression
from stackci.regressions.report import (culprit_text, render_json, render_markdown, size_text,
                                        team_reports)
from stackci.regressions.owners import owners
from stackci.regressions.stored import regressions_from_rows
from stackci.results.store import Store

REPORTS_DIR = "regressions"   # under a run's directory: <team>.md and <team>.json


def load(store: Store, **filters) -> list[Regression]:
    """Stored regressions with their culprit searches (filters as Store.regression_rows)."""
    rows = store.regression_rows(**filters)
    return regressions_from_rows(rows, store.bisection_rows())


def culprit_entry(regression: Regression, owner) -> dict:
    """What the summary says of one regression: series, size, module, commit, team."""
    return {"id": regression.id, "state": regression.state.value,
            "kind": regression.kind.value, "series": str(regression.series),
            "size": size_text(regression), "culprit": culprit_text(regression),
            "modules": list(regression.culprit_modules()),
            "commits": regression.culprit_commits(),
            "teams": [t.name for t in owners(regression, owner)]}


def run_regressions(store: Store, ws, run_id: int) -> list[dict]:
    """The regressions a run found, with their culprits as far as the night got."""
    owner = owner_of(ws)
    found = [r for r in store.regression_rows() if r["found_run"] == run_id]
    ids = {r["id"] for r in found}
    return [culprit_entry(r, owner) for r in load(store) if r.id in ids]


def write_team_reports(store: Store, ws, out_dir: Path) -> list[Path]:
    """<out_dir>/regressions/<team>.md and .json for every team with open regressions, and
    index.json listing them; reports of teams with none left are removed (closed)."""
    owner = owner_of(ws)
    directory = Path(out_dir) / REPORTS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.*"):
        old.unlink()
    written, index = [], []
    for report in team_reports(load(store), owner):
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", report.team.name)
        markdown, document = directory / f"{name}.md", directory / f"{name}.json"
        markdown.write_text(render_markdown(report))
        document.write_text(json.dumps(render_json(report, owner), indent=1, default=str))
        written += [markdown, document]
        index.append({"team": report.team.name, "open": len(report.regressions),
                      "markdown": markdown.name, "json": document.name})
    (directory / "index.json").write_text(json.dumps(index, indent=1))
    return written
