"""What npu_compiler expects of driver-api: SKUs by name (compile and the CLI), the errors its
CLI turns into exit codes, and the int8 quantization helpers of precision lowering."""

import numpy as np
import pytest

from npu_driver import OutOfDeviceMemory, UnknownSKU, load_sku
from npu_driver.errors import InvalidSKU
from npu_driver.precision import INT8_MAX, int8_scale, quantize_int8


def test_skus_load_by_name_and_unknown_ones_are_refused():
    sku = load_sku("npu-dc")
    assert sku.name == "npu-dc" and sku.clock_ghz > 0
    with pytest.raises(UnknownSKU, match="npu-nope"):
        load_sku("npu-nope")


def test_the_errors_the_cli_classifies_exist_as_exceptions():
    for error in (OutOfDeviceMemory, UnknownSKU, InvalidSKU):
        assert issubclass(error, Exception)


def test_int8_symmetric_quantization_saturates_and_roundtrips():
    values = np.array([-2.0, -0.5, 0.0, 0.25, 1.0], dtype=np.float32)
    scale = int8_scale(values)
    assert INT8_MAX == 127 and scale == pytest.approx(2.0 / 127)
    quantized, used = quantize_int8(values, scale)
    assert quantized.dtype == np.int8 and used == scale
    assert quantized.min() >= -INT8_MAX and quantized.max() <= INT8_MAX
    assert np.abs(quantized * scale - values).max() <= scale / 2 + 1e-7


def test_public_cost_calls_are_recorded_for_the_analysis():
    # driver-api 2.2: the compiler's workload analysis (npu_compiler.analysis) re-prices a
    # plan from the cost calls recorded while it was costed, and builds DMA calls itself.
    from npu_driver import perf

    sku = load_sku("npu-edge")
    with perf.recording() as calls:
        cost = perf.dma_cost(sku, nbytes=4096, direction="h2d")
    assert cost.total_cycles > 0
    assert [c.function for c in calls] == ["dma_cost"]
    assert perf.CostCall("dma_cost", {"nbytes": 4096, "direction": "h2d"}) == calls[0]
