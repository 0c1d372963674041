"""The plan format and the engine: round trips, memory reuse, feed checks, out of memory."""

from __future__ import annotations

import json

import numpy as np
import pytest

import npu_compiler
import npu_opslib.ops.nn
from npu_driver import OutOfDeviceMemory, load_sku
from compiler_models import conv_block_model, light_model, random_feeds

SKU = "npu-edge"


@pytest.fixture(scope="module")
def squeezenet():
    model = light_model("squeezenet")
    return model, npu_compiler.compile_model(model, SKU)


def test_plan_saves_and_loads_to_the_same_results(tmp_path, squeezenet):
    model, plan = squeezenet
    plan.save(tmp_path / "plan")
    doc = json.loads((tmp_path / "plan" / "plan.json").read_text())
    assert doc["format"] == "npu-plan/1"
    assert {"name", "op_type", "fusion", "kernel", "config", "inputs", "outputs",
            "attrs"} <= set(doc["steps"][0])
    loaded = npu_compiler.Plan.load(tmp_path / "plan")
    assert loaded.to_json() == plan.to_json()
    feeds = random_feeds(model)
    first, profile = npu_compiler.Engine(plan).run(feeds)
    second, profile2 = npu_compiler.Engine(loaded).run(feeds)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
    assert profile["total_cycles"] == profile2["total_cycles"]


def test_plan_load_names_what_is_missing(tmp_path):
    with pytest.raises(npu_compiler.ModelLoadError, match="plan.json is missing"):
        npu_compiler.Plan.load(tmp_path)


def test_intermediates_are_freed_after_last_use(squeezenet):
    model, plan = squeezenet
    _, profile = npu_compiler.Engine(plan).run(random_feeds(model))
    weights = sum(a.nbytes for a in plan.constants.values())
    activations = sum(int(np.prod(plan.values[o]["shape"])) * 4
                      for step in plan.steps for o in step["outputs"])
    assert weights < profile["peak_device_bytes"] < weights + activations / 2


def test_runs_are_independent_and_profiled_per_run(squeezenet):
    model, plan = squeezenet
    engine = npu_compiler.Engine(plan)
    feeds = random_feeds(model)
    out1, profile1 = engine.run(feeds)
    out2, profile2 = engine.run(feeds)
    for name in out1:
        np.testing.assert_array_equal(out1[name], out2[name])
    assert profile1["total_cycles"] == profile2["total_cycles"]
    assert len(profile1["launches"]) == len(profile2["launches"])
    op = profile1["ops"][0]
    assert {"name", "op_type", "kernel", "fusion", "cycles", "macs", "bytes_read",
            "bytes_written", "unit", "array_utilization"} <= set(op)
    assert sum(op["cycles"] for op in profile1["ops"]) <= profile1["total_cycles"]


def test_feeds_are_checked_by_name_and_shape(squeezenet):
    _, plan = squeezenet
    engine = npu_compiler.Engine(plan)
    with pytest.raises(npu_compiler.InputError, match="missing input.*data_0.*unexpected.*x"):
        engine.run({"x": np.zeros(3)})
    with pytest.raises(npu_compiler.InputError, match="input 'data_0' has shape \\[3\\]"):
        engine.run({"data_0": np.zeros(3)})


def test_out_of_device_memory_is_a_driver_error():
    small = load_sku(SKU).with_overrides(device_memory_bytes=4096)
    model = conv_block_model()
    plan = npu_compiler.compile_model(model, small)
    with pytest.raises(OutOfDeviceMemory, match="device out of memory"):
        npu_compiler.Engine(plan, sku=small).run(random_feeds(model))


def test_engine_on_another_sku_reselects_kernels(squeezenet):
    model, plan = squeezenet
    feeds = random_feeds(model)
    edge_out, edge = npu_compiler.Engine(plan).run(feeds)
    dc_out, dc = npu_compiler.Engine(plan, sku="npu-dc").run(feeds)
    assert dc["total_cycles"] < edge["total_cycles"]
    for name in edge_out:
        np.testing.assert_allclose(edge_out[name], dc_out[name], rtol=1e-6)


def test_unsupported_operator_is_found_at_compile_time():
    from onnx import helper

    model = conv_block_model()
    model.graph.node.append(helper.make_node("NonMaxSuppression", ["y"], ["nms"],
                                             name="the_nms"))
    with pytest.raises(npu_compiler.UnsupportedOperator) as info:
        npu_compiler.compile_model(model, SKU)
    assert "NonMaxSuppression" in str(info.value) and "the_nms" in str(info.value)


def test_unknown_or_unoffered_precision_is_named():
    with pytest.raises(npu_compiler.UnsupportedPrecision, match="precision 'fp8' is not supp"):
        npu_compiler.compile_model(conv_block_model(), SKU, precision="fp8")
    no_int8 = load_sku(SKU).with_overrides(precisions={"fp32": 1, "fp16": 2})
    with pytest.raises(npu_compiler.UnsupportedPrecision, match="does not run int8"):
        npu_compiler.compile_model(conv_block_model(), no_int8, precision="int8")


def test_engine_prepacks_each_steps_weights_once(monkeypatch):
    """Kernels are told which inputs are weights (uploaded once, never written) when the
    engine is built, and only then: opslib's Conv transforms them for Winograd."""
    if "prepack" not in vars(npu_opslib.ops.nn.Conv):
        pytest.skip("opslib-api < 1.3: kernels take no prepacked weights")
    seen = []
    real = npu_opslib.ops.nn.Conv.prepack

    def spy(self, key, constants, attrs):
        seen.append((key.op_type, sorted(constants)))
        return real(self, key, constants, attrs)

    monkeypatch.setattr(npu_opslib.ops.nn.Conv, "prepack", spy)
    model = conv_block_model()
    engine = npu_compiler.Engine(npu_compiler.compile_model(model, SKU))
    convs = [s for s in engine.plan.steps if s["op_type"] == "Conv"]
    assert sorted(seen) == sorted(("Conv", [1, 2] if len(s["inputs"]) > 2 and s["inputs"][2]
                                   else [1]) for s in convs)
    engine.run(random_feeds(model))
    engine.run(random_feeds(model, seed=1))
    assert len(seen) == len(convs)


def test_the_timeline_holds_the_latest_run_only(squeezenet):
    """A server runs one engine per batch size for its whole life: the timeline must not grow
    with every request."""
    model, plan = squeezenet
    engine = npu_compiler.Engine(plan)
    feeds = random_feeds(model)
    _, first = engine.run(feeds)
    for _ in range(3):
        _, profile = engine.run(feeds)
    assert len(engine.ctx.timeline.records) == len(profile["launches"]) == len(first["launches"])
    assert profile["total_cycles"] == first["total_cycles"]
