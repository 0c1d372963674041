"""What npu_runtime expects of driver-api 2.0: SKUs, device memory placed by an aligning
allocator (`Allocation`s) that it types and shares in place through `view`, the out-of-memory
error it lets through, and the host-link cost of its copies."""

import numpy as np
import pytest

from npu_driver import Allocation, Device, DriverError, OutOfDeviceMemory, load_sku
from npu_driver.perf import Cost, dma_cost


def small_device(capacity=1024):
    return Device(load_sku("npu-edge").with_overrides(device_memory_bytes=capacity))


def test_load_sku_accepts_a_name_or_an_sku():
    sku = load_sku("npu-edge")
    assert load_sku(sku) == sku
    assert sku.clock_ghz > 0 and sku.device_memory_bytes > 0


def test_alloc_then_typed_view_is_the_device_storage():
    device = small_device()
    allocation = device.alloc(24)
    assert isinstance(allocation, Allocation) and allocation.size == 24
    typed = device.view(allocation, (2, 3), np.float32)
    typed[...] = np.arange(6, dtype=np.float32).reshape(2, 3)
    again = device.view(allocation, (2, 3), np.float32)
    again[1, 2] = 42  # the runtime's kernels write through the view, in place
    assert typed[1, 2] == 42 and again.dtype == np.float32


def test_alignment_is_honoured():
    device = small_device()
    device.alloc(10)
    for alignment in (4, 8, 64):
        assert device.alloc(4, alignment=alignment).offset % alignment == 0


def test_memory_accounting_and_free():
    device = small_device()
    a = device.alloc(512)
    assert (device.used_bytes, device.peak_bytes, device.capacity_bytes) == (512, 512, 1024)
    device.free(a)
    assert device.used_bytes == 0 and device.peak_bytes == 512
    with pytest.raises(DriverError):
        device.free(a)
    with pytest.raises(DriverError):
        device.view(a, (1,), np.uint8)


def test_out_of_memory_is_a_driver_error_with_the_numbers():
    device = small_device()
    device.alloc(512)
    with pytest.raises(OutOfDeviceMemory, match="needed 1024 bytes, 512 free of 1024"):
        device.alloc(1024)
    assert issubclass(OutOfDeviceMemory, DriverError)


def test_dma_cost_times_copies_both_ways():
    sku = load_sku("npu-edge")
    h2d = dma_cost(sku, 1 << 20, direction="h2d")
    d2h = dma_cost(sku, 1 << 20, direction="d2h")
    assert isinstance(h2d, Cost) and h2d.total_cycles > 0 and d2h.total_cycles > 0
    assert dma_cost(sku, 2 << 20).total_cycles > h2d.total_cycles
    assert {"total_cycles", "bytes_read", "bytes_written"} <= set(h2d.to_dict())

