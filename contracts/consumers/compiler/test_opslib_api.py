"""What npu_compiler expects of opslib-api: the five-tuple key, kernel lookup, selection on the
cost model (remembered), launching on a context and the functional reference."""

import numpy as np
import pytest

import npu_opslib
from npu_opslib import KernelKey, UnsupportedOperator
from npu_driver import load_sku
from npu_runtime import Context


@pytest.fixture(scope="module")
def sku():
    return load_sku("npu-edge")


def test_the_operators_the_compiler_lowers_to_are_supported():
    for op in ("Conv", "Gemm", "MatMul", "Relu", "Add", "MaxPool", "Softmax", "Reshape"):
        assert npu_opslib.is_supported(op), op
    assert "Conv" in npu_opslib.supported_ops()
    assert not npu_opslib.is_supported("NoSuchOp")
    with pytest.raises(UnsupportedOperator, match="NoSuchOp"):
        npu_opslib.get_kernel("NoSuchOp")


def test_select_is_remembered_and_carries_its_key(sku):
    key = KernelKey("MatMul", ((32, 64), (64, 16)), "fp32", "NCHW", "")
    first = npu_opslib.select(sku, key, {})
    assert first.key == key and first.cost.total_cycles > 0
    assert first is npu_opslib.select(sku, key, {})
    assert first.config.name and isinstance(first.config.to_dict(), dict)


def test_launch_computes_into_the_outputs(sku):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((8, 4), np.float32), rng.standard_normal((4, 5), np.float32)
    key = KernelKey("MatMul", (a.shape, b.shape), "fp32", "NCHW", "Relu")
    selection = npu_opslib.select(sku, key, {})
    ctx = Context(sku)
    out = ctx.alloc((8, 5), np.float32)
    record = npu_opslib.launch(ctx, selection, [ctx.to_device(a), ctx.to_device(b)], [out], {})
    np.testing.assert_allclose(ctx.to_host(out), np.maximum(a @ b, 0), rtol=1e-5, atol=1e-5)
    assert record.cost.total_cycles == selection.cost.total_cycles


def test_run_reference_is_functional_only():
    (y,) = npu_opslib.run_reference("Relu", [np.array([-1.0, 2.0], np.float32)], {})
    np.testing.assert_array_equal(y, [0.0, 2.0])


# -- what compiler 1.1 lowers to, provided from opslib-api 1.1 on ----------------------------

def test_the_kernels_transformer_fusions_produce():
    for op in ("LayerNormalization", "Gelu", "FusedAttention", "Erf", "Where"):
        assert npu_opslib.is_supported(op), op


def test_kernels_tell_their_precisions_and_layout_sensitivity():
    conv = npu_opslib.get_kernel("Conv")
    assert {"fp32", "fp16", "bf16", "int8"} <= set(conv.supported_precisions())
    assert conv.layout_sensitive() and not npu_opslib.get_kernel("Relu").layout_sensitive()
    assert npu_opslib.kernel.INT8_SCALES


def test_the_functional_reference_honours_precision():
    x = np.array([[1.0 + 2.0 ** -9, 3.0]], dtype=np.float32)
    (fp32,) = npu_opslib.run_reference("Relu", [x], {}, precision="fp32")
    (bf16,) = npu_opslib.run_reference("Relu", [x], {}, precision="bf16")
    assert fp32[0, 0] == x[0, 0] and bf16[0, 0] == 1.0


def test_kernels_take_prepacked_constants_and_still_compute_any_input():
    """opslib-api 1.3: the engine hands each kernel its weights once (`prepack`); an older
    opslib has no prepack and the engine skips it."""
    kernel = npu_opslib.get_kernel("Conv")()
    if not hasattr(kernel, "prepack"):
        pytest.skip("opslib-api < 1.3: no prepack")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 64, 14, 14), np.float32)
    w = rng.standard_normal((8, 64, 3, 3), np.float32)
    attrs = {"pads": [1, 1, 1, 1]}
    assert kernel.prepack(KernelKey("Conv", (x.shape, w.shape)), {1: w}, attrs) is None
    for weights in (w, w[::-1].copy()):
        np.testing.assert_allclose(kernel.run([x, weights], attrs)[0],
                                   npu_opslib.run_reference("Conv", [x, weights], attrs)[0],
                                   rtol=1e-4, atol=1e-4)
