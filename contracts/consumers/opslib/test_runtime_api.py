"""What npu_opslib expects of runtime-api: device arrays whose `view()` is the device storage
(kernels read and write it in place) and `launch` placing a cost on a stream's timeline."""

import numpy as np
import pytest

from npu_driver.perf import vector_cost
from npu_runtime import Context


@pytest.fixture
def ctx():
    return Context("npu-edge")


def test_view_is_device_storage_written_in_place(ctx):
    x = ctx.to_device(np.arange(6, dtype=np.float32).reshape(2, 3), name="x")
    y = ctx.alloc((2, 3), np.float32, name="y")
    ctx.launch("double", lambda: np.multiply(x.view(), 2, out=y.view()),
               vector_cost(ctx.sku, 6, bytes_read=24, bytes_written=24))
    np.testing.assert_array_equal(ctx.to_host(y), np.arange(6).reshape(2, 3) * 2)
    assert (y.shape, y.dtype, y.nbytes, y.name) == ((2, 3), np.float32, 24, "y")


def test_launch_record_and_stream_ordering(ctx):
    cost = vector_cost(ctx.sku, 1024, bytes_read=4096, bytes_written=4096)
    first = ctx.launch("a", None, cost, args={"op_type": "Relu"})
    second = ctx.launch("b", None, cost)
    assert first.name == "a" and first.args == {"op_type": "Relu"}
    assert first.end_cycle - first.start_cycle == cost.total_cycles
    assert second.start_cycle == first.end_cycle
    other = ctx.stream("side")
    side = ctx.launch("c", None, cost, stream=other)
    assert side.start_cycle == 0 and side.stream == "side"
    assert ctx.synchronize() == second.end_cycle


def test_launch_rejects_what_is_not_a_cost(ctx):
    with pytest.raises(Exception):
        ctx.launch("bad", None, 123)
