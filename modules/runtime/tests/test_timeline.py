import json

import numpy as np
import pytest

from npu_driver.perf import Cost
from npu_runtime import Context


def traced_context():
    ctx = Context("npu-edge")  # 0.8 GHz: 800 cycles per microsecond
    copy = ctx.stream("copy")
    ctx.launch("conv1", None, Cost("array", 800, 0, 800, macs=10), args={"shape": (1, 3), "n": np.int64(3)})
    ctx.launch("upload", None, Cost("dma", 1600, 0, 1600), stream=copy)
    ctx.default_stream.wait_event(copy.record_event())
    ctx.launch("relu", None, Cost("vector", 400, 0, 400))
    return ctx


def test_chrome_trace_is_valid_json_in_microseconds():
    trace = json.loads(json.dumps(traced_context().timeline.to_chrome_trace()))
    complete = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert [e["name"] for e in complete] == ["conv1", "upload", "relu"]
    for event in complete:
        assert {"name", "ph", "ts", "dur", "pid", "tid", "args"} <= set(event)
        assert isinstance(event["ts"], (int, float)) and event["dur"] >= 0
    conv, upload, relu = complete
    assert (conv["ts"], conv["dur"]) == (0, pytest.approx(1.0))
    assert (upload["ts"], upload["dur"]) == (0, pytest.approx(2.0))
    assert relu["ts"] == pytest.approx(2.0)
    assert conv["tid"] == relu["tid"] != upload["tid"]
    assert conv["args"]["shape"] == [1, 3] and conv["args"]["n"] == 3 and conv["args"]["macs"] == 10


def test_each_stream_is_named_by_thread_metadata():
    trace = traced_context().timeline.to_chrome_trace()
    names = {e["tid"]: e["args"]["name"] for e in trace["traceEvents"]
             if e["ph"] == "M" and e["name"] == "thread_name"}
    assert sorted(names.values()) == ["copy", "default"]
    complete = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert {names[e["tid"]] for e in complete} == {"copy", "default"}


def test_save_writes_loadable_trace(tmp_path):
    ctx = traced_context()
    path = ctx.timeline.save(tmp_path / "trace.json")
    assert json.loads(path.read_text()) == json.loads(json.dumps(ctx.timeline.to_chrome_trace()))
