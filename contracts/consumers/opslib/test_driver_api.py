"""What npu_opslib expects of driver-api: the performance model it autotunes on (gemm, conv,
vector costs with explicit tiles, TileDoesNotFit for tiles beyond SRAM) and SKU data."""

import numpy as np
import pytest

from npu_driver import load_sku, perf


@pytest.fixture(scope="module")
def sku():
    return load_sku("npu-edge")


def test_gemm_cost_with_and_without_a_tile(sku):
    auto = perf.gemm_cost(sku, 64, 64, 64, precision="fp32")
    tiled = perf.gemm_cost(sku, 64, 64, 64, precision="fp32", tile=perf.Tile(32, 32, 32))
    assert auto.macs == tiled.macs == 64 * 64 * 64
    assert auto.total_cycles > 0 and tiled.total_cycles > 0
    assert auto.unit == "array"


def test_lower_precision_is_not_slower(sku):
    fp32 = perf.gemm_cost(sku, 256, 256, 256, precision="fp32")
    int8 = perf.gemm_cost(sku, 256, 256, 256, precision="int8")
    assert int8.total_cycles <= fp32.total_cycles


def test_conv_cost_geometry(sku):
    cost = perf.conv_cost(sku, batch=1, in_channels=8, in_h=16, in_w=16, out_channels=16,
                          kernel_h=3, kernel_w=3, stride_h=1, stride_w=1, pad_h=1, pad_w=1,
                          precision="fp32", tile=None)
    assert cost.macs == 16 * 16 * 16 * 8 * 9
    grouped = perf.conv_cost(sku, batch=1, in_channels=8, in_h=16, in_w=16, out_channels=8,
                             kernel_h=3, kernel_w=3, stride_h=1, stride_w=1, pad_h=1, pad_w=1,
                             groups=8)
    assert grouped.macs == 16 * 16 * 8 * 9


def test_vector_cost_and_sequential_composition(sku):
    a = perf.vector_cost(sku, 4096, ops_per_element=2, bytes_read=16384, bytes_written=16384,
                         precision="fp32")
    assert a.unit == "vector" and a.total_cycles > 0
    both = a + a
    assert both.total_cycles == 2 * a.total_cycles
    assert both.bytes_read == 2 * a.bytes_read


def test_a_tile_beyond_sram_raises_tile_does_not_fit(sku):
    huge = perf.Tile(1 << 14, 1 << 14, 1 << 14)
    with pytest.raises(perf.TileDoesNotFit):
        perf.gemm_cost(sku, 1 << 14, 1 << 14, 1 << 14, tile=huge)


def test_sku_fields_the_kernels_read(sku):
    assert sku.precisions["fp32"] == 1
    assert sku.layout in ("NCHW", "NHWC")
    assert sku.sram_bytes > 0 and sku.array_rows > 0 and sku.array_cols > 0


def test_precision_rounding_of_kernel_operands():
    from npu_driver.precision import quantize_int8, round_to

    # 1 + 2**-9 keeps its last bit in fp16 (10 mantissa bits) but not in bf16 (7 bits).
    values = np.array([1.0 + 2.0 ** -12, 1.0 + 2.0 ** -9, 3.14159], dtype=np.float32)
    fp16 = round_to(values, "fp16")
    assert fp16[0] == 1.0 and fp16[1] == values[1] and abs(fp16[2] - 3.14159) < 2e-3
    bf16 = round_to(values, "bf16")
    assert bf16[1] == 1.0 and abs(bf16[2] - 3.14159) < 2e-2
    assert np.array_equal(round_to(values, "fp32"), values)
    quantized, scale = quantize_int8(values[:2])
    assert quantized.dtype == np.int8 and scale > 0
