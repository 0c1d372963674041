"""Selection, fusion costs, launching on a runtime context, the registry and entry points."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

import npu_opslib
from npu_driver import load_sku
from npu_opslib import KernelKey, TileConfig
from npu_runtime import Context

SKU = load_sku("npu-edge")
CONV_ATTRS = {"pads": [1, 1, 1, 1], "strides": [1, 1]}
CONV_SHAPES = ((1, 16, 28, 28), (32, 16, 3, 3), (32,))


def test_unsupported_operator_names_it_on_one_line():
    with pytest.raises(npu_opslib.UnsupportedOperator) as info:
        npu_opslib.get_kernel("NoSuchOp")
    assert "NoSuchOp" in str(info.value) and "\n" not in str(info.value)
    assert not npu_opslib.is_supported("NoSuchOp")
    assert npu_opslib.is_supported("Conv")


def test_select_is_the_cheapest_config_and_is_remembered():
    key = KernelKey("Conv", CONV_SHAPES, "fp32", "NCHW", "Relu")
    selection = npu_opslib.select(SKU, key, CONV_ATTRS)
    kernel = npu_opslib.get_kernel("Conv")()
    configs = kernel.configs(key, CONV_ATTRS)
    assert len(configs) > 1 and selection.candidates == len(configs)
    fitting = []
    for config in configs:
        try:
            fitting.append(kernel.fused_cost(SKU, key, config, CONV_ATTRS).total_cycles)
        except Exception:
            pass
    assert selection.cost.total_cycles == min(fitting)
    assert npu_opslib.select(SKU, key, CONV_ATTRS) is selection


def test_fused_epilogue_is_cheaper_than_separate_ops():
    conv = npu_opslib.select(SKU, KernelKey("Conv", CONV_SHAPES), CONV_ATTRS).cost
    out = (1, 32, 28, 28)
    relu = npu_opslib.select(SKU, KernelKey("Relu", (out,)), {}).cost
    add = npu_opslib.select(SKU, KernelKey("Add", (out, out)), {}).cost
    fused_relu = npu_opslib.select(SKU, KernelKey("Conv", CONV_SHAPES, fusion="Relu"),
                                   CONV_ATTRS).cost
    fused_add_relu = npu_opslib.select(
        SKU, KernelKey("Conv", CONV_SHAPES + (out,), fusion="Add+Relu"), CONV_ATTRS).cost
    assert conv.total_cycles <= fused_relu.total_cycles < conv.total_cycles + relu.total_cycles
    assert fused_add_relu.total_cycles < (conv + add + relu).total_cycles
    assert fused_add_relu.bytes_read > fused_relu.bytes_read  # the residual is read


def test_epilogues_apply_in_order_after_the_op():
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in CONV_SHAPES)
    residual = rng.standard_normal((1, 32, 28, 28)).astype(np.float32)
    (plain,) = npu_opslib.run_reference("Conv", [x, w, b], CONV_ATTRS)
    (fused,) = npu_opslib.run_reference("Conv", [x, w, b, residual], CONV_ATTRS,
                                        fusion="Add+Relu")
    np.testing.assert_allclose(fused, np.maximum(plain + residual, 0), rtol=1e-6)
    (leaky,) = npu_opslib.run_reference(
        "Gemm", [x.reshape(16, -1).T, w.reshape(32, -1)[:, :16].T],
        {npu_opslib.EPILOGUE_ATTRS: [{"alpha": 0.5}]}, fusion="LeakyRelu")
    product = x.reshape(16, -1).T @ w.reshape(32, -1)[:, :16].T
    np.testing.assert_allclose(leaky, np.where(product > 0, product, 0.5 * product), rtol=1e-5)


def test_unaccepted_fusion_or_precision_is_reported():
    with pytest.raises(npu_opslib.UnsupportedOperator, match="fusion 'Sigmoid'"):
        npu_opslib.select(SKU, KernelKey("Concat", ((1, 2), (1, 2)), fusion="Sigmoid"),
                          {"axis": 1})
    with pytest.raises(npu_opslib.UnsupportedOperator, match="precision int8 not supported"):
        npu_opslib.select(SKU, KernelKey("Relu", ((4,),), precision="int8"), {})


def test_launch_runs_on_device_storage_and_is_timed():
    ctx = Context(SKU)
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in CONV_SHAPES]
    inputs = [ctx.to_device(a, name=f"in{i}") for i, a in enumerate(arrays)]
    output = ctx.alloc((1, 32, 28, 28), np.float32, name="out")
    key = KernelKey("Conv", CONV_SHAPES, fusion="Relu")
    selection = npu_opslib.select(SKU, key, CONV_ATTRS)
    record = npu_opslib.launch(ctx, selection, inputs, [output], CONV_ATTRS, name="conv1")
    expected = npu_opslib.run_reference("Conv", arrays, CONV_ATTRS, fusion="Relu")[0]
    np.testing.assert_allclose(ctx.to_host(output), expected, rtol=1e-5)
    assert record.name == "conv1"
    assert record.end_cycle - record.start_cycle == selection.cost.total_cycles
    assert record.args["fusion"] == "Relu"


def test_tile_config_round_trips():
    config = TileConfig(64, 32, 128)
    assert TileConfig.from_dict(config.to_dict()) == config
    assert TileConfig.from_dict(None).name == "auto"


def test_custom_operator_from_an_entry_point(tmp_path, monkeypatch):
    package = tmp_path / "my_ops.py"
    package.write_text(textwrap.dedent('''
        import numpy as np
        from npu_opslib import Kernel, register_kernel

        @register_kernel
        class Swish(Kernel):
            op_type = "MySwish"
            def _run(self, x):
                return (x / (1 + np.exp(-x)),)
    '''))
    dist = tmp_path / "my_ops-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-ops\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[npu_opslib.kernels]\nswish = my_ops\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from npu_opslib import kernel as kernel_module

    monkeypatch.setattr(kernel_module, "_entry_points_loaded", False)
    monkeypatch.setattr(kernel_module, "_REGISTRY", dict(kernel_module._REGISTRY))
    try:
        assert npu_opslib.is_supported("MySwish")
        (y,) = npu_opslib.run_reference("MySwish", [np.array([0.0, 1.0])], {})
        np.testing.assert_allclose(y, [0.0, 1 / (1 + np.exp(-1))])
    finally:
        sys.modules.pop("my_ops", None)


def test_spatial_kernels_run_in_both_layouts_and_cost_more_off_the_sku_layout():
    with pytest.raises(npu_opslib.UnsupportedOperator, match="layout CHWN"):
        npu_opslib.select(SKU, KernelKey("Conv", CONV_SHAPES, layout="CHWN"), CONV_ATTRS)
    assert npu_opslib.select(SKU, KernelKey("Relu", ((1, 4, 4, 8),), layout="NHWC"), {})
    nhwc_sku = SKU.with_overrides(layout="NHWC")
    costs = {(sku.layout, layout): npu_opslib.select(
        sku, KernelKey("Conv", CONV_SHAPES, layout=layout), CONV_ATTRS).cost.total_cycles
        for sku in (SKU, nhwc_sku) for layout in ("NCHW", "NHWC")}
    assert costs["NCHW", "NCHW"] < costs["NCHW", "NHWC"]
    assert costs["NHWC", "NHWC"] < costs["NHWC", "NCHW"]


def test_nhwc_kernel_computes_the_transposed_nchw_result():
    rng = np.random.default_rng(1)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in CONV_SHAPES)
    residual = rng.standard_normal((1, 32, 28, 28)).astype(np.float32)
    (nchw,) = npu_opslib.run_reference("Conv", [x, w, b, residual], CONV_ATTRS, "Add+Relu")
    (nhwc,) = npu_opslib.run_reference(
        "Conv", [x.transpose(0, 2, 3, 1), w, b, residual.transpose(0, 2, 3, 1)], CONV_ATTRS,
        "Add+Relu", layout="NHWC")
    np.testing.assert_allclose(nhwc, nchw.transpose(0, 2, 3, 1), rtol=1e-6, atol=1e-6)
