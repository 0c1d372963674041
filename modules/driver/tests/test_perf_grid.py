"""The vectorized cost model agrees exactly with the scalar one (perf) on random design points
and problems: one meaning, two speeds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npu_driver import load_sku, perf, perf_grid
from npu_driver.errors import DriverError
from npu_driver.perf import Tile

BASES = {name: load_sku(name) for name in ("npu-dc", "npu-edge")}

points = st.lists(st.builds(
    lambda base, rows, cols, sram, bandwidth, cores, dataflow, clock, latency, lanes:
        BASES[base].with_overrides(array_rows=rows, array_cols=cols, sram_bytes=sram,
                                   dram_bandwidth_gbps=bandwidth, cores=cores, dataflow=dataflow,
                                   clock_ghz=clock, dram_latency_ns=latency, vector_lanes=lanes),
    st.sampled_from(sorted(BASES)), st.integers(1, 256), st.integers(1, 256),
    st.integers(64, 64 << 20), st.floats(0.5, 4000), st.integers(1, 8),
    st.sampled_from(["os", "ws", "is"]), st.floats(0.2, 3.0), st.floats(0, 500),
    st.integers(1, 128)), min_size=1, max_size=12)
tiles = st.one_of(st.none(), st.builds(Tile, st.integers(1, 2048), st.integers(1, 1024),
                                       st.integers(1, 2048)))
precisions = st.sampled_from(["fp32", "fp16", "bf16", "int8"])


def scalar_figures(price, sku):
    try:
        cost = price(sku)
    except DriverError:
        return None
    return (cost.total_cycles, cost.compute_cycles, cost.stall_cycles, cost.fill_drain_cycles,
            cost.bytes_read, cost.bytes_written, cost.dram_utilization)


def grid_figures(cost, p):
    if not cost.feasible[p]:
        return None
    total = int(cost.total_cycles[p])
    return (total, int(cost.compute_cycles[p]), int(cost.stall_cycles[p]),
            int(cost.fill_drain_cycles[p]), int(cost.bytes_read[p]), int(cost.bytes_written[p]),
            int(cost.memory_cycles[p]) / total if total else 0.0)


def check(skus, grid_cost, price):
    for p, sku in enumerate(skus):
        assert grid_figures(grid_cost, p) == scalar_figures(price, sku), sku


@settings(max_examples=60, deadline=None)
@given(points, st.integers(1, 5000), st.integers(1, 2000), st.integers(1, 5000),
       st.integers(1, 6), precisions, tiles)
def test_gemm_agrees_with_the_scalar_model(skus, M, N, K, batch, precision, tile):
    grid = perf_grid.Grid.from_skus(skus)
    cost = perf_grid.gemm_cost(grid, M, N, K, precision=precision, batch=batch, tile=tile)
    check(skus, cost, lambda sku: perf.gemm_cost(sku, M, N, K, precision=precision, batch=batch,
                                                 tile=tile))
    for p, sku in enumerate(skus):
        if cost.feasible[p]:
            assert cost.pe_cycles[p] == M * N * K * batch / sku.multiplier(precision)


@settings(max_examples=40, deadline=None)
@given(points, st.integers(1, 4), st.sampled_from([1, 2, 4]), st.integers(1, 64),
       st.integers(1, 64), st.integers(1, 96), st.sampled_from([1, 3, 5, 7]),
       st.sampled_from([1, 2]), st.integers(0, 3), precisions, tiles)
def test_conv_agrees_with_the_scalar_model(skus, batch, groups, channels, size, filters, kernel,
                                           stride, pad, precision, tile):
    geometry = dict(batch=batch, in_channels=channels * groups, in_h=size + kernel,
                    in_w=size + kernel, out_channels=filters * groups, kernel_h=kernel,
                    kernel_w=kernel, stride_h=stride, stride_w=stride, pad_h=pad, pad_w=pad,
                    groups=groups)
    grid = perf_grid.Grid.from_skus(skus)
    cost = perf_grid.conv_cost(grid, precision=precision, tile=tile, **geometry)
    check(skus, cost, lambda sku: perf.conv_cost(sku, precision=precision, tile=tile, **geometry))


@settings(max_examples=60, deadline=None)
@given(points, st.integers(0, 10**8), st.integers(0, 12), st.integers(0, 10**9),
       st.integers(0, 10**9), precisions, st.integers(0, 10**10),
       st.sampled_from(["h2d", "d2h"]))
def test_vector_and_dma_agree_with_the_scalar_model(skus, elements, ops, read, written,
                                                    precision, nbytes, direction):
    grid = perf_grid.Grid.from_skus(skus)
    check(skus, perf_grid.vector_cost(grid, elements, ops_per_element=ops, bytes_read=read,
                                      bytes_written=written, precision=precision),
          lambda sku: perf.vector_cost(sku, elements, ops_per_element=ops, bytes_read=read,
                                       bytes_written=written, precision=precision))
    check(skus, perf_grid.dma_cost(grid, nbytes, direction=direction),
          lambda sku: perf.dma_cost(sku, nbytes, direction=direction))


def test_recorded_calls_price_as_their_sum():
    sku = BASES["npu-edge"]
    with perf.recording() as calls:
        total = (perf.conv_cost(sku, batch=1, in_channels=16, in_h=28, in_w=28, out_channels=32,
                                kernel_h=3, kernel_w=3, stride_h=1, stride_w=1, pad_h=1, pad_w=1)
                 + perf.vector_cost(sku, 25088, ops_per_element=2, bytes_read=100352,
                                    bytes_written=100352)
                 + perf.gemm_cost(sku, 1, 10, 512, precision="int8"))
    assert [c.function for c in calls] == ["conv_cost", "vector_cost", "gemm_cost"]
    priced = perf_grid.price(perf_grid.Grid.from_skus([sku, sku.with_overrides(sram_bytes=4096)]),
                             calls)
    assert int(priced.total_cycles[0]) == total.total_cycles
    assert int(priced.compute_cycles[0]) == total.compute_cycles
    assert priced.total_cycles[1] > priced.total_cycles[0]  # a smaller SRAM re-reads operands


def test_fill_drain_is_part_of_compute_and_adds_up():
    sku = BASES["npu-dc"]
    small = perf.gemm_cost(sku, 16, 16, 16)
    assert small.fill_drain_cycles == 2 * 128 + 128 - 2  # one tile: one fill and drain (ws)
    assert 0 < small.fill_drain_cycles <= small.compute_cycles
    assert (small + small).fill_drain_cycles == 2 * small.fill_drain_cycles
    assert perf.vector_cost(sku, 10, bytes_read=40, bytes_written=40).fill_drain_cycles == 0


def test_unknown_function_and_scalesim_mode_are_refused():
    grid = perf_grid.Grid.from_skus([BASES["npu-edge"]])
    with pytest.raises(DriverError, match="no vectorized twin"):
        perf_grid.price(grid, [perf.CostCall("magic_cost", {})])
    with pytest.raises(DriverError, match="realistic mode only"):
        perf_grid.gemm_cost(grid, 8, 8, 8, mode="scalesim")
