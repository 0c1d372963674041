"""npu_compiler.analysis on a smoke model (SqueezeNet) and a small transformer: the bound of
every op is what its counterfactual re-pricing shows; a starved DRAM makes ops memory-bound; a
fusion switched off is an opportunity with its saving and a lost optimization in the plan diff;
batch sweeps are monotone where they must be and their sweet spots respect their bounds; the
vectorized what-ifs give the scalar model's cycles."""

from __future__ import annotations

import json
import random

import pytest
from npu_driver import load_sku

import npu_compiler
import npu_opslib
from compiler_models import light_model, tiny_transformer
from npu_compiler.analysis import (analyze_plan, batch_sweep, design_points, explore,
                                   parse_vary, plan_diff, prepare_plan)
from npu_compiler.analysis import pricing, roofline
from npu_compiler.analysis.explore import ExploreError
from npu_compiler.cli import main

EDGE = load_sku("npu-edge")
NO_FUSION = [p for p in npu_compiler.DEFAULT_PIPELINE if p != "fuse_epilogues"]


@pytest.fixture(scope="module")
def squeezenet():
    return light_model("squeezenet")


@pytest.fixture(scope="module")
def plan(squeezenet):
    return npu_compiler.compile_model(squeezenet, EDGE)


@pytest.fixture(scope="module")
def document(plan):
    return analyze_plan(plan, EDGE)


def test_every_bound_is_what_its_counterfactual_shows(plan, document):
    ops = {op["name"]: op for op in document["roofline"]["ops"]}
    assert len(ops) == len(plan.steps)
    doubled = roofline.counterfactual_skus(EDGE)
    for step in pricing.price_steps(plan, EDGE):
        op = ops[step.name]
        # Re-priced here, independently, with opslib's own kernel on each doubled part.
        cycles = {name: step.kernel.fused_cost(sku, step.key, step.config, step.attrs).total_cycles
                  for name, sku in doubled.items()}
        assert op["counterfactual_cycles"] == cycles
        best = min(cycles.values())
        gain = (op["cycles"] - best) / op["cycles"]
        if gain < roofline.MIN_GAIN:
            assert op["bound"] == "latency-bound"
        else:
            assert cycles[op["helped_by"]] == best
            assert op["bound"] == roofline.COUNTERFACTUALS[op["helped_by"]][1]
    classes = {op["bound"] for op in ops.values()}
    assert {"array-bound", "memory-bound"} <= classes  # SqueezeNet on the edge part has both
    assert sum(document["roofline"]["bound_share"].values()) == pytest.approx(1.0)


def test_a_starved_dram_makes_the_array_bound_ops_memory_bound(squeezenet, document):
    array_bound = [op["name"] for op in document["roofline"]["ops"] if op["bound"] == "array-bound"]
    assert array_bound
    starved = EDGE.with_overrides(dram_bandwidth_gbps=0.05)
    doc = analyze_plan(npu_compiler.compile_model(squeezenet, starved), starved, run=False)
    bounds = {op["name"]: op for op in doc["roofline"]["ops"]}
    for name in array_bound:
        assert bounds[name]["bound"] == "memory-bound", name
        assert bounds[name]["helped_by"] == "dram_bandwidth_x2"
        assert bounds[name]["roofline_bound"] == "memory-bound"  # the roofline says so too
    assert doc["roofline"]["bound_share"]["memory-bound"] > 0.9


def test_cycles_break_down_consistently_and_match_the_run(plan, document):
    cycles = document["cycles"]
    assert document["run"]["total_cycles"] == document["modelled_cycles"] == cycles["total_cycles"]
    split = cycles["split"]
    assert split["compute"] + split["fill_drain"] + split["stall"] == split["total"]
    assert split["fill_drain"] > 0
    assert sum(u["total"] for u in cycles["by_unit"].values()) == cycles["total_cycles"]
    assert set(cycles["by_unit"]) == {"array", "vector", "dma"}
    assert sum(t["total"] for t in cycles["by_op_type"].values()) + \
        cycles["by_unit"]["dma"]["total"] == cycles["total_cycles"]
    assert len(cycles["by_layer"]) == len(plan.steps)
    top = [op["total"] for op in cycles["top_ops"]]
    assert top == sorted(top, reverse=True)
    timeline = document["run"]["timeline"]
    assert len(timeline["array"]) == len(timeline["dram"]) > 10
    assert all(0 <= v <= 1.0 + 1e-9 for v in timeline["array"] + timeline["dram"])
    assert max(timeline["array"]) > 0 and max(timeline["dma"]) > 0
    # Copies share the kernels' stream: none overlaps compute.
    assert document["run"]["copy_cycles_not_overlapped"] == cycles["by_unit"]["dma"]["total"]


def test_a_fusion_switched_off_is_an_opportunity_and_a_lost_optimization(squeezenet, plan):
    unfused = npu_compiler.compile_model(squeezenet, EDGE, pipeline=NO_FUSION)
    doc = analyze_plan(unfused, EDGE, run=False)
    fused_steps = {s.name: s for s in pricing.price_steps(plan, EDGE)}
    found = {item["producer"]: item for item in doc["fusion_opportunities"]}
    relu_fused = [name for name, s in fused_steps.items() if s.step["fusion"] == "Relu"
                  and s.step["op_type"] == "Conv"]
    assert relu_fused
    for name in relu_fused:
        item = found[name]
        assert item["pattern"] == "Conv+Relu" and item["owner"] == "compiler"
        # The modelled fused cost is what the fusing compiler's plan pays for that step.
        assert item["fused_cycles"] == fused_steps[name].cost.total_cycles
        assert item["saving_cycles"] == item["separate_cycles"] - item["fused_cycles"] > 0
        assert item["dram_bytes_saved"] > 0
    saving = sum(item["saving_cycles"] for item in doc["fusion_opportunities"])
    assert doc["modelled_cycles"] - saving == document_cycles(plan)
    assert not analyze_plan(plan, EDGE, run=False)["fusion_opportunities"]

    diff = plan_diff(json.loads(plan.to_json()), json.loads(unfused.to_json()),
                     a_label="fused", b_label="unfused")
    lost = {f["step"] for f in diff["fusions_lost"]}
    assert set(relu_fused) <= lost
    assert {"kind": "pass", "pass": "fuse_epilogues"} in diff["lost_optimizations"]
    assert len(diff["only_in"]["unfused"]) == len(unfused.steps) - len(plan.steps)
    assert not diff["fusions_made"]
    same = plan_diff(json.loads(plan.to_json()), json.loads(plan.to_json()))
    assert same["identical"] and not same["lost_optimizations"]


def document_cycles(plan):
    return pricing.run_cycles(plan, EDGE)


@pytest.mark.parametrize("sku_name", ["npu-edge", "npu-dc"])
@pytest.mark.parametrize("model_name", ["cnn", "transformer"])
def test_batch_sweeps_are_monotone_and_sweet_spots_respect_their_bounds(sku_name, model_name,
                                                                        squeezenet):
    model = squeezenet if model_name == "cnn" else tiny_transformer(layers=2)
    sku = load_sku(sku_name)
    base = batch_sweep(lambda b: npu_compiler.compile_model(model, sku, batch=b), sku,
                       max_batch=16)
    points = base["points"]
    assert [p["batch"] for p in points] == [1, 2, 4, 8, 16]
    latencies = [p["latency_us"] for p in points]
    assert latencies == sorted(latencies) and len(set(latencies)) == len(latencies)
    throughputs = [p["throughput_per_s"] for p in points]
    knee = [p["batch"] for p in points].index(base["knee"])
    assert throughputs[:knee + 1] == sorted(throughputs[:knee + 1])  # rises until the knee
    assert base["offline"] == points[throughputs.index(max(throughputs))]["batch"]
    assert base["knee"] <= base["offline"]
    bound = points[2]["latency_ms"] * 1.01  # between batches 4 and 8
    sweep = batch_sweep(lambda b: npu_compiler.compile_model(model, sku, batch=b), sku,
                        max_batch=16, latency_bound_ms=bound)
    server = next(p for p in sweep["points"] if p["batch"] == sweep["server"])
    assert server["latency_ms"] <= bound
    assert all(p["throughput_per_s"] <= server["throughput_per_s"]
               for p in sweep["points"] if p["latency_ms"] <= bound)
    # One functional run at the sweet spot: the runtime's cycles are the sweep's.
    at = npu_compiler.compile_model(model, sku, batch=sweep["server"])
    run = analyze_plan(at, sku)["run"]
    assert run["total_cycles"] == server["cycles"]


def test_a_sweep_stops_where_device_memory_ends(squeezenet):
    small = EDGE.with_overrides(device_memory_bytes="12 MiB")
    sweep = batch_sweep(lambda b: npu_compiler.compile_model(squeezenet, small, batch=b), small,
                        max_batch=64)
    assert 1 <= len(sweep["points"]) < 7
    assert "device memory" in sweep["stopped"]


def test_a_sweep_stops_where_a_fixed_reshape_refuses_the_batch():
    # ResNet-50 of the onnx package flattens to [1, 2048]: batch 2 must not compile.
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Reshape", ["r", "s"], ["y"])],
        "fixed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([1, 32], dtype=np.int64), "s")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    assert npu_compiler.compile_model(model, EDGE).steps
    with pytest.raises(npu_compiler.CompileError, match=r"cannot reshape \(2, 8, 2, 2\)"):
        npu_compiler.compile_model(model, EDGE, batch=2)
    sweep = batch_sweep(lambda b: npu_compiler.compile_model(model, EDGE, batch=b), EDGE,
                        max_batch=8)
    assert [p["batch"] for p in sweep["points"]] == [1]
    assert sweep["stopped"].startswith("batch 2 does not compile")


def test_what_ifs_price_exactly_as_the_scalar_model(plan):
    points = design_points(EDGE, parse_vary(["array=16x16,32x32,64x32", "sram=256KiB,1MiB,4MiB",
                                             "dram_bandwidth=12.8,25.6,102.4"]))
    assert len(points) == 27
    priced = prepare_plan("squeezenet", plan, EDGE)
    kept = explore([priced], EDGE, points, plan_tiles=True)
    retiled = explore([priced], EDGE, points)
    rng = random.Random(0)
    for index in rng.sample(range(len(points)), 6):
        point = kept["points"][index]
        sku = points[index]
        if point["feasible"]:
            assert point["total_cycles"] == pricing.run_cycles(plan, sku)
        # Re-chosen tiles: what auto-tiled kernels (config "auto") cost there.
        auto = sum(s.kernel.fused_cost(sku, s.key, npu_opslib.TileConfig(), s.attrs).total_cycles
                   for s in pricing.price_steps(plan, sku)) + pricing.io_cost(plan, sku).total_cycles
        assert retiled["points"][index]["total_cycles"] == auto
    base = next(p for p in retiled["points"] if p["array"] == "32x32" and
                p["sram_bytes"] == EDGE.sram_bytes and p["dram_bandwidth_gbps"] == 25.6)
    assert base["total_cycles"] <= pricing.run_cycles(plan, EDGE)
    front = [retiled["points"][i] for i in retiled["pareto"]]
    assert front and all(p["pareto"] for p in front)
    areas = [p["area"] for p in front]
    latencies = [p["latency_us"] for p in front]
    assert areas == sorted(areas) and latencies == sorted(latencies, reverse=True)
    for p in retiled["points"]:  # nothing off the front beats a front point on both
        assert p["pareto"] or any(f["area"] <= p["area"] and f["latency_us"] <= p["latency_us"]
                                  for f in front)


@pytest.mark.parametrize("spec, message", [
    ("array=32", "expected ROWSxCOLS"), ("colour=red", "unknown SKU field"),
    ("sram", "expects NAME=V1,V2"), ("sram=-5", "sram_bytes"),
])
def test_bad_vary_specifications_are_one_line_errors(spec, message, tmp_path, capsys):
    model = tmp_path / "m.onnx"
    model.write_bytes(light_model("squeezenet").SerializeToString())
    code = main(["explore", str(model), "--sku", "npu-edge", "--vary", spec, "--json"])
    captured = capsys.readouterr()
    assert code == 2
    assert message in json.loads(captured.out.splitlines()[-1])["error"]
    assert len(captured.err.strip().splitlines()) == 1 and "Traceback" not in captured.err


def test_parse_vary_refuses_a_repeated_axis_and_a_huge_grid():
    with pytest.raises(ExploreError, match="given twice"):
        parse_vary(["sram=1MiB", "sram_bytes=2MiB"])
    values = ",".join(str(v) for v in range(1, 101))
    with pytest.raises(ExploreError, match="1000000 design points"):
        design_points(EDGE, parse_vary([f"vector_lanes={values}", f"cores={values}",
                                        f"clock={values}"]))


def test_points_whose_sram_holds_no_tile_are_infeasible_not_errors(plan):
    points = design_points(EDGE, parse_vary(["sram=16,1MiB"]))
    doc = explore([prepare_plan("squeezenet", plan, EDGE)], EDGE, points)
    tiny, normal = doc["points"]
    assert not tiny["feasible"] and normal["feasible"]
    assert doc["pareto"] == [1]


def test_cli_analyze_and_plan_diff(tmp_path, capsys):
    model = tmp_path / "squeezenet.onnx"
    model.write_bytes(light_model("squeezenet").SerializeToString())
    assert main(["analyze", str(model), "--sku", "npu-edge", "--skip-pass", "fuse_epilogues",
                 "--no-run", "--save-plan", str(tmp_path / "b"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["fusion_opportunities"] and "run" not in doc
    assert main(["compile", str(model), "--sku", "npu-edge", "--out", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    assert main(["plan-diff", str(tmp_path / "a"), str(tmp_path / "b"), "--a-label", "1.5",
                 "--b-label", "1.6", "--json"]) == 0
    diff = json.loads(capsys.readouterr().out)
    assert diff["fusions_lost"] and diff["fusions_lost"][0]["1.5"].startswith(
        diff["fusions_lost"][0]["1.6"])
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["plan-diff", str(tmp_path / "bad.json"), str(tmp_path / "b"), "--json"]) == 2
    assert "is not JSON" in json.loads(capsys.readouterr().out)["error"]
    assert main(["analyze", str(model), "--sku", "npu-edge", "--skip-pass", "nope"]) == 2
    assert "not a pass" in capsys.readouterr().err
