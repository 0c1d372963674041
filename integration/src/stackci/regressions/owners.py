"""Routing: which team owns a regression. The ownership file (CODEOWNERS style, at the repo
root) is read by `stackci.owners`; this package takes `owner_of(module) -> Team | None` as a
callable (`Owners.owner_of_module`)."""

from __future__ import annotations

from typing import Callable

from stackci.owners import Team
from stackci.regressions.regression import Regression

TRIAGE = "triage"   # regressions whose culprit module is not known yet


OwnerOf = Callable[[str], "Team | None"]


def owners(regression: Regression, owner_of: OwnerOf) -> list[Team]:
    """The teams of the culprit modules (both teams of an interaction); the triage team
    while no culprit is known or a module has no owner."""
    teams = []
    for module in regression.culprit_modules():
        team = owner_of(module) or Team(TRIAGE)
        if team not in teams:
            teams.append(team)
    return teams or [Team(TRIAGE)]
