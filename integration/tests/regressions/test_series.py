"""Series keys, version vectors and their labels, and two runs compared side by side."""

from datetime import datetime

import pytest

from stackci.errors import UsageError
from stackci.regressions import (
    ModuleVersion, Point, SeriesKey, compare_profiles, compare_runs, moved_modules,
    vector_label)
from stackci.regressions.series import vector_from_dict, vector_identity, vector_to_dict

T0 = datetime(2026, 12, 1)
A = {"driver": ModuleVersion("2.1.2", "c1", "t1"), "compiler": ModuleVersion("1.5.0", "c1", "k1")}
B = {"driver": ModuleVersion("2.1.2", "c2", "t1"), "compiler": ModuleVersion("1.6.0", "c2abcdef", "k2")}


def test_series_keys_print_and_parse_back():
    key = SeriesKey("resnet-int8", "npu-edge", "int8", "total_cycles", "release:latest")
    assert str(key) == "release:latest/resnet-int8/npu-edge/int8/total_cycles"
    assert SeriesKey.parse(str(key)) == key
    run_level = SeriesKey("", "", "", "opslib_kernels", "master")
    assert SeriesKey.parse(str(run_level)) == run_level
    with pytest.raises(UsageError, match="expected TRACK/WORKLOAD/SKU/PRECISION/METRIC"):
        SeriesKey.parse("resnet/total_cycles")


def test_identity_is_the_trees_not_the_commits():
    assert vector_identity(A) != vector_identity(B)
    same_trees = {m: ModuleVersion(e.version, "other", e.tree_hash) for m, e in A.items()}
    assert vector_identity(A) == vector_identity(same_trees)
    assert moved_modules(A, B) == ["compiler"]
    assert vector_label(A, B) == "compiler 1.6.0 (c2abcde)"
    assert vector_label(None, A) == "first run"
    assert vector_from_dict(vector_to_dict(B)) == B


def test_compare_runs_judges_each_series_as_detection_would():
    def key(metric):
        return SeriesKey("resnet", "npu-edge", "fp32", metric, "master")
    a = {key("total_cycles"): Point(1, T0, A, 100.0), key("compile_s"): Point(1, T0, A, 2.0),
         key("outcome"): Point(1, T0, A, None), key("latency_us"): Point(1, T0, A, 5.0)}
    b = {key("total_cycles"): Point(2, T0, B, 120.0), key("compile_s"): Point(2, T0, B, 2.5),
         key("outcome"): Point(2, T0, B, None, "error", "unsupported-operator"),
         key("peak_device_bytes"): Point(2, T0, B, 64.0)}
    verdicts = {row.series.metric: row.verdict for row in compare_runs(a, b)}
    assert verdicts == {"total_cycles": "regressed", "compile_s": "noisy", "outcome": "flipped",
                        "latency_us": "only-a", "peak_device_bytes": "only-b"}
    same = compare_runs({key("total_cycles"): Point(1, T0, A, 100.0)},
                        {key("total_cycles"): Point(2, T0, A, 101.0)})
    assert same[0].verdict == "determinism-bug"
    ops = {("master", "resnet"): [{"name": "c", "op_type": "Conv", "cycles": 1}]}
    assert compare_profiles(ops, ops) == {}
    changed = compare_profiles(ops, {("master", "resnet"): [{"name": "c", "op_type": "Conv",
                                                            "cycles": 2}]})
    assert changed[("master", "resnet")].delta_cycles == 1
