"""What each job of a night does. A stage's action is `action(combination, params)(ctx) ->
Outcome`: it reaches the stack only through `ctx.resources.port`, returns its outcome and never
writes the store (the executor does; import-linter checks that stages do not import results).

ACTIONS maps the action name a stored plan keeps for each job to its maker, so a resumed run
rebuilds exactly the jobs it planned.
"""

from __future__ import annotations

from stackci.nightly.stages import build, conformance, contracts, publish, tests, workloads
from stackci.nightly.stages import bisect, regressions  # after workloads: probes run them
from stackci.nightly.stages import analysis

ACTIONS = {
    "build": build.action,
    "contracts": contracts.action,
    "tests": tests.action,
    "workloads": workloads.action,
    "onnx-node": conformance.conformance_action,
    "opslib-size": conformance.opslib_size_action,
    "regressions": regressions.action,
    "bisect": bisect.action,
    "analysis": analysis.analyze_action,
    "analysis-explore": analysis.explore_action,
    "analysis-advice": analysis.advice_action,
    "publish": publish.action,
}
