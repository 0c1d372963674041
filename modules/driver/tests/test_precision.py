import numpy as np
import pytest

from npu_driver import DriverError
from npu_driver.precision import (dequantize_int8, matmul, quantize_int8, round_bf16, round_to)


def _bits(value: float) -> int:
    return int(np.array(value, dtype=np.float32).view(np.uint32))


def _from_bits(bits: int) -> np.float32:
    return np.array(bits, dtype=np.uint32).view(np.float32)


def test_bf16_rounds_to_nearest_even_on_the_upper_half():
    one = _bits(1.0)  # 0x3F800000
    # Just below half an ulp: down; just above: up; exactly half: to the even neighbour.
    assert _bits(round_bf16(_from_bits(one + 0x7FFF))) == one
    assert _bits(round_bf16(_from_bits(one + 0x8001))) == one + 0x10000
    assert _bits(round_bf16(_from_bits(one + 0x8000))) == one
    odd = one + 0x10000
    assert _bits(round_bf16(_from_bits(odd + 0x8000))) == odd + 0x10000


def test_bf16_keeps_specials_and_representable_values():
    values = np.array([0.0, -0.0, 1.0, -2.5, np.inf, -np.inf, 3.140625], dtype=np.float32)
    assert np.array_equal(round_bf16(values), values)
    assert np.isnan(round_bf16(np.array([np.nan], dtype=np.float32)))[0]


def test_bf16_error_is_within_half_an_ulp():
    values = np.random.default_rng(0).standard_normal(10_000).astype(np.float32)
    rounded = round_bf16(values)
    assert np.all(np.abs(rounded - values) <= np.abs(values) * 2.0**-8)
    assert (_bits_array(rounded) & 0xFFFF == 0).all()


def _bits_array(values):
    return np.asarray(values, dtype=np.float32).view(np.uint32)


def test_fp16_goes_through_ieee_half():
    values = np.array([1 / 3, 70000.0, 1e-8], dtype=np.float32)
    rounded = round_to(values, "fp16")
    assert rounded.dtype == np.float32
    assert rounded[0] == np.float32(np.float16(1 / 3))
    assert np.isinf(rounded[1])  # beyond fp16's range
    assert rounded[2] == 0.0


def test_int8_is_symmetric_saturating_and_round_half_even():
    quantized, scale = quantize_int8(np.array([-2.0, 0.0, 1.0, 2.0], dtype=np.float32))
    assert scale == pytest.approx(2.0 / 127)
    assert quantized.dtype == np.int8
    assert quantized.tolist() == [-127, 0, 64, 127]  # 63.5 rounds to the even 64
    clipped, _ = quantize_int8(np.array([5.0, -5.0]), scale=0.01)
    assert clipped.tolist() == [127, -127]
    assert np.allclose(dequantize_int8(quantized, scale), [-2.0, 0.0, 64 * scale, 2.0])
    assert quantize_int8(np.zeros(3))[1] == 1.0
    with pytest.raises(DriverError, match="scale"):
        quantize_int8(np.ones(2), scale=0.0)


def test_int8_matmul_accumulates_exactly_in_int32():
    rng = np.random.default_rng(1)
    a = rng.uniform(-1, 1, (8, 300)).astype(np.float32)
    b = rng.uniform(-1, 1, (300, 5)).astype(np.float32)
    qa, sa = quantize_int8(a)
    qb, sb = quantize_int8(b)
    exact = (qa.astype(np.int64) @ qb.astype(np.int64)) * (sa * sb)
    assert np.allclose(matmul(a, b, "int8"), exact, rtol=1e-6)


@pytest.mark.parametrize("precision, tolerance", [("fp32", 1e-6), ("fp16", 2e-2), ("bf16", 1e-1),
                                                   ("int8", 1e-1)])
def test_matmul_error_grows_as_precision_shrinks(precision, tolerance):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((16, 64)).astype(np.float32)
    b = rng.standard_normal((64, 16)).astype(np.float32)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    error = np.max(np.abs(matmul(a, b, precision) - exact)) / np.max(np.abs(exact))
    assert error <= tolerance
    if precision != "fp32":
        assert error > 1e-6  # the rounding really happened


def test_unknown_precision_is_named():
    with pytest.raises(DriverError, match="'fp8'"):
        round_to(np.ones(2), "fp8")
