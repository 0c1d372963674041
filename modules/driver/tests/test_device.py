import numpy as np
import pytest

from npu_driver import Device, DriverError, OutOfDeviceMemory, load_sku


def small_device(capacity=1000):
    return Device(load_sku("npu-edge").with_overrides(device_memory_bytes=capacity))


def test_alloc_free_tracks_used_and_peak():
    device = small_device()
    a, b = device.alloc(400), device.alloc(300)
    assert (device.used_bytes, device.peak_bytes, device.capacity_bytes) == (700, 700, 1000)
    device.free(a)
    c = device.alloc(200)
    assert device.used_bytes == 500 and device.peak_bytes == 700
    assert len({a, b, c}) == 3


def test_out_of_memory_message():
    device = small_device()
    device.alloc(900)
    with pytest.raises(OutOfDeviceMemory) as err:
        device.alloc(200)
    assert str(err.value) == "device out of memory on npu-edge: needed 200 bytes, 100 free of 1000"
    assert isinstance(err.value, DriverError)
    assert device.used_bytes == 900


def test_write_read_round_trip_is_device_storage():
    device = small_device()
    handle = device.alloc(24)
    device.write(handle, np.arange(6, dtype=np.float32).reshape(2, 3))
    stored = device.read(handle)
    assert stored.shape == (2, 3) and stored.dtype == np.float32
    stored[0, 0] = 42
    assert device.read(handle)[0, 0] == 42


def test_write_larger_than_allocation_and_stale_handles_fail():
    device = small_device()
    handle = device.alloc(8)
    with pytest.raises(DriverError, match="needs 12 bytes"):
        device.write(handle, np.zeros(3, np.float32))
    device.free(handle)
    with pytest.raises(DriverError, match="invalid or freed device handle"):
        device.read(handle)
    with pytest.raises(DriverError, match="invalid or freed"):
        device.free(handle)
    with pytest.raises(DriverError, match="non-negative"):
        device.alloc(-1)
