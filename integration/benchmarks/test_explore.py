"""Design-space exploration speed: a 1,000-point sweep (10 arrays x 10 SRAM sizes x 10 DRAM
bandwidths of npu-dc) over the smoke suite's compiled plans, priced by the vectorized cost
model (npu_driver.perf_grid) on one core. Goal: at most 60 s. Compiling is not timed (the
sweep prices plans that exist); the figure and its ratio to the goal are in extra_info and in
the session's summary line."""

from __future__ import annotations

import pytest

from stackci.workloads.prepare import prepare
from stackci.workloads.suite import load_suite
from stackci.workspace import Workspace

GOAL_S = 60.0
EXPLORED = ""  # the summary line the conftest prints at the end of the session
SKU = "npu-dc"
VARY = ["array=16x16,32x32,48x48,64x64,96x96,128x128,160x160,192x192,256x256,32x128",
        "sram=256KiB,512KiB,1MiB,2MiB,4MiB,8MiB,16MiB,24MiB,32MiB,64MiB",
        "dram_bandwidth=100,200,400,800,1200,1600,2400,3200,4800,6400"]


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    from npu_driver import load_sku

    from npu_compiler import compile_model
    from npu_compiler.analysis import prepare_plan

    ws = Workspace.discover(home=tmp_path_factory.mktemp("stackci"))
    base = load_sku(SKU)
    prepared = []
    for workload in load_suite().select("smoke"):
        model = prepare(ws, workload).model_path
        plan = compile_model(model, base, precision=workload.precision)
        prepared.append(prepare_plan(workload.name, plan, base))
    return base, prepared


def test_explore_1000_points_over_the_smoke_suite(benchmark, plans):
    from npu_compiler.analysis import design_points, explore, parse_vary

    base, prepared = plans
    points = design_points(base, parse_vary(VARY))
    assert len(points) == 1000
    document = benchmark.pedantic(explore, args=(prepared, base, points), rounds=3,
                                  iterations=1)
    seconds = benchmark.stats.stats.max
    benchmark.extra_info.update({"points": len(points), "plans": len(prepared),
                                 "seconds_max": seconds, "goal_s": GOAL_S,
                                 "ratio_to_goal": seconds / GOAL_S})
    global EXPLORED
    EXPLORED = (f"explore: {len(points)} points x {len(prepared)} smoke plans in {seconds:.2f} s "
          f"(goal {GOAL_S:.0f} s, {seconds / GOAL_S:.3f} of it); Pareto front of "
          f"{len(document['pareto'])}")
    assert all(p["feasible"] for p in document["points"])
    assert seconds <= GOAL_S
