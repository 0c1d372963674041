import numpy as np
import pytest

from npu_driver import DriverError, OutOfDeviceMemory, load_sku
from npu_driver.perf import Cost, dma_cost, gemm_cost
from npu_runtime import Context, RuntimeAPIError


def fixed(cycles: int) -> Cost:
    return Cost(unit="vector", compute_cycles=cycles, stall_cycles=0, total_cycles=cycles)


def test_context_owns_device_of_its_sku():
    ctx = Context("npu-edge")
    assert ctx.sku == load_sku("npu-edge")
    assert ctx.device.capacity_bytes == ctx.sku.device_memory_bytes
    assert ctx.timeline.records == [] and ctx.synchronize() == 0


def test_copies_round_trip_and_are_timed_on_the_host_link():
    ctx = Context("npu-edge")
    host = np.arange(12, dtype=np.float32).reshape(3, 4)
    darr = ctx.to_device(host, name="x")
    assert (darr.shape, darr.dtype, darr.nbytes, darr.name) == ((3, 4), np.float32, 48, "x")
    back = ctx.to_host(darr)
    np.testing.assert_array_equal(back, host)
    assert back is not darr.view()
    h2d, d2h = ctx.timeline.records
    assert h2d.cycles == dma_cost(ctx.sku, 48).total_cycles
    assert d2h.start_cycle == h2d.end_cycle


def test_launch_runs_functional_work_in_place():
    ctx = Context("npu-edge")
    a = ctx.to_device(np.full((8, 8), 2, np.float32))
    out = ctx.alloc((8, 8), np.float32, name="out")
    cost = gemm_cost(ctx.sku, 8, 8, 8)
    record = ctx.launch("matmul", lambda: np.matmul(a.view(), a.view(), out=out.view()), cost,
                        args={"M": 8})
    assert (record.name, record.stream, record.cost, record.args) == ("matmul", "default", cost, {"M": 8})
    assert record.end_cycle - record.start_cycle == cost.total_cycles
    assert np.all(ctx.to_host(out) == 32)


def test_work_on_one_stream_is_in_order():
    ctx = Context("npu-edge")
    first = ctx.launch("a", None, fixed(100))
    second = ctx.launch("b", None, fixed(50))
    assert (first.start_cycle, first.end_cycle, second.start_cycle, second.end_cycle) == (0, 100, 100, 150)


def test_streams_overlap_until_an_event_is_waited_on():
    ctx = Context("npu-edge")
    side = ctx.stream("side")
    ctx.launch("main work", None, fixed(100))
    parallel = ctx.launch("side work", None, fixed(30), stream=side)
    assert parallel.start_cycle == 0
    done = ctx.default_stream.record_event()
    ctx.launch("later main work", None, fixed(10))
    side.wait_event(done)
    dependent = ctx.launch("dependent", None, fixed(5), stream=side)
    assert dependent.start_cycle == 100  # after the event, not after later main work (110)
    assert ctx.synchronize() == 110


def test_waiting_on_a_past_event_does_not_move_the_stream_back():
    ctx = Context("npu-edge")
    early = ctx.default_stream.record_event()
    side = ctx.stream()
    ctx.launch("x", None, fixed(40), stream=side)
    side.wait_event(early)
    assert ctx.launch("y", None, fixed(1), stream=side).start_cycle == 40


def test_stream_names_are_unique_and_streams_belong_to_their_context():
    ctx, other = Context("npu-edge"), Context("npu-edge")
    assert ctx.stream().name != ctx.stream().name
    with pytest.raises(RuntimeAPIError, match="already exists"):
        ctx.stream("default")
    with pytest.raises(RuntimeAPIError, match="not a stream of this context"):
        ctx.launch("x", None, fixed(1), stream=other.default_stream)
    with pytest.raises(RuntimeAPIError, match="another context"):
        ctx.default_stream.wait_event(other.default_stream.record_event())


def test_launch_requires_a_cost():
    with pytest.raises(RuntimeAPIError, match="must be an npu_driver.perf.Cost"):
        Context("npu-edge").launch("x", None, 100)


def test_out_of_device_memory_through_the_context():
    ctx = Context(load_sku("npu-edge").with_overrides(device_memory_bytes=1024))
    ctx.alloc((128,), np.float32)
    with pytest.raises(OutOfDeviceMemory, match="needed 1024 bytes, 512 free of 1024"):
        ctx.alloc((16, 16), np.float32)


def test_free_releases_memory_and_guards_use_after_free():
    ctx = Context("npu-edge")
    darr = ctx.alloc((256,), np.float64, name="tmp")
    assert ctx.device.used_bytes == 2048
    ctx.free(darr)
    assert ctx.device.used_bytes == 0 and ctx.device.peak_bytes == 2048
    with pytest.raises(RuntimeAPIError, match="'tmp' was freed"):
        darr.view()
    with pytest.raises(DriverError, match="already freed"):
        ctx.free(darr)


def test_profile_summarises_the_run():
    ctx = Context("npu-dc")
    ctx.to_device(np.zeros(1000, np.float32), name="w")
    ctx.launch("k", None, fixed(1400))
    profile = ctx.profile()
    assert profile["total_cycles"] == ctx.synchronize()
    assert profile["latency_us"] == pytest.approx(profile["total_cycles"] / 1400)
    assert profile["peak_device_bytes"] == 4000
    launch = profile["launches"][1]
    assert {"name", "stream", "start_cycle", "cycles", "total_cycles", "unit", "macs"} <= set(launch)
    assert launch["cycles"] == 1400 and launch["name"] == "k"


def test_alloc_places_arrays_at_aligned_offsets():
    ctx = Context("npu-edge")
    first = ctx.alloc((3,), np.float32)
    second = ctx.alloc((5,), np.float64, alignment=64)
    assert first.allocation.offset == 0 and first.handle is first.allocation
    assert second.allocation.offset % 64 == 0 and second.allocation.offset >= first.nbytes
    second.view()[...] = 7.0
    assert ctx.to_host(second).tolist() == [7.0] * 5
