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


def test_a_failed_run_gives_back_the_device_memory_it_took(squeezenet, monkeypatch):
    # A step that fails halfway (a kernel error, the device out of memory) left the run's feeds
    # and intermediates allocated: an engine that runs again (a server's) leaked them per run.
    model, _ = squeezenet
    # without a memory plan every value is an allocation of its own (as a deferred step's)
    pipeline = [p for p in npu_compiler.DEFAULT_PIPELINE
                if p not in ("plan_memory", "concat_in_place")]
    plan = npu_compiler.compile_model(model, SKU, pipeline=pipeline)
    engine = npu_compiler.Engine(plan)
    feeds = random_feeds(model)
    engine.run(feeds)
    used = engine.ctx.device.used_bytes
    real_launch, launches = npu_compiler.engine.npu_opslib.launch, []

    def failing(*args, **kwargs):
        launches.append(1)
        if len(launches) == 5:
            raise RuntimeError("kernel failed")
        return real_launch(*args, **kwargs)

    monkeypatch.setattr(npu_compiler.engine.npu_opslib, "launch", failing)
    for _ in range(2):
        launches.clear()
        with pytest.raises(RuntimeError, match="kernel failed"):
            engine.run(feeds)
        assert engine.ctx.device.used_bytes == used
    monkeypatch.undo()
    engine.run(feeds)
    assert engine.ctx.device.used_bytes == used


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



def plan_feeds(plan, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {i["name"]: rng.standard_normal(i["shape"]).astype(i["dtype"]) for i in plan.inputs}


def test_engines_on_one_device_hold_a_models_weights_once():
    # A server instance runs one model's plans at several batch sizes on one device: the
    # weights are uploaded once, and each engine still computes its own batch's results.
    model = light_model("squeezenet")
    plans = {batch: npu_compiler.compile_model(model, SKU, batch=batch) for batch in (1, 4)}
    shared: dict = {}
    first = npu_compiler.Engine(plans[1], weights=shared)
    used_by_one = first.ctx.device.used_bytes
    second = npu_compiler.Engine(plans[4], ctx=first.ctx, weights=shared)
    assert first.ctx.device.used_bytes == used_by_one  # nothing uploaded twice
    assert all(second.weights[name] is first.weights[name] for name in first.weights)
    alone = npu_compiler.Engine(plans[4])  # on a device of its own: the reference
    weights_bytes = sum(a.nbytes for a in plans[4].constants.values())
    assert alone.ctx.device.used_bytes >= weights_bytes > 0
    feeds = plan_feeds(plans[4])
    shared_out, _ = second.run(feeds)
    alone_out, _ = alone.run(feeds)
    for name in alone_out:
        np.testing.assert_array_equal(shared_out[name], alone_out[name])
    with_arena = first.ctx.device.used_bytes
    second.close()  # dropped from a plan cache: its arena goes, the shared weights stay
    assert first.ctx.device.used_bytes < with_arena
    one, _ = first.run(plan_feeds(plans[1]))
    reference, _ = npu_compiler.Engine(plans[1]).run(plan_feeds(plans[1]))
    for name in reference:
        np.testing.assert_array_equal(one[name], reference[name])


def test_a_shared_constant_with_other_values_is_uploaded_again():
    plan = npu_compiler.compile_model(light_model("squeezenet"), SKU)
    shared: dict = {}
    first = npu_compiler.Engine(plan, weights=shared)
    name = next(iter(plan.constants))
    changed = {**plan.constants, name: plan.constants[name] + 1}
    second = npu_compiler.Engine(npu_compiler.Plan.from_json(plan.to_json(), changed),
                                 ctx=first.ctx, weights=shared)
    assert second.weights[name] is not first.weights[name]
    np.testing.assert_array_equal(second.weights[name].view(), changed[name])
    np.testing.assert_array_equal(first.weights[name].view(), plan.constants[name])
