"""The persistent tuning cache: hits skip autotuning with identical results, stale entries are
ignored, new results land in the user cache; and the library's size report."""

from __future__ import annotations

import json

import pytest

import npu_opslib
from npu_driver import load_sku
from npu_opslib import KernelKey, __main__ as cli, dispatch, stats, tuning

SKU = load_sku("npu-edge")
KEYS = [
    (KernelKey("Conv", ((1, 16, 28, 28), (32, 16, 3, 3), (32,)), fusion="Relu"),
     {"pads": [1, 1, 1, 1], "strides": [1, 1]}),
    (KernelKey("MatMul", ((4, 128, 768), (768, 3072))), {}),
    (KernelKey("Gemm", ((64, 512), (512, 1000), (1000,))), {"transB": 0}),
]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty user cache and no shipped table; autotuning counted."""
    monkeypatch.setenv(tuning.CACHE_ENV, str(tmp_path / "user"))
    monkeypatch.setattr(tuning, "SHIPPED_DIR", tmp_path / "shipped")
    calls = []
    autotune = dispatch._autotune

    def counted(*args):
        calls.append(args[1].op_type)
        return autotune(*args)

    monkeypatch.setattr(dispatch, "_autotune", counted)
    fresh_process()
    yield calls
    fresh_process()


def fresh_process():
    dispatch.clear_cache()
    tuning.reset()


def selections():
    return [npu_opslib.select(SKU, key, attrs) for key, attrs in KEYS]


def test_a_miss_autotunes_and_a_later_process_hits_with_identical_results(cache, tmp_path):
    tuned = selections()
    assert cache == ["Conv", "MatMul", "Gemm"]
    assert tuning.flush() == [tmp_path / "user" / "npu-edge.json"]
    fresh_process()
    reused = selections()
    assert cache == ["Conv", "MatMul", "Gemm"]  # no autotuning the second time
    for first, second in zip(tuned, reused):
        assert (second.kernel.name, second.config, second.cost, second.candidates) == (
            first.kernel.name, first.config, first.cost, first.candidates)


def test_the_shipped_table_is_used_when_the_user_cache_misses(cache, tmp_path, monkeypatch):
    tuned = selections()
    entries = tuning.session_entries(SKU)
    tuning.write_table(tmp_path / "shipped" / "npu-edge.json", "npu-edge", entries)
    monkeypatch.delenv(tuning.CACHE_ENV)
    fresh_process()
    assert [s.config for s in selections()] == [s.config for s in tuned]
    assert len(cache) == 3


def rewrite(path, change):
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def first_entry(document):
    return next(iter(document["entries"].values()))


@pytest.mark.parametrize("stale", [
    pytest.param(lambda d: d.update(opslib="0.0.1"), id="other opslib version"),
    pytest.param(lambda d: first_entry(d).update(cost_model="0" * 24), id="other cost model"),
    pytest.param(lambda d: first_entry(d).update(kernel="SomeOtherConv"), id="other kernel"),
    pytest.param(lambda d: first_entry(d).update(config={"tile_m": 3, "tile_n": 5,
                                                         "tile_k": 7}), id="not a candidate"),
    pytest.param(lambda d: d.update(format="npu-tuning/0"), id="other format"),
])
def test_stale_entries_are_ignored_and_autotuned_again(cache, tmp_path, stale):
    key, attrs = KEYS[0]
    tuned = npu_opslib.select(SKU, key, attrs)
    path = tuning.flush()[0]
    rewrite(path, stale)
    fresh_process()
    again = npu_opslib.select(SKU, key, attrs)
    assert cache == ["Conv", "Conv"]
    assert (again.config, again.cost) == (tuned.config, tuned.cost)


def test_another_sku_of_the_same_name_does_not_hit(cache):
    key, attrs = KEYS[1]
    npu_opslib.select(SKU, key, attrs)
    tuning.flush()
    fresh_process()
    npu_opslib.select(SKU.with_overrides(sram_bytes=SKU.sram_bytes // 4), key, attrs)
    assert cache == ["MatMul", "MatMul"]


def test_nothing_is_written_without_a_user_cache(cache, tmp_path, monkeypatch):
    monkeypatch.delenv(tuning.CACHE_ENV)
    selections()
    assert tuning.flush() == [] and not (tmp_path / "user").exists()


def test_flush_merges_with_what_other_processes_wrote(cache, tmp_path):
    npu_opslib.select(SKU, *KEYS[0])
    tuning.flush()
    fresh_process()
    npu_opslib.select(SKU, *KEYS[1])
    path = tuning.flush()[0]
    assert {e["op_type"] for e in json.loads(path.read_text())["entries"].values()} == {
        "Conv", "MatMul"}


def test_library_size_counts_variants_and_their_tile_configurations():
    found = stats.library_stats()
    by_op = {k["op_type"]: k for k in found["by_kernel"]}
    conv = by_op["Conv"]
    kernel = npu_opslib.get_kernel("Conv")
    assert conv["variants"] == (len(kernel.supported_precisions()) * len(kernel.layouts)
                                * len(kernel.fusions))
    # 3 x 3 x 3 candidate tiles and "auto", none clipped on the probe problem.
    assert conv["configs_per_variant"] == 28
    assert by_op["Relu"]["configs_per_variant"] == 1
    assert found["kernels"] == len(npu_opslib.supported_ops())
    assert found["variants"] == sum(k["variants"] for k in found["by_kernel"])
    assert found["configs"] == sum(k["variants"] * k["configs_per_variant"]
                                   for k in found["by_kernel"])


def test_stats_command_prints_json(capsys):
    assert cli.main(["stats", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["kernels"] > 100 and printed["configs"] > printed["variants"]
