"""Advice from the stack's own analysis documents: produced here by `python -m npu_compiler
analyze | plan-diff --json` (the harness never imports module code), then routed by OWNERS."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from stackci.analysis import advise, by_team, load_owners, markdown_by_team
from stackci.analysis.advice import suite_time_us
from stackci.analysis import records

REPO = Path(__file__).resolve().parents[3]
SQUEEZENET = Path(onnx.__file__).parent / "backend/test/data/light/light_squeezenet.onnx"


def stack(*argv: str, env=None) -> dict:
    done = subprocess.run([sys.executable, "-m", "npu_compiler", *argv, "--json"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def documents(tmp_path_factory):
    """SqueezeNet on the edge part: fused (the default pipeline) and with fusion switched off
    (the "later version" that lost it), with the plan diff between them attached."""
    import os

    tmp = tmp_path_factory.mktemp("advice")
    env = {**os.environ, "NPU_PLAN_CACHE": str(tmp / "cache")}
    fused = stack("analyze", str(SQUEEZENET), "--sku", "npu-edge", "--save-plan",
                  str(tmp / "v1"), env=env)
    unfused = stack("analyze", str(SQUEEZENET), "--sku", "npu-edge", "--skip-pass",
                    "fuse_epilogues", "--save-plan", str(tmp / "v2"), env=env)
    unfused["plan_diff"] = stack("plan-diff", str(tmp / "v1"), str(tmp / "v2"), "--a-label",
                                 "compiler-1.5", "--b-label", "compiler-1.6", env=env)
    fused["workload"] = unfused["workload"] = "squeezenet"
    return fused, unfused


@pytest.fixture(scope="module")
def owners():
    return load_owners(REPO / "OWNERS")


def test_a_lost_fusion_is_compiler_advice_with_versions_and_its_priced_gain(documents, owners):
    fused, unfused = documents
    items = advise([unfused], owners)
    lost = [i for i in items if i["kind"] == "lost-optimization"]
    assert len(lost) == 1
    [item] = lost
    assert item["team"] == "compiler" and item["contact"] == "compiler@npu.example"
    assert item["versions"] == ["compiler-1.5", "compiler-1.6"]
    assert "fuse_epilogues" in item["change"]
    # The gain is the fusion opportunities' saving at the lost steps, in microseconds.
    cycles = sum(o["saving_cycles"] for o in unfused["fusion_opportunities"])
    per_cycle = unfused["latency_us"] / unfused["modelled_cycles"]
    assert item["gain_us"] == pytest.approx(cycles * per_cycle)
    assert unfused["modelled_cycles"] - cycles == fused["modelled_cycles"]
    assert item["gain_share"] == pytest.approx(item["gain_us"] / unfused["latency_us"])
    missed = [i for i in items if i["kind"] == "fusion"]
    assert missed and all(i["team"] == "compiler" for i in missed)
    assert {e["step"] for i in missed for e in i["evidence"]} <= \
        {f["step"] for f in unfused["plan_diff"]["fusions_lost"]}


def test_the_fused_plan_has_no_compiler_advice_but_hardware_and_runtime_items(documents, owners):
    fused, _ = documents
    items = advise([fused], owners)
    teams = by_team(items)
    assert "compiler" not in teams
    hardware = [i for i in items if i["kind"] == "hardware"]
    assert hardware and all(i["team"] == "hardware" for i in hardware)
    assert all(i["path"] == "modules/driver/src/npu_driver/skus/npu-edge.yaml" for i in hardware)
    bandwidth = next(i for i in hardware if "dram bandwidth" in i["change"])
    counterfactual = fused["roofline"]["counterfactual_total_cycles"]["dram_bandwidth_x2"]
    steps = sum(op["cycles"] for op in fused["roofline"]["ops"])
    per_cycle = fused["latency_us"] / fused["modelled_cycles"]
    assert bandwidth["gain_us"] == pytest.approx((steps - counterfactual) * per_cycle)
    assert bandwidth["memory_bound_share"] == pytest.approx(
        fused["roofline"]["bound_share"]["memory-bound"])
    [copies] = [i for i in items if i["kind"] == "copies"]
    assert copies["team"] == "runtime"
    assert copies["evidence"][0]["not_overlapped"] == fused["run"]["copy_cycles_not_overlapped"]
    gains = [i["gain_us"] for i in items]
    assert gains == sorted(gains, reverse=True)


def test_a_kernel_below_its_roofline_is_opslib_advice(documents, owners):
    fused, _ = documents
    doc = copy.deepcopy(fused)
    op = max(doc["roofline"]["ops"], key=lambda o: o["cycles"])
    doc["below_roofline"] = [{"kind": "below_roofline", "step": op["name"],
                              "op_type": op["op_type"], "kernel": op["kernel"],
                              "cycles": op["cycles"], "efficiency": 0.25,
                              "roofline_cycles": op["cycles"] // 4,
                              "saving_cycles": op["cycles"] - op["cycles"] // 4,
                              "bound": op["bound"], "owner": "opslib"}]
    [item] = [i for i in advise([doc], owners) if i["kind"] == "kernel"]
    assert item["team"] == "opslib" and "25%" in item["change"]
    assert item["evidence"][0]["step"] == op["name"]


def test_a_moved_sweet_spot_is_a_finding(documents, owners):
    fused, _ = documents
    now = copy.deepcopy(fused)
    now["batch_sweep"] = {"offline": 8, "server": 4, "knee": 2}
    before = copy.deepcopy(fused)
    before["batch_sweep"] = {"offline": 8, "server": 2, "knee": 2}
    label = "squeezenet on npu-edge (fp32)"
    [item] = [i for i in advise([now], owners, previous={label: before})
              if i["kind"] == "sweet-spot"]
    assert item["moved"] == {"server": [2, 4]} and item["team"] == "architecture"
    assert not [i for i in advise([now], owners, previous={label: now})
                if i["kind"] == "sweet-spot"]


def test_markdown_per_team(documents, owners):
    _, unfused = documents
    items = advise([unfused], owners)
    pages = markdown_by_team(items, list(owners.teams()), suite_time_us([unfused]))
    assert set(owners.teams()) <= set(pages)
    compiler = pages["compiler"]
    assert compiler.startswith("# Advice for compiler (compiler@npu.example)")
    assert "compiler-1.6 lost against compiler-1.5" in compiler
    assert "| workload | step |" in compiler
    assert "Nothing to change" in pages["serving"]


def test_records_keep_the_previous_document(documents, tmp_path):
    from stackci.errors import UsageError
    from stackci.results.store import Store

    fused, unfused = documents
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    store.record_analysis(fused, label="fused")
    store.record_analysis(unfused, label="unfused")
    latest, previous, sweeps = records.stored_inputs(store)
    assert [d["modelled_cycles"] for d in latest] == [unfused["modelled_cycles"]]
    assert previous["squeezenet on npu-edge (fp32)"]["modelled_cycles"] == fused["modelled_cycles"]
    assert sweeps == []
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "broken__x__fp32.json").write_text("{")
    with pytest.raises(UsageError, match="broken__x__fp32.json is unreadable"):
        records.import_files(store, tmp_path / "old")
