"""`python -m npu_opslib tune`: the tuning table of a model's kernel keys, made by compiling
it, is what a later compile reuses instead of autotuning, with the same plan."""

from __future__ import annotations

import json

import onnx
import pytest

import npu_opslib
from compiler_models import conv_block_model, tiny_transformer
from npu_compiler import compile_model
from npu_opslib import dispatch

# The compiler needs opslib-api 1.1; only these tests exercise opslib 1.2's tuning tables, so
# against an older opslib they are skipped, not collection errors.
tuning = pytest.importorskip("npu_opslib.tuning", reason="opslib-api < 1.2: no tuning tables")
opslib_cli = pytest.importorskip("npu_opslib.__main__", reason="opslib-api < 1.2: no tune command")


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    monkeypatch.delenv(tuning.CACHE_ENV, raising=False)
    monkeypatch.setattr(tuning, "SHIPPED_DIR", tmp_path / "shipped")
    npu_opslib.clear_cache()
    tuning.reset()
    yield
    npu_opslib.clear_cache()
    tuning.reset()


def steps(plan):
    return [(s["name"], s["kernel"], s["fusion"], s["config"]) for s in plan.steps]


def test_a_tuned_table_replaces_autotuning_with_the_same_plan(fresh, tmp_path, monkeypatch,
                                                               capsys):
    models = []
    for name, model in (("conv", conv_block_model()), ("transformer", tiny_transformer())):
        models.append(tmp_path / f"{name}.onnx")
        onnx.save(model, models[-1])
    assert opslib_cli.main(["tune", "--sku", "npu-edge", "--out", str(tmp_path / "shipped"),
                            *map(str, models)]) == 0
    table = json.loads((tmp_path / "shipped" / "npu-edge.json").read_text())
    assert f"{len(table['entries'])} kernel keys from 2 model(s)" in capsys.readouterr().out
    assert {"Conv", "MatMul"} <= {e["op_type"] for e in table["entries"].values()}
    autotuned = [compile_model(str(m), "npu-edge") for m in models]

    npu_opslib.clear_cache()
    tuning.reset()

    def no_autotuning(sku, key, *args):
        raise AssertionError(f"autotuned {key.op_type} although the table has it")

    monkeypatch.setattr(dispatch, "_autotune", no_autotuning)
    reused = [compile_model(str(m), "npu-edge") for m in models]
    assert [steps(p) for p in reused] == [steps(p) for p in autotuned]


def test_tune_reports_a_missing_model_in_one_line(fresh, tmp_path, capsys):
    assert opslib_cli.main(["tune", "--sku", "npu-edge", str(tmp_path / "nope.onnx")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"npu-opslib: error: model file not found: {tmp_path / 'nope.onnx'}")
