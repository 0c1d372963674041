import numpy as np
import pytest

from npu_driver import DEFAULT_ALIGNMENT, Allocation, Device, DriverError, OutOfDeviceMemory, load_sku


def small_device(capacity=1024):
    return Device(load_sku("npu-edge").with_overrides(device_memory_bytes=capacity))


def test_alloc_free_tracks_used_and_peak():
    device = small_device()
    a, b = device.alloc(400), device.alloc(300)
    assert (device.used_bytes, device.peak_bytes, device.capacity_bytes) == (700, 700, 1024)
    device.free(a)
    c = device.alloc(200)
    assert device.used_bytes == 500 and device.peak_bytes == 700
    assert len({a.id, b.id, c.id}) == 3


def test_allocations_are_aligned_first_fit():
    device = small_device()
    a = device.alloc(100)
    b = device.alloc(10, alignment=64)
    c = device.alloc(1)
    assert isinstance(a, Allocation) and (a.offset, a.size, a.alignment) == (0, 100, DEFAULT_ALIGNMENT)
    assert b.offset == 128 and b.alignment == 64  # first 64-aligned offset after a
    assert c.offset == 256
    assert [x.offset for x in device.allocations] == [0, 128, 256]
    with pytest.raises(DriverError, match="power of two"):
        device.alloc(8, alignment=48)


def test_freed_neighbours_coalesce():
    device = small_device()
    blocks = [device.alloc(256) for _ in range(4)]
    device.free(blocks[1])
    device.free(blocks[2])
    assert device.largest_free_block == 512
    assert device.alloc(512).offset == 256


def test_fragmentation_can_exhaust_memory_before_the_bytes_run_out():
    device = small_device()
    blocks = [device.alloc(256) for _ in range(4)]
    device.free(blocks[0])
    device.free(blocks[2])
    assert device.free_bytes == 512 and device.fragmentation == pytest.approx(0.5)
    with pytest.raises(OutOfDeviceMemory) as err:
        device.alloc(300)
    assert str(err.value) == ("device out of memory on npu-edge: needed 300 bytes, 512 free of "
                              "1024 (fragmented: largest free block 256 bytes, alignment 256)")


def test_out_of_memory_message():
    device = small_device(1000)
    device.alloc(900)
    with pytest.raises(OutOfDeviceMemory) as err:
        device.alloc(200)
    assert str(err.value) == "device out of memory on npu-edge: needed 200 bytes, 100 free of 1000"
    assert isinstance(err.value, DriverError)
    assert device.used_bytes == 900


def test_view_is_device_storage():
    device = small_device()
    allocation = device.alloc(24)
    device.view(allocation, (2, 3), np.float32)[...] = np.arange(6).reshape(2, 3)
    again = device.view(allocation, (6,), np.float32)
    assert again.dtype == np.float32 and again[5] == 5
    again[0] = 42
    assert device.view(allocation, (2, 3), np.float32)[0, 0] == 42


def test_repeated_views_are_new_arrays_on_the_same_storage_until_freed():
    device = small_device()
    allocation = device.alloc(24)
    first = device.view(allocation, (2, 3), np.float32)
    first.shape = (6,)  # what one caller does to its array does not leak into the next
    second = device.view(allocation, (2, 3), np.float32)
    assert second is not first and second.shape == (2, 3)
    second[1, 2] = 7
    assert first[5] == 7
    device.free(allocation)
    with pytest.raises(DriverError, match="invalid or freed allocation"):
        device.view(allocation, (2, 3), np.float32)
    reused = device.alloc(24)  # same offset, new id: its storage starts zeroed
    assert reused.offset == allocation.offset
    assert not device.view(reused, (2, 3), np.float32).any()


def test_oversized_views_and_stale_allocations_fail():
    device = small_device()
    allocation = device.alloc(8)
    with pytest.raises(DriverError, match="needs 12 bytes"):
        device.view(allocation, (3,), np.float32)
    device.free(allocation)
    with pytest.raises(DriverError, match="invalid or freed allocation"):
        device.view(allocation, (2,), np.float32)
    with pytest.raises(DriverError, match="invalid or freed"):
        device.free(allocation)
    with pytest.raises(DriverError, match="no integer handles"):
        device.free(1)
    with pytest.raises(DriverError, match="non-negative"):
        device.alloc(-1)


def test_zero_byte_allocations_need_no_room():
    device = small_device(256)
    device.alloc(256)
    empty = device.alloc(0)
    assert empty.size == 0 and device.view(empty, (0,), np.float32).shape == (0,)
    device.free(empty)
