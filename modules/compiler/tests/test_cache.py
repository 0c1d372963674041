"""The plan cache stays within its size bound, least recently used evicted first."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import npu_compiler
from npu_compiler import cache
from npu_compiler.errors import UsageError


def scaled_model(path, scale: float):
    weights = np.full((64, 64), scale, np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])], "scaled",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
        [numpy_helper.from_array(weights, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def entries(directory):
    return sorted(p.name for bucket in directory.iterdir() if bucket.is_dir()
                  for p in bucket.iterdir() if (p / "plan.json").is_file())


def test_the_cache_evicts_the_least_recently_used_plans_past_its_bound(tmp_path, monkeypatch):
    plans = tmp_path / "plans"
    models = [scaled_model(tmp_path / f"m{i}.onnx", i + 1.0) for i in range(3)]
    npu_compiler.compile_model(models[0], "npu-edge", cache_dir=plans)
    [plan0] = entries(plans)
    one_plan = sum(f.stat().st_size for f in plans.rglob("*") if f.is_file())
    limit = int(one_plan * 2.5)  # room for two plans
    monkeypatch.setenv(cache.MAX_BYTES_VAR, str(limit))
    npu_compiler.compile_model(models[1], "npu-edge", cache_dir=plans)
    [plan1] = set(entries(plans)) - {plan0}
    for entry in (plan0, plan1):  # both long unused ...
        os.utime(plans / entry[:2] / entry / "plan.json", (1, 1))
    npu_compiler.compile_model(models[0], "npu-edge", cache_dir=plans)  # ... model 0 used again
    npu_compiler.compile_model(models[2], "npu-edge", cache_dir=plans)
    kept = set(entries(plans))
    assert plan0 in kept and plan1 not in kept and len(kept) == 2
    assert sum(f.stat().st_size for f in plans.rglob("*") if f.is_file()) <= limit


def test_a_bad_bound_is_a_one_line_usage_error(monkeypatch):
    monkeypatch.setenv(cache.MAX_BYTES_VAR, "lots")
    with pytest.raises(UsageError, match="NPU_PLAN_CACHE_MAX_BYTES='lots': expected a whole"):
        cache.max_bytes()
