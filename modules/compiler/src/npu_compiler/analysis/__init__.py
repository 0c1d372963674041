"""Workload analysis for the architecture team (compiler-api 1.4): where the cycles of a
compiled plan go, what bounds each op (confirmed by re-pricing it on a part with one resource
doubled), fusion and layout opportunities, plan diffs, batch sweeps and design-space what-ifs
priced over many design points at once. One concern per file:

    pricing     each step of a plan on a SKU, with the driver cost calls it is the sum of
    breakdown   cycles by op type, unit and layer; utilization timeline of a run
    roofline    roofline figures and the counterfactual bound of every op
    fusion      fusion and layout opportunities, kernels below their roofline
    plandiff    two plan.json documents diffed (pure JSON)
    sweep       the batch sweep and its sweet spots
    explore     design points, vectorized pricing, the Pareto front
    analyze     the per-workload document
    cli         `python -m npu_compiler analyze | plan-diff | explore`
"""

from npu_compiler.analysis.analyze import analyze, analyze_plan
from npu_compiler.analysis.explore import design_points, explore, parse_vary, prepare_plan
from npu_compiler.analysis.plandiff import plan_diff
from npu_compiler.analysis.sweep import batch_sweep, sweet_spots

__all__ = ["analyze", "analyze_plan", "batch_sweep", "design_points", "explore", "parse_vary",
           "plan_diff", "prepare_plan", "sweet_spots"]
