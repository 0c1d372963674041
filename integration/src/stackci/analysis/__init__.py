"""Harness-side analysis for the architecture team: pure functions over the JSON the stack's
`python -m npu_compiler analyze | explore | plan-diff` produce (the harness never imports module
code). Imports nothing of stackci but errors.py, except steps.py (the port).

    (owners: stackci.owners, shared with the regressions)
    advice     advice items (change, evidence, modelled gain, owning team)
    markdown   advice as Markdown per team
    records    what advice reads from the results store (and old JSON files moved into it)
    steps      the stack's analyze | plan-diff | explore, through the port (not pure)
"""

from stackci.analysis.advice import advise, by_team
from stackci.analysis.markdown import markdown_by_team, team_markdown
from stackci.owners import Owners, Team, load_owners, parse_owners

__all__ = ["Owners", "Team", "advise", "by_team", "load_owners", "markdown_by_team",
           "parse_owners", "team_markdown"]
