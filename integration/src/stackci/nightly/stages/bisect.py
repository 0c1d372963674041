"""bisect: one probe of the oldest open culprit search, as one job of the night.

The plan lays out a chain of these jobs after the regressions jobs (`--bisect-probes`, each
after the one before), so they run after the gating work and each is admitted by the budget
like any job: what does not fit is `not_run` for the budget, and the search, stored after
every probe, continues the next night where it stopped. A job with nothing to search is not
applicable. The module search comes first (intermediate vectors), then each culprit
module's commits (search.py); every probe builds a real combination (probes.py).
"""

from __future__ import annotations

from dataclasses import replace

from stackci.errors import StackciError
from stackci.model import NOT_APPLICABLE, NOT_RUN, PASSED, JobContext, Outcome
from stackci.nightly.stages.probes import JobProbe, WorkspaceHistory, job_of
from stackci.nightly.stages.regressions import now, owner_of
from stackci.regressions.findings import FindingKind
from stackci.regressions.references import criterion_for
from stackci.regressions.regression import OPEN_STATES, Regression, State, transition
from stackci.regressions.search import CulpritSearch, start_search, step
from stackci.regressions.stored import (bisection_row, event_rows, regression_from_row,
                                        regression_row, series_from_history)


def nothing(message: str) -> Outcome:
    return Outcome(NOT_RUN, f"not applicable: {message}", details={"reason": NOT_APPLICABLE})


def searchable(row: dict, searches: dict) -> bool:
    found = searches.get(row["id"])
    return not row.get("search_of") and row["kind"] != FindingKind.DETERMINISM.value and \
        not (found and found["done"]) and job_of(regression_from_row(row).series) is not None


def action(combination, params: dict):
    def run(ctx: JobContext) -> Outcome:
        reader = ctx.resources.results
        if reader is None:
            return nothing("no results store to read")
        rows = reader.regression_rows(state=tuple(s.value for s in OPEN_STATES))
        searches = reader.bisection_rows([r["id"] for r in rows])
        # Oldest first: a search that started finishes before a newer one starts.
        open_ = sorted((r for r in rows if searchable(r, searches)),
                       key=lambda r: (r["found_at"], r["id"]))
        if not open_:
            return nothing("no culprit search is open")
        row = open_[0]
        regression = regression_from_row(row, searches)
        try:
            return probe_one(ctx, reader, regression, [r for r in rows
                                                        if r.get("search_of") == row["id"]])
        except StackciError as exc:
            # A search that cannot go on (its history is not an ancestry, the plan lost the
            # job) is closed with the reason, so the next nights do not retry it forever.
            search = regression.search
            return Outcome(PASSED, f"{regression.id}: culprit search stopped: {exc}",
                           details={"regression": regression.id, "stopped": str(exc)},
                           regressions={"bisections": [{
                               "regression_id": regression.id, "done": True,
                               "probes": search.probes if search else 0,
                               "culprit": f"search stopped: {exc}",
                               "state": search.to_dict() if search else {}}]})
    return run


def start(reader, regression: Regression) -> CulpritSearch:
    series = None
    if regression.kind is not FindingKind.OUTCOME:
        track = regression.series.track
        series = series_from_history(reader.history(track), track).get(regression.series)
    criterion = criterion_for(regression, series)
    return start_search(regression.last_good.vector, regression.first_bad.vector, criterion,
                        f"last good (run {regression.last_good.run_id})",
                        f"first bad (run {regression.first_bad.run_id})")


def probe_one(ctx: JobContext, reader, regression: Regression, followers: list[dict]
              ) -> Outcome:
    stage, name = job_of(regression.series)
    params = reader.plan_params(regression.first_bad.run_id, stage, name)
    if params is None:
        raise StackciError(f"run {regression.first_bad.run_id}'s stored plan has no job "
                           f"{stage} {name} to run again")
    search = regression.search or start(reader, regression)
    probe, history = JobProbe(ctx, regression.series, params), WorkspaceHistory(ctx.resources.ws)
    before = search.probes
    # Starting the bisections reads git only: step on until one probe was spent.
    while not search.done and search.probes == before:
        search = step(search, probe, history)
    at = now()
    owners = owner_of(ctx.resources.ws)
    updated = [confirmed(replace(regression, search=search), at)]
    updated += [confirmed(replace(regression_from_row(f), search=search), at)
                for f in followers]
    changes = {
        "bisections": [bisection_row(regression.id, search)],
        "regressions": [regression_row(r, owners, None if r.id == regression.id
                                       else regression.id) for r in updated],
        "events": [e for r in updated for e in event_rows(r, len(r.history) - 1)
                   if r.history and r.history[-1].at == at]}
    rows = list(search.modules.evidence) + [e for b in search.bisections for e in b.evidence]
    last = rows[-1] if search.probes > before else None
    what = f"{last.label}: {last.verdict} ({last.why})" if last else "no probe left"
    return Outcome(PASSED, f"{regression.id} probe {search.probes}: {what}; "
                   f"{search.describe()}",
                   details={"regression": regression.id, "probes": search.probes,
                            "done": search.done, "culprit": search.describe()},
                   regressions=changes)


def confirmed(regression: Regression, at) -> Regression:
    """A new regression whose module search reproduced it is confirmed."""
    verdict = regression.search.modules.verdict if regression.search else None
    if regression.state is State.NEW and verdict is not None and \
            verdict.kind in ("module", "interaction"):
        return transition(regression, State.CONFIRMED, at, "bisect",
                          f"reproduced: {verdict.describe(regression.first_bad.vector)}")
    return regression
