import json
import math
from pathlib import Path

import pytest

from npu_driver import DriverError, InvalidSKU, load_sku, perf
from npu_driver.perf import Cost, Tile, TileDoesNotFit, conv_cost, dma_cost, gemm_cost, vector_cost

FIXTURES = json.loads((Path(__file__).parent / "scalesim_cycles.json").read_text())["cases"]
EDGE = load_sku("npu-edge")
DC = load_sku("npu-dc")


@pytest.mark.parametrize("case", FIXTURES, ids=lambda c: "{M}x{N}x{K}-{dataflow}-{array}".format(**c))
def test_scalesim_mode_matches_scalesim_compute_cycles(case):
    rows, cols = case["array"]
    sku = EDGE.with_overrides(array_rows=rows, array_cols=cols, dataflow=case["dataflow"])
    cost = gemm_cost(sku, case["M"], case["N"], case["K"], mode="scalesim")
    assert cost.compute_cycles == case["cycles"]


@pytest.mark.parametrize("dataflow, spread", [("os", ("M", "N")), ("ws", ("K", "N")), ("is", ("K", "M"))])
def test_folds_cover_the_spread_dimensions(dataflow, spread):
    dims = {"M": 100, "N": 70, "K": 50}
    sku = EDGE.with_overrides(dataflow=dataflow)
    cost = gemm_cost(sku, dims["M"], dims["N"], dims["K"], mode="scalesim")
    rows, cols = spread
    assert cost.folds == math.ceil(dims[rows] / 32) * math.ceil(dims[cols] / 32)


@pytest.mark.parametrize("sku", [EDGE, DC], ids=lambda s: s.name)
@pytest.mark.parametrize("mode", perf.MODES)
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_cycles_never_decrease_as_the_problem_grows(sku, mode, axis):
    # SCALE-Sim's total is not monotonic (where its SRAM window wraps round an operand depends on
    # the operand's size), so scalesim mode only promises monotonic compute cycles.
    monotonic = "total_cycles" if mode == "realistic" else "compute_cycles"
    previous = 0
    for size in (1, 8, 31, 32, 33, 64, 100, 128, 200, 256, 511, 1024):
        dims = [96, 96, 96]
        dims[axis] = size
        cost = gemm_cost(sku, *dims, mode=mode)
        assert getattr(cost, monotonic) >= previous, (dims, cost)
        assert cost.total_cycles == cost.compute_cycles + cost.stall_cycles
        assert cost.total_cycles >= cost.compute_cycles
        previous = getattr(cost, monotonic)


def test_operands_that_fit_sram_are_read_once():
    cost = gemm_cost(EDGE, 128, 128, 128)
    assert cost.bytes_read == (128 * 128 + 128 * 128) * 4
    assert cost.bytes_written == 128 * 128 * 4
    assert cost.sram_bytes <= EDGE.sram_bytes


def test_operands_larger_than_sram_are_read_again():
    M = N = K = 1024
    cost = gemm_cost(EDGE, M, N, K)
    assert cost.bytes_read > (M * K + K * N) * 4
    assert cost.sram_bytes <= EDGE.sram_bytes
    bigger_sram = gemm_cost(EDGE.with_overrides(sram_bytes="16 MiB"), M, N, K)
    assert bigger_sram.bytes_read < cost.bytes_read
    assert bigger_sram.total_cycles <= cost.total_cycles


def test_memory_bound_work_stalls_and_stall_is_memory_not_hidden():
    # A matrix-vector product does 1 MAC per weight read: DRAM, not the array, sets the pace.
    cost = gemm_cost(EDGE, 1, 4096, 4096)
    memory = math.ceil((cost.bytes_read + cost.bytes_written) / EDGE.dram_bytes_per_cycle)
    assert cost.stall_cycles > 0
    assert memory <= cost.total_cycles < memory * 1.01
    assert cost.dram_utilization > 0.9


def test_deterministic():
    first = gemm_cost(DC, 777, 333, 999, precision="bf16").to_dict()
    perf._best_plan.cache_clear()
    assert gemm_cost(DC, 777, 333, 999, precision="bf16").to_dict() == first


def test_lower_precision_is_faster_and_moves_fewer_bytes():
    costs = {p: gemm_cost(EDGE, 512, 512, 512, precision=p) for p in ("fp32", "fp16", "int8")}
    assert costs["int8"].compute_cycles < costs["fp16"].compute_cycles < costs["fp32"].compute_cycles
    assert costs["int8"].total_cycles < costs["fp32"].total_cycles
    # Where the same tiles fit at both precisions, traffic scales with the element size.
    small = {p: gemm_cost(EDGE, 128, 128, 128, precision=p) for p in ("fp32", "int8")}
    assert small["fp32"].bytes_read == 4 * small["int8"].bytes_read


def test_unsupported_precision_names_it():
    with pytest.raises(InvalidSKU, match="'fp64'.*supported: fp32"):
        gemm_cost(EDGE, 8, 8, 8, precision="fp64")


def test_work_splits_across_cores():
    one_core = DC.with_overrides(cores=1)
    single = gemm_cost(one_core, 2048, 2048, 2048)
    quad = gemm_cost(DC, 2048, 2048, 2048)
    assert quad.macs == single.macs
    assert quad.compute_cycles * 4 <= single.compute_cycles * 1.1
    assert quad.total_cycles < single.total_cycles


def test_batch_spreads_over_cores_when_it_helps():
    # Attention-style: many small products, each too small to split well by M or N.
    batched = gemm_cost(DC, 64, 64, 64, batch=16)
    single = gemm_cost(DC, 64, 64, 64)
    assert batched.macs == 16 * single.macs
    assert batched.compute_cycles <= 4 * single.compute_cycles


def test_realistic_pipelining_beats_scalesim_fold_by_fold():
    for sku in (EDGE, DC):
        realistic = gemm_cost(sku, 512, 256, 64, mode="realistic")
        scalesim = gemm_cost(sku, 512, 256, 64, mode="scalesim")
        assert realistic.compute_cycles < scalesim.compute_cycles


def test_explicit_tile_is_used_and_checked():
    tiled = gemm_cost(EDGE, 256, 256, 256, tile=Tile(64, 64, 64))
    assert tiled.tile == Tile(64, 64, 64)
    assert tiled.sram_bytes == Tile(64, 64, 64).sram_bytes(4)
    best = gemm_cost(EDGE, 256, 256, 256)
    assert best.total_cycles <= tiled.total_cycles
    assert tiled.bytes_read > best.bytes_read
    with pytest.raises(TileDoesNotFit, match="needs .* bytes of SRAM"):
        gemm_cost(EDGE, 1024, 1024, 1024, tile=Tile(1024, 1024, 1024))
    # A tile larger than the problem is clamped, not rejected.
    assert gemm_cost(EDGE, 16, 16, 16, tile=Tile(4096, 4096, 4096)).tile == Tile(16, 16, 16)


def test_smaller_k_tile_costs_more_fill_and_drain():
    whole = gemm_cost(EDGE, 128, 128, 256, tile=Tile(128, 128, 256))
    sliced = gemm_cost(EDGE, 128, 128, 256, tile=Tile(128, 128, 32))
    assert sliced.compute_cycles > whole.compute_cycles


@pytest.mark.parametrize("bad", [dict(M=0), dict(N=-1), dict(K=2.5), dict(batch=0)])
def test_bad_dimensions(bad):
    dims = dict(M=4, N=4, K=4, batch=1) | bad
    with pytest.raises(DriverError, match=next(iter(bad))):
        gemm_cost(EDGE, dims.pop("M"), dims.pop("N"), dims.pop("K"), **dims)


def test_bad_mode_and_tile():
    with pytest.raises(DriverError, match="mode must be one of scalesim, realistic"):
        gemm_cost(EDGE, 4, 4, 4, mode="fast")
    with pytest.raises(DriverError, match="Tile"):
        gemm_cost(EDGE, 4, 4, 4, tile=(4, 4, 4))
    with pytest.raises(DriverError, match="Tile.k"):
        Tile(4, 4, 0)


CONV = dict(batch=2, in_channels=64, in_h=28, in_w=28, out_channels=128, kernel_h=3, kernel_w=3,
            stride_h=1, stride_w=1, pad_h=1, pad_w=1)


def test_conv_is_im2col_gemm():
    cost = conv_cost(EDGE, **CONV, mode="scalesim")
    gemm = gemm_cost(EDGE, 2 * 28 * 28, 128, 64 * 9, mode="scalesim")
    assert cost.macs == gemm.macs == 2 * 28 * 28 * 128 * 64 * 9
    assert cost.compute_cycles == gemm.compute_cycles
    # im2col happens on chip: the ifmap is read at its real size, not 9x inflated. (scalesim
    # mode, like SCALE-Sim's GEMM view, streams the expanded matrix.)
    realistic = conv_cost(EDGE, **CONV, mode="realistic")
    assert realistic.bytes_read < gemm_cost(EDGE, 2 * 28 * 28, 128, 64 * 9).bytes_read


def test_conv_stride_groups_and_dilation():
    strided = conv_cost(EDGE, **(CONV | dict(stride_h=2, stride_w=2)))
    assert strided.macs == 2 * 14 * 14 * 128 * 64 * 9
    grouped = conv_cost(EDGE, **(CONV | dict(groups=64, out_channels=64)))
    assert grouped.macs == 2 * 28 * 28 * 64 * 9
    dilated = conv_cost(EDGE, **(CONV | dict(dilation_h=2, dilation_w=2)))
    assert dilated.macs == 2 * 26 * 26 * 128 * 64 * 9
    with pytest.raises(DriverError, match="groups=3 must divide"):
        conv_cost(EDGE, **(CONV | dict(groups=3)))
    with pytest.raises(DriverError, match="output would be empty"):
        conv_cost(EDGE, **(CONV | dict(kernel_h=40, pad_h=0)))


def test_vector_cost_is_lanes_bound_or_memory_bound():
    compute_heavy = vector_cost(EDGE, 16_000, ops_per_element=10, bytes_read=0, bytes_written=0)
    assert compute_heavy.compute_cycles == 10_000 == compute_heavy.total_cycles
    streaming = vector_cost(DC, 1_000_000, bytes_read=4_000_000, bytes_written=4_000_000)
    assert streaming.compute_cycles == math.ceil(1_000_000 / (64 * 4))
    assert streaming.total_cycles >= math.ceil(8_000_000 / DC.dram_bytes_per_cycle)
    assert streaming.total_cycles == streaming.compute_cycles + streaming.stall_cycles
    assert vector_cost(EDGE, 1600, bytes_read=0, bytes_written=0, precision="fp16").compute_cycles == 50


def test_dma_cost_uses_the_host_link():
    cost = dma_cost(EDGE, 8_000_000, direction="h2d")
    assert cost.unit == "dma" and cost.bytes_written == 8_000_000 and cost.bytes_read == 0
    assert cost.total_cycles == math.ceil(8_000_000 / (8 / 0.8))
    assert dma_cost(EDGE, 8_000_000, direction="d2h").bytes_read == 8_000_000
    with pytest.raises(DriverError, match="direction must be one of h2d, d2h"):
        dma_cost(EDGE, 1, direction="p2p")


def test_costs_add_sequentially():
    a, b = gemm_cost(EDGE, 64, 64, 64), vector_cost(EDGE, 4096, bytes_read=16384, bytes_written=16384)
    total = a + b
    assert total.total_cycles == a.total_cycles + b.total_cycles
    assert total.bytes_read == a.bytes_read + b.bytes_read and total.macs == a.macs
    assert total.unit == "mixed"
    assert total.array_utilization == pytest.approx(
        a.array_utilization * a.total_cycles / total.total_cycles)
    assert sum([a, a]) == a + a
    assert set(Cost.__dataclass_fields__) >= {
        "unit", "compute_cycles", "stall_cycles", "total_cycles", "macs", "bytes_read",
        "bytes_written", "sram_bytes", "array_utilization", "dram_utilization"}
    json.dumps(total.to_dict())


RESNET50 = json.loads((Path(__file__).parent / "scalesim_resnet50_cycles.json").read_text())["cases"]


@pytest.mark.parametrize("case", RESNET50,
                         ids=lambda c: "{layer}-{dataflow}-{array[0]}x{array[1]}".format(**c))
def test_scalesim_mode_matches_scalesim_on_resnet50_layers(case):
    rows, cols = case["array"]
    # SCALE-Sim's stall-free setting of the fixture: 8192 kB SRAMs, 1000 words/cycle per port.
    sku = EDGE.with_overrides(cores=1, array_rows=rows, array_cols=cols, dataflow=case["dataflow"],
                              sram_bytes=3 * 8192 * 1024 * 4,
                              dram_bandwidth_gbps=1000 * 4 * EDGE.clock_ghz)
    cost = gemm_cost(sku, case["M"], case["N"], case["K"], mode="scalesim")
    assert cost.compute_cycles == case["cycles"]
    assert cost.total_cycles == case["cycles"] and cost.stall_cycles == 0
