"""Between the store's rows (results/regressions.py, plain dicts) and this package's values:
a track's history as Series, a Regression as a row and back, a search and a transition as
rows. Pure functions: the store stays below this package, and this package never opens it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Iterable, Mapping

from stackci.regressions.owners import OwnerOf, owners
from stackci.regressions.regression import Regression, Transition
from stackci.regressions.search import CulpritSearch
from stackci.regressions.series import Point, Series, SeriesKey, vector_from_dict


def series_from_history(history: Mapping, track: str) -> dict[SeriesKey, Series]:
    """Every series of a track's stored history (Store.history), points in run order."""
    vectors = {int(cid): vector_from_dict(v) for cid, v in history["vectors"].items()}
    environments = history.get("environments", {})
    grouped: dict[SeriesKey, list[Point]] = {}
    for row in history["points"]:
        key = SeriesKey(row["workload"], row["sku"], row["precision"], row["metric"], track)
        vector = vectors.get(row["combination_id"], {})
        environment = environments.get(f"{row['run_id']}:{row['combination_id']}", "")
        value = None if row["value"] is None else float(row["value"])
        grouped.setdefault(key, []).append(Point(
            row["run_id"], row["run_time"], vector, value, row["status"], row["kind"],
            row["message"], environment, row["job_id"]))
    return {key: Series.of(key, points) for key, points in grouped.items()}


def regression_row(regression: Regression, owner_of: OwnerOf,
                   search_of: str | None = None) -> dict:
    """The regressions table's row; the search lives in its own row (bisection_row)."""
    key = regression.series
    data = regression.to_dict()
    data["search"] = None
    return {"id": regression.id, "state": regression.state.value, "kind": regression.kind.value,
            "track": key.track, "workload": key.workload, "sku": key.sku,
            "precision": key.precision, "metric": key.metric,
            "last_good_run": regression.last_good.run_id,
            "first_bad_run": regression.first_bad.run_id, "found_at": regression.found_at,
            "relative": regression.size.relative if regression.size else None,
            "summary": regression.summary,
            "teams": [t.name for t in owners(regression, owner_of)],
            "search_of": search_of, "data": data}


def regression_from_row(row: Mapping, searches: Mapping[str, Mapping] | None = None
                        ) -> Regression:
    """The stored regression with its search (its own, or that of the regression whose
    search it shares: `search_of`)."""
    regression = Regression.from_dict(row["data"])
    regression = replace(regression, state=type(regression.state)(row["state"]))
    found = (searches or {}).get(row.get("search_of") or row["id"])
    if found and found.get("state"):
        regression = replace(regression, search=CulpritSearch.from_dict(found["state"]))
    return regression


def regressions_from_rows(rows: Iterable[Mapping], searches: Mapping[str, Mapping]
                          ) -> list[Regression]:
    return [regression_from_row(row, searches) for row in rows]


def bisection_row(regression_id: str, search: CulpritSearch) -> dict:
    return {"regression_id": regression_id, "done": search.done, "probes": search.probes,
            "culprit": search.describe(), "state": search.to_dict()}


def event_rows(regression: Regression, since: int = 0) -> list[dict]:
    """The transitions of `regression` from index `since` on, as event rows."""
    return [event_row(regression.id, t) for t in regression.history[since:]]


def event_row(regression_id: str, transition: Transition) -> dict:
    return {"regression_id": regression_id, "at": transition.at,
            "before": transition.before.value, "after": transition.after.value,
            "by": transition.by, "note": transition.note}


def found_event(regression: Regression, at: datetime, by: str = "nightly") -> dict:
    return {"regression_id": regression.id, "at": at, "before": "", "after": "new",
            "by": by, "note": regression.summary}
