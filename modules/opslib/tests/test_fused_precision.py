"""The fused kernels (attention, layer norm, GELU) against their unfused ops, and the
precision emulation (fp16/bf16 rounding, int8 quantized matrix ops) against npu_driver's."""

from __future__ import annotations

import math

import numpy as np
import pytest

import npu_opslib
from npu_driver import load_sku
from npu_driver import precision as npu_precision
from npu_opslib import KernelKey
from npu_opslib.kernel import gelu
from npu_opslib.ops.activations import erf

SKU = load_sku("npu-edge")
rng = np.random.default_rng(0)


def unfused_attention(q, k_t, v, mask, scale):
    scores = npu_opslib.run_reference("MatMul", [q, k_t])[0]
    scores = npu_opslib.run_reference("Mul", [scores, np.float32(scale)])[0]
    scores = npu_opslib.run_reference("Add", [scores, mask])[0]
    probs = npu_opslib.run_reference("Softmax", [scores], {"axis": -1})[0]
    return npu_opslib.run_reference("MatMul", [probs, v])[0]


def attention_inputs(batch=2, heads=3, seq=16, dim=8):
    q, v = (rng.standard_normal((batch, heads, seq, dim)).astype(np.float32) for _ in range(2))
    k_t = rng.standard_normal((batch, heads, dim, seq)).astype(np.float32)
    mask = np.triu(np.full((seq, seq), -1e4, np.float32), 1)[None, None]
    return q, k_t, v, mask


def test_fused_attention_equals_the_unfused_ops_and_costs_less():
    q, k_t, v, mask = attention_inputs()
    scale = 1 / math.sqrt(q.shape[-1])
    (fused,) = npu_opslib.run_reference("FusedAttention", [q, k_t, v, mask], {"scale": scale})
    np.testing.assert_allclose(fused, unfused_attention(q, k_t, v, mask, scale), rtol=1e-5,
                               atol=1e-6)
    shapes = tuple(a.shape for a in (q, k_t, v, mask))
    fused_cost = npu_opslib.select(SKU, KernelKey("FusedAttention", shapes),
                                   {"scale": scale}).cost.total_cycles
    scores = (2, 3, 16, 16)
    parts = [("MatMul", (q.shape, k_t.shape)), ("Mul", (scores, ())),
             ("Add", (scores, mask.shape)), ("Softmax", (scores,)),
             ("MatMul", (scores, v.shape))]
    unfused_cost = sum(npu_opslib.select(SKU, KernelKey(op, s), {}).cost.total_cycles
                       for op, s in parts)
    assert fused_cost < unfused_cost


def test_layer_normalization_and_gelu_match_their_definitions():
    x = rng.standard_normal((2, 5, 32)).astype(np.float32)
    gamma, beta = rng.standard_normal(32).astype(np.float32), rng.standard_normal(32).astype(
        np.float32)
    y = npu_opslib.run_reference("LayerNormalization", [x, gamma, beta], {"epsilon": 1e-5})[0]
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5) * gamma + beta, rtol=1e-4,
                               atol=1e-5)
    exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.ravel()])
    np.testing.assert_allclose(npu_opslib.run_reference("Gelu", [x])[0].ravel(), exact,
                               rtol=1e-6, atol=1e-7)
    grid = np.linspace(-7, 7, 1001)
    np.testing.assert_allclose(erf(grid), [math.erf(v) for v in grid], rtol=0, atol=1e-14)
    # The negative tail keeps its relative precision (1 + erf would cancel to 0 there).
    tail = np.linspace(-12, -3, 91)
    np.testing.assert_allclose(gelu(tail), [0.5 * v * math.erfc(-v / math.sqrt(2))
                                            for v in tail], rtol=1e-13, atol=0)


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_low_precision_matmul_rounds_like_the_driver(precision):
    a = rng.standard_normal((8, 64)).astype(np.float32)
    b = rng.standard_normal((64, 16)).astype(np.float32)
    (got,) = npu_opslib.run_reference("MatMul", [a, b], precision=precision)
    np.testing.assert_array_equal(got, npu_precision.matmul(a, b, precision))
    assert not np.array_equal(got, a @ b)


def test_int8_matmul_is_int32_accumulation_of_quantized_operands():
    a = rng.standard_normal((8, 300)).astype(np.float32)
    b = rng.standard_normal((300, 16)).astype(np.float32)
    scales = [npu_precision.int8_scale(a), npu_precision.int8_scale(b)]
    (got,) = npu_opslib.run_reference("MatMul", [a, b], {npu_opslib.kernel.INT8_SCALES: scales},
                                      precision="int8")
    np.testing.assert_allclose(got, npu_precision.matmul(a, b, "int8"), rtol=1e-6)
    qb, _ = npu_precision.quantize_int8(b, scales[1])  # weights stored as int8 give the same
    (stored,) = npu_opslib.run_reference("MatMul", [a, qb],
                                         {npu_opslib.kernel.INT8_SCALES: scales},
                                         precision="int8")
    np.testing.assert_array_equal(stored, got)
    cosine = np.sum(got * (a @ b)) / np.linalg.norm(got) / np.linalg.norm(a @ b)
    assert 0.999 < cosine < 1.0


def test_int8_conv_bias_is_added_in_the_accumulator():
    x = rng.standard_normal((1, 4, 6, 6)).astype(np.float32)
    w = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    scales = [npu_precision.int8_scale(x), npu_precision.int8_scale(w)]
    (got,) = npu_opslib.run_reference("Conv", [x, w, b], {npu_opslib.kernel.INT8_SCALES: scales},
                                      precision="int8")
    (exact,) = npu_opslib.run_reference("Conv", [x, w, b])
    assert np.abs(got - exact).max() < 0.05 * np.abs(exact).max()
    with pytest.raises(npu_opslib.KernelError, match="int8 needs 2 operand scales"):
        npu_opslib.run_reference("Conv", [x, w, b], {}, precision="int8")


def test_int8_is_for_matrix_kernels_and_is_cheaper_on_the_array():
    shapes = ((64, 256), (256, 256))
    costs = {p: npu_opslib.select(SKU, KernelKey("MatMul", shapes, p), {}).cost.total_cycles
             for p in ("fp32", "fp16", "int8")}
    assert costs["int8"] < costs["fp16"] < costs["fp32"]
    with pytest.raises(npu_opslib.UnsupportedOperator, match="precision int8"):
        npu_opslib.select(SKU, KernelKey("Relu", ((4,),), "int8"), {})


def test_int8_attention_keeps_the_output_direction():
    q, k_t, v, mask = attention_inputs()
    attrs = {"scale": 0.35}
    (exact,) = npu_opslib.run_reference("FusedAttention", [q, k_t, v, mask], attrs)
    scales = [npu_precision.int8_scale(t) for t in (q, k_t, v)]
    (got,) = npu_opslib.run_reference("FusedAttention", [q, k_t, v, mask],
                                      {**attrs, npu_opslib.kernel.INT8_SCALES: scales},
                                      precision="int8")
    cosine = np.sum(got * exact) / np.linalg.norm(got) / np.linalg.norm(exact)
    assert 0.99 < cosine < 1.0


def test_float32_erfc_is_within_a_few_ulp_of_math_erfc():
    from npu_opslib.fastmath import erfc_float32

    grid = np.concatenate([np.linspace(-6, 9, 30001), [0.0, -0.0, 1e-30, 40.0, -40.0]]).astype(
        np.float32)
    exact = np.array([math.erfc(float(v)) for v in grid])
    got = erfc_float32(grid).astype(np.float64)
    normal = exact > 1e-30
    assert np.max(np.abs(got[normal] / exact[normal] - 1)) < 5e-6
    assert np.all(np.abs(got[~normal] - exact[~normal]) < 1e-30)
    in_place = grid.copy()
    erfc_float32(in_place, out=in_place)
    np.testing.assert_array_equal(in_place, got.astype(np.float32))


def test_float32_gelu_matches_the_exact_one_to_float32_precision():
    y = np.linspace(-12, 12, 48001).astype(np.float32)
    exact = np.array([0.5 * float(v) * math.erfc(-float(v) / math.sqrt(2)) for v in y])
    got = gelu(y).astype(np.float64)
    assert got.dtype == np.float64 and gelu(y).dtype == np.float32
    big = np.abs(exact) > 1e-6
    assert np.max(np.abs(got[big] - exact[big]) / np.abs(exact[big])) < 3e-6
    assert np.max(np.abs(got - exact)) < 1e-6
