"""Routing: which team owns a regression. The ownership file (CODEOWNERS style, at the repo
root) is read elsewhere; this package takes `owner_of(module) -> Team | None` as a callable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from stackci.regressions.regression import Regression

TRIAGE = "triage"   # regressions whose culprit module is not known yet


@dataclass(frozen=True)
class Team:
    name: str
    contact: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "contact": self.contact}


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
