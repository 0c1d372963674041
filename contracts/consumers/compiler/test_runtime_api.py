"""What npu_compiler's engine expects of runtime-api: a context per run that allocates, copies,
frees, and profiles the run (the figures the CLI reports)."""

import json

import numpy as np

from npu_runtime import Context


def test_engine_lifecycle_of_values():
    ctx = Context("npu-edge")
    x = ctx.to_device(np.ones((4, 4), np.float32), name="x")
    y = ctx.alloc([4, 4], "float32", name="y")
    y.view()[...] = x.view() + 1
    np.testing.assert_array_equal(ctx.to_host(y), np.full((4, 4), 2, np.float32))
    ctx.free(x)
    assert ctx.sku.name == "npu-edge"


def test_profile_has_the_figures_the_compiler_reports():
    ctx = Context("npu-edge")
    ctx.to_host(ctx.to_device(np.zeros(1024, np.float32), name="in"))
    profile = ctx.profile()
    assert {"total_cycles", "latency_us", "peak_device_bytes", "launches"} <= set(profile)
    assert profile["total_cycles"] == ctx.synchronize() > 0
    assert profile["peak_device_bytes"] >= 4096
    launch = profile["launches"][0]
    assert {"name", "stream", "start_cycle", "cycles"} <= set(launch)


def test_chrome_trace_is_json(tmp_path):
    ctx = Context("npu-dc")
    ctx.to_device(np.zeros(16, np.float32))
    trace = ctx.timeline.to_chrome_trace()
    assert any(event.get("ph") == "X" for event in trace["traceEvents"])
    ctx.timeline.save(tmp_path / "trace.json")
    assert json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
