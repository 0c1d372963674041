"""scalesim mode with memory: SCALE-Sim v3's total cycles (USER bandwidth mode), from fixtures."""

import json
import math
from pathlib import Path

import pytest

from npu_driver import DriverError, load_sku, perf
from npu_driver.scalesim_memory import MemoryConfig, simulate

CASES = json.loads((Path(__file__).parent / "scalesim_memory_cycles.json").read_text())["cases"]
EDGE = load_sku("npu-edge")


def scalesim_sku(rows, cols, dataflow, sram_kb, bandwidth):
    """fp32 SKU whose scalesim memory config is SCALE-Sim's: 3 SRAMs of sram_kb kilo-words."""
    return EDGE.with_overrides(cores=1, array_rows=rows, array_cols=cols, dataflow=dataflow,
                               sram_bytes=3 * sram_kb * 1024 * 4,
                               dram_bandwidth_gbps=bandwidth * 4 * EDGE.clock_ghz)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "{layer}-{dataflow}-{array[0]}x{array[1]}"
                         "-{sram_kb}kB-bw{bandwidth}".format(**c))
def test_total_cycles_match_scalesim(case):
    sku = scalesim_sku(*case["array"], case["dataflow"], case["sram_kb"], case["bandwidth"])
    cost = perf.gemm_cost(sku, case["M"], case["N"], case["K"], mode="scalesim")
    assert cost.compute_cycles == case["compute_cycles"]
    # The goal is 5%; the model replays SCALE-Sim's memory system, so it is exact.
    assert abs(cost.total_cycles - case["total_cycles"]) <= 0.05 * case["total_cycles"]
    assert cost.total_cycles == case["total_cycles"]
    assert cost.stall_cycles == case["stall_cycles"]


def test_memory_config_is_derived_from_the_sku():
    sku = scalesim_sku(32, 32, "os", 64, 16)
    assert perf.scalesim_memory_config(sku) == MemoryConfig(65536, 65536, 65536, 16)
    # int8 packs four elements per word (one word is what a PE takes per cycle).
    assert perf.scalesim_memory_config(sku, "int8") == MemoryConfig(65536, 65536, 65536, 16)
    starved = sku.with_overrides(dram_bandwidth_gbps=1.0)
    with pytest.raises(DriverError, match="1 word per cycle of DRAM bandwidth"):
        perf.scalesim_memory_config(starved)


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_operands_that_fit_never_stall(dataflow):
    run = simulate(dataflow, 16, 16, 100, 70, 50, MemoryConfig(1 << 20, 1 << 20, 1 << 20, 1))
    rows, cols, T = {"os": (100, 70, 50), "ws": (50, 70, 100), "is": (50, 100, 70)}[dataflow]
    overhead = 30 if dataflow == "os" else 46
    assert run.stall_cycles == 0
    assert run.total_cycles == math.ceil(rows / 16) * math.ceil(cols / 16) * (T + overhead) - 1


def test_less_bandwidth_stalls_more():
    small = MemoryConfig(4096, 4096, 4096, 4)
    slow = simulate("os", 32, 32, 512, 256, 256, small)
    fast = simulate("os", 32, 32, 512, 256, 256, MemoryConfig(4096, 4096, 4096, 64))
    assert slow.stall_cycles > fast.stall_cycles > 0
    assert slow.total_cycles - slow.stall_cycles == fast.total_cycles - fast.stall_cycles
    assert slow.words_read >= 512 * 256 + 256 * 256 and slow.words_written == 512 * 256
