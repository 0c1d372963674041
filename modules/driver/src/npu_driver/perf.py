"""The performance model: deterministic integer cycle counts for the array, vector unit and DMA.

Matrix work runs on a systolic array of `array_rows x array_cols` PEs per core. A GEMM is named as
SCALE-Sim names it: M rows of the ifmap operand (output pixels), N columns of the filter operand
(output channels), K the reduction. The dataflow decides which two dimensions are spread over the
array and which one streams through it in time (see `_mapping`). Formulas and assumptions are
documented in modules/driver/README.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from . import scalesim_memory
from .errors import DriverError
from .scalesim_memory import MemoryConfig
from .sku import SKU

MODES = ("scalesim", "realistic")
DMA_DIRECTIONS = ("h2d", "d2h")
# Smallest tile edge the tiler considers; tiles grow in powers of two from here.
_MIN_TILE_EDGE = 16


class TileDoesNotFit(DriverError):
    """An explicit tile whose double-buffered operands exceed one core's SRAM."""


@dataclass(frozen=True)
class Tile:
    """An SRAM tile of a GEMM: m rows of the ifmap, n filter columns, k of the reduction."""

    m: int
    n: int
    k: int

    def __post_init__(self):
        for name in ("m", "n", "k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise DriverError(f"Tile.{name} must be a positive integer, got {value!r}")

    def sram_bytes(self, element_bytes: int) -> int:
        """Both operand tiles and the output tile, each double-buffered."""
        return 2 * (self.m * self.k + self.k * self.n + self.m * self.n) * element_bytes


@dataclass(frozen=True)
class Cost:
    """What one piece of work costs. Cycles are at the SKU clock; bytes are DRAM traffic."""

    unit: str
    compute_cycles: int
    stall_cycles: int
    total_cycles: int
    macs: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    sram_bytes: int = 0
    array_utilization: float = 0.0
    dram_utilization: float = 0.0
    folds: int = 0
    tile: Tile | None = None
    # Of compute_cycles, those spent filling and draining the array (per tile in realistic
    # mode, per fold in scalesim mode): what a bigger problem amortizes (driver-api 2.2).
    fill_drain_cycles: int = 0

    def to_dict(self) -> dict[str, Any]:
        # Called for every launch's profile: plain attribute reads, not dataclasses.asdict (which
        # deep-copies every field and was a tenth of a small model's run time).
        data = {name: getattr(self, name) for name in _COST_FIELDS}
        data["tile"] = None if self.tile is None else [self.tile.m, self.tile.n, self.tile.k]
        return data

    def __add__(self, other: Cost) -> Cost:
        """Sequential composition: cycles and bytes add, utilizations are time-weighted."""
        if not isinstance(other, Cost):
            return NotImplemented
        total = self.total_cycles + other.total_cycles

        def weighted(field: str) -> float:
            if total == 0:
                return 0.0
            return (getattr(self, field) * self.total_cycles
                    + getattr(other, field) * other.total_cycles) / total

        return Cost(
            unit=self.unit if self.unit == other.unit else "mixed",
            compute_cycles=self.compute_cycles + other.compute_cycles,
            stall_cycles=self.stall_cycles + other.stall_cycles,
            total_cycles=total,
            macs=self.macs + other.macs,
            bytes_read=self.bytes_read + other.bytes_read,
            bytes_written=self.bytes_written + other.bytes_written,
            sram_bytes=max(self.sram_bytes, other.sram_bytes),
            array_utilization=weighted("array_utilization"),
            dram_utilization=weighted("dram_utilization"),
            folds=self.folds + other.folds,
            tile=self.tile if self.tile == other.tile else None,
            fill_drain_cycles=self.fill_drain_cycles + other.fill_drain_cycles,
        )

    def __radd__(self, other: Any) -> Cost:
        # Lets sum(costs) start from 0.
        if other == 0:
            return self
        return NotImplemented


_COST_FIELDS = tuple(field.name for field in dataclasses.fields(Cost))


# --------------------------------------------------------------------------- the systolic array

def _mapping(dataflow: str, m: int, n: int, k: int) -> tuple[int, int, int]:
    """(Sr, Sc, T): dims spread over array rows and columns, and the one streamed in time."""
    if dataflow == "os":
        return m, n, k
    if dataflow == "ws":
        return k, n, m
    return k, m, n  # "is"


def _folds(sku: SKU, m: int, n: int, k: int) -> tuple[int, int]:
    """(number of folds, temporal length T) of an m x n x k GEMM on one core's array."""
    rows, cols, temporal = _mapping(sku.dataflow, m, n, k)
    return math.ceil(rows / sku.array_rows) * math.ceil(cols / sku.array_cols), temporal


def _fold_overhead(sku: SKU) -> int:
    """Cycles a fold spends beyond streaming T through the array (SCALE-Sim's accounting).

    Output stationary: operands skew in over rows and columns (R + C - 2). Weight and input
    stationary also shift the stationary operand into the R rows first (2R + C - 2).
    """
    rows, cols = sku.array_rows, sku.array_cols
    if sku.dataflow == "os":
        return rows + cols - 2
    return 2 * rows + cols - 2


def _scalesim_cycles(sku: SKU, m: int, n: int, k: int, multiplier: int) -> tuple[int, int]:
    """SCALE-Sim's accounting: folds back to back, each paying its own fill and drain; the last
    fold's final cycle overlaps the end of the run, hence the -1 SCALE-Sim reports."""
    folds, temporal = _folds(sku, m, n, k)
    return folds * (math.ceil(temporal / multiplier) + _fold_overhead(sku)) - 1, folds


def _pipelined_cycles(sku: SKU, m: int, n: int, k: int, multiplier: int) -> tuple[int, int]:
    """Folds of one tile pipelined: fill and drain paid once. The next fold's stationary operand
    (or, output stationary, the previous fold's outputs) shifts through the array's rows while the
    current fold streams, so a fold takes at least array_rows cycles."""
    folds, temporal = _folds(sku, m, n, k)
    per_fold = max(math.ceil(temporal / multiplier), sku.array_rows)
    return folds * per_fold + _fold_overhead(sku), folds


def _edges(size: int, tile: int) -> list[tuple[int, int]]:
    """[(edge length, how many)] of the tiles covering `size`: full tiles and the remainder."""
    full, rest = divmod(size, tile)
    return [(e, c) for e, c in ((tile, full), (rest, 1)) if e and c]


# --------------------------------------------------------------------------- work split and tiling

@dataclass(frozen=True)
class _Share:
    """The GEMMs one core runs: `batches` independent m x n x k problems."""

    batches: int
    m: int
    n: int
    k: int


def _even_parts(size: int, cores: int) -> list[tuple[int, int]]:
    """[(cores, part size)] splitting `size` over at most `cores` cores as evenly as chunks go."""
    chunk = math.ceil(size / cores)
    full, rest = divmod(size, chunk)
    return [(c, p) for c, p in ((full, chunk), (1 if rest else 0, rest)) if c]


def _splits(cores: int, batch: int, M: int, N: int, K: int) -> dict[str, list[tuple[int, _Share]]]:
    """The ways to spread the work over cores: by M, by N, or by batch."""
    if cores == 1:
        return {"none": [(1, _Share(batch, M, N, K))]}
    splits = {
        "m": [(c, _Share(batch, part, N, K)) for c, part in _even_parts(M, cores)],
        "n": [(c, _Share(batch, M, part, K)) for c, part in _even_parts(N, cores)],
    }
    if batch > 1:
        splits["batch"] = [(c, _Share(part, M, N, K)) for c, part in _even_parts(batch, cores)]
    return splits


def _candidates(size: int) -> list[int]:
    edges = {size}
    edge = _MIN_TILE_EDGE
    while edge < size:
        edges.add(edge)
        edge *= 2
    return sorted(edges)


def _traffic(share: _Share, tile: Tile, a_fraction: float) -> tuple[int, int]:
    """(elements read, elements written) from DRAM by one core for its share with this tile.

    Outputs accumulate in SRAM across k-tiles and are written once. When a tile spans the whole
    reduction, the operand of the outer loop stays resident while the inner loop runs; the loop
    order with less traffic is taken.
    """
    tiles_m, tiles_n = math.ceil(share.m / tile.m), math.ceil(share.n / tile.n)
    whole_k = tile.k >= share.k
    a_elements = a_fraction * share.m * share.k
    b_elements = share.k * share.n
    m_outer = a_elements * (1 if whole_k else tiles_n) + b_elements * tiles_m
    n_outer = a_elements * tiles_n + b_elements * (1 if whole_k else tiles_m)
    reads = math.ceil(min(m_outer, n_outer)) * share.batches
    return reads, share.m * share.n * share.batches


@dataclass(frozen=True)
class _Plan:
    compute_cycles: int
    memory_cycles: int
    exposed_cycles: int  # memory time that can never overlap compute: latency, first load, last store
    elements_read: int
    elements_written: int
    folds: int
    tile: Tile | None
    simulated_total: int = 0  # scalesim mode: SCALE-Sim's total from its memory simulation
    fill_drain: int = 0  # of compute_cycles, the busiest core's fill and drain


def _share_compute(sku: SKU, share: _Share, tile: Tile, multiplier: int,
                   mode: str) -> tuple[int, int, int]:
    """(compute cycles, folds, fill-and-drain cycles among them) of one core's share."""
    if mode == "scalesim":
        cycles, folds = _scalesim_cycles(sku, share.m, share.n, share.k, multiplier)
        return (cycles * share.batches, folds * share.batches,
                folds * _fold_overhead(sku) * share.batches)
    cycles = folds = tiles = 0
    for m, n, k, count in tile_edges(share.m, share.n, share.k, tile):
        tile_cycles, tile_folds = _pipelined_cycles(sku, m, n, k, multiplier)
        cycles += count * tile_cycles
        folds += count * tile_folds
        tiles += count
    return (cycles * share.batches, folds * share.batches,
            tiles * _fold_overhead(sku) * share.batches)


def tile_edges(m: int, n: int, k: int, tile: Tile) -> list[tuple[int, int, int, int]]:
    """[(m, n, k, how many)]: the distinct tile shapes covering an m x n x k GEMM."""
    return [(em, en, ek, cm * cn * ck) for em, cm in _edges(m, tile.m)
            for en, cn in _edges(n, tile.n) for ek, ck in _edges(k, tile.k)]


def _plan(sku: SKU, shares: list[tuple[int, _Share]], tile: Tile, precision: str, mode: str,
          a_fraction: float) -> _Plan:
    multiplier, element_bytes = sku.multiplier(precision), sku.element_bytes(precision)
    compute = folds = reads = writes = fill_drain = 0
    for cores, share in shares:
        clamped = Tile(min(tile.m, share.m), min(tile.n, share.n), min(tile.k, share.k))
        share_cycles, share_folds, share_fill = _share_compute(sku, share, clamped, multiplier,
                                                               mode)
        share_reads, share_writes = _traffic(share, clamped, a_fraction)
        if share_cycles > compute:
            compute, fill_drain = share_cycles, share_fill
        folds += cores * share_folds
        reads += cores * share_reads
        writes += cores * share_writes
    memory = _dram_cycles(sku, (reads + writes) * element_bytes)
    first_load = _dram_cycles(sku, (tile.m * tile.k + tile.k * tile.n) * element_bytes)
    last_store = _dram_cycles(sku, tile.m * tile.n * element_bytes)
    exposed = min(memory, _latency_cycles(sku) + first_load + last_store)
    return _Plan(compute, memory, exposed, reads, writes, folds, tile, fill_drain=fill_drain)


def _plan_total(plan: _Plan, mode: str) -> int:
    if mode == "scalesim":
        return plan.simulated_total
    steady_memory = plan.memory_cycles - plan.exposed_cycles
    return max(plan.compute_cycles, steady_memory) + plan.exposed_cycles


def _tiles_that_fit(sku: SKU, share: _Share, element_bytes: int) -> list[Tile]:
    tiles = [Tile(m, n, k) for m in _candidates(share.m) for n in _candidates(share.n)
             for k in _candidates(share.k)]
    fitting = [t for t in tiles if t.sram_bytes(element_bytes) <= sku.sram_bytes]
    if fitting:
        return fitting
    smallest = Tile(min(share.m, 1), min(share.n, 1), min(share.k, 1))
    if smallest.sram_bytes(element_bytes) > sku.sram_bytes:
        raise DriverError(f"SKU {sku.name}: {sku.sram_bytes} bytes of SRAM cannot hold even a 1x1x1 tile")
    return [smallest]


def _check_tile(sku: SKU, tile: Tile, share: _Share, element_bytes: int) -> Tile:
    clamped = Tile(min(tile.m, share.m), min(tile.n, share.n), min(tile.k, share.k))
    needed = clamped.sram_bytes(element_bytes)
    if needed > sku.sram_bytes:
        raise TileDoesNotFit(
            f"tile {clamped.m}x{clamped.n}x{clamped.k} needs {needed} bytes of SRAM "
            f"(double-buffered), SKU {sku.name} has {sku.sram_bytes} per core")
    return clamped


@lru_cache(maxsize=8192)
def _best_plan(sku: SKU, batch: int, M: int, N: int, K: int, precision: str, mode: str,
               tile: Tile | None, a_fraction: float) -> _Plan:
    """The fastest split over cores and (unless given) SRAM tile; ties go to less DRAM traffic,
    then to less array time (which leaves the most slack when sharing DRAM bandwidth)."""
    if mode == "scalesim":
        return _scalesim_plan(sku, batch, M, N, K, precision)
    element_bytes = sku.element_bytes(precision)
    best, best_key = None, None
    for shares in _splits(sku.cores, batch, M, N, K).values():
        largest = shares[0][1]
        if tile is None:
            tiles = _tiles_that_fit(sku, largest, element_bytes)
        else:
            tiles = [_check_tile(sku, tile, largest, element_bytes)]
        for candidate in tiles:
            plan = _plan(sku, shares, candidate, precision, mode, a_fraction)
            key = (_plan_total(plan, mode), plan.elements_read + plan.elements_written,
                   plan.compute_cycles)
            if best_key is None or key < best_key:
                best, best_key = plan, key
    return best


# --------------------------------------------------------------------------- scalesim mode

def scalesim_memory_config(sku: SKU, precision: str = "fp32") -> MemoryConfig:
    """The SCALE-Sim memory parameters that scalesim mode uses for one core of `sku`.

    SCALE-Sim counts in words; here a word is one element of `precision` (packed `multiplier`
    to a word when the precision runs faster than fp32, so that a word is what one PE consumes per
    cycle). One core's SRAM is split in three equal parts (ifmap, filter, ofmap) and every port
    gets the core's share of the DRAM bandwidth: SCALE-Sim's USER `Bandwidth` is per port.
    """
    word_bytes = sku.element_bytes(precision) * sku.multiplier(precision)
    sram_words = sku.sram_bytes // 3 // word_bytes
    bandwidth = int(sku.dram_bytes_per_cycle / sku.cores // word_bytes)
    if sram_words < 2 or bandwidth < 1:
        raise DriverError(
            f"SKU {sku.name}: scalesim mode needs at least 2 words of SRAM per operand and 1 word "
            f"per cycle of DRAM bandwidth per core at {precision}, got {sram_words} and "
            f"{sku.dram_bytes_per_cycle / sku.cores / word_bytes:g}")
    return MemoryConfig(sram_words, sram_words, sram_words, bandwidth)


def _scalesim_plan(sku: SKU, batch: int, M: int, N: int, K: int, precision: str) -> _Plan:
    """SCALE-Sim's accounting: the busiest core's share runs fold after fold, its SRAMs refilled
    as SCALE-Sim's memory system does (see scalesim_memory); batches run one after another."""
    multiplier = sku.multiplier(precision)
    splits = _splits(sku.cores, batch, M, N, K).values()
    shares = min(splits, key=lambda s: max(
        _share_compute(sku, share, Tile(share.m, share.n, share.k), multiplier, "scalesim")[0]
        for _, share in s))
    compute = total = folds = reads = writes = fill_drain = 0
    for cores, share in shares:
        share_cycles, share_folds, share_fill = _share_compute(
            sku, share, Tile(share.m, share.n, share.k), multiplier, "scalesim")
        run = _scalesim_memory(sku, share, precision)
        if share_cycles > compute:
            compute, fill_drain = share_cycles, share_fill
        total = max(total, run.total_cycles * share.batches)
        folds += cores * share_folds
        reads += cores * share.batches * run.words_read * multiplier
        writes += cores * share.batches * run.words_written * multiplier
    # Three ports (ifmap, filter, ofmap), each with the bandwidth, as SCALE-Sim has them.
    memory = math.ceil(_dram_cycles(sku, (reads + writes) * sku.element_bytes(precision)) / 3)
    return _Plan(compute, memory, 0, reads, writes, folds, None, simulated_total=total,
                 fill_drain=fill_drain)


def _scalesim_memory(sku: SKU, share: _Share, precision: str) -> scalesim_memory.MemoryRun:
    multiplier = sku.multiplier(precision)
    m, n, k = share.m, share.n, share.k
    # The streamed dimension shrinks by the precision multiplier, as in the compute cycles.
    if sku.dataflow == "os":
        k = math.ceil(k / multiplier)
    elif sku.dataflow == "ws":
        m = math.ceil(m / multiplier)
    else:
        n = math.ceil(n / multiplier)
    return _simulate(sku.dataflow, sku.array_rows, sku.array_cols, m, n, k,
                     scalesim_memory_config(sku, precision))


@lru_cache(maxsize=1024)
def _simulate(dataflow: str, rows: int, cols: int, m: int, n: int, k: int,
              config: MemoryConfig) -> scalesim_memory.MemoryRun:
    return scalesim_memory.simulate(dataflow, rows, cols, m, n, k, config)


def _matmul_cost(sku: SKU, batch: int, M: int, N: int, K: int, precision: str, mode: str,
                 tile: Tile | None, a_fraction: float = 1.0) -> Cost:
    if mode not in MODES:
        raise DriverError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if tile is not None and not isinstance(tile, Tile):
        raise DriverError(f"tile must be a Tile(m, n, k) or None, got {tile!r}")
    plan = _best_plan(sku, batch, M, N, K, precision, mode, tile, a_fraction)
    total = _plan_total(plan, mode)
    macs = batch * M * N * K
    element_bytes = sku.element_bytes(precision)
    peak_macs = total * sku.array_rows * sku.array_cols * sku.cores * sku.multiplier(precision)
    return Cost(
        unit="array",
        compute_cycles=plan.compute_cycles,
        stall_cycles=total - plan.compute_cycles,
        total_cycles=total,
        macs=macs,
        bytes_read=plan.elements_read * element_bytes,
        bytes_written=plan.elements_written * element_bytes,
        sram_bytes=(plan.tile.sram_bytes(element_bytes) if plan.tile is not None
                    else min(sku.sram_bytes, 2 * (M * K + K * N + M * N) * element_bytes)),
        array_utilization=macs / peak_macs if peak_macs else 0.0,
        dram_utilization=plan.memory_cycles / total if total else 0.0,
        folds=plan.folds,
        tile=plan.tile,
        fill_drain_cycles=plan.fill_drain,
    )


def _check_positive(**dims: Any) -> None:
    for name, value in dims.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise DriverError(f"{name} must be a positive integer, got {value!r}")


def _check_non_negative(**dims: Any) -> None:
    for name, value in dims.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise DriverError(f"{name} must be a non-negative integer, got {value!r}")


# --------------------------------------------------------------------------- memory

def _dram_cycles(sku: SKU, nbytes: int) -> int:
    return math.ceil(nbytes / sku.dram_bytes_per_cycle)


def _latency_cycles(sku: SKU) -> int:
    return math.ceil(sku.dram_latency_ns * sku.clock_ghz)


# --------------------------------------------------------------------------- recording calls

@dataclass(frozen=True)
class CostCall:
    """One call of a public cost function: its name and its arguments other than the SKU."""

    function: str
    arguments: dict[str, Any]


_RECORDINGS: list[list[CostCall]] = []


@contextlib.contextmanager
def recording():
    """Collect, in order, every public cost function called inside the block (driver-api 2.2).

    A kernel's cost is a sum of these calls; `npu_driver.perf_grid.price` re-prices the list
    over many design points at once, so a compiled plan is explored without its kernels."""
    calls: list[CostCall] = []
    _RECORDINGS.append(calls)
    try:
        yield calls
    finally:
        _RECORDINGS.remove(calls)


def _record(function: str, **arguments: Any) -> None:
    for calls in _RECORDINGS:
        calls.append(CostCall(function, arguments))


# --------------------------------------------------------------------------- public cost functions

def gemm_cost(sku: SKU, M: int, N: int, K: int, *, precision: str = "fp32", batch: int = 1,
              mode: str = "realistic", tile: Tile | None = None) -> Cost:
    """`batch` independent (M x K) @ (K x N) products on the array."""
    if _RECORDINGS:
        _record("gemm_cost", M=M, N=N, K=K, precision=precision, batch=batch, mode=mode,
                tile=tile)
    _check_positive(M=M, N=N, K=K, batch=batch)
    sku.multiplier(precision)
    return _matmul_cost(sku, batch, M, N, K, precision, mode, tile)


def conv_output_size(size: int, kernel: int, stride: int, pad: int, dilation: int = 1) -> int:
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def conv_cost(sku: SKU, *, batch: int, in_channels: int, in_h: int, in_w: int, out_channels: int,
              kernel_h: int, kernel_w: int, stride_h: int, stride_w: int, pad_h: int, pad_w: int,
              dilation_h: int = 1, dilation_w: int = 1, groups: int = 1, precision: str = "fp32",
              mode: str = "realistic", tile: Tile | None = None) -> Cost:
    """A 2-D convolution lowered by im2col to one GEMM per group.

    The im2col expansion happens between SRAM and the array, so DRAM reads of the ifmap count
    its real size, not the expanded matrix.
    """
    geometry = dict(batch=batch, in_channels=in_channels, in_h=in_h, in_w=in_w,
                    out_channels=out_channels, kernel_h=kernel_h, kernel_w=kernel_w,
                    stride_h=stride_h, stride_w=stride_w, pad_h=pad_h, pad_w=pad_w,
                    dilation_h=dilation_h, dilation_w=dilation_w, groups=groups)
    if _RECORDINGS:
        _record("conv_cost", **geometry, precision=precision, mode=mode, tile=tile)
    groups, M, N, K, a_fraction = conv_gemm(**geometry)
    sku.multiplier(precision)
    return _matmul_cost(sku, groups, M, N, K, precision, mode, tile, a_fraction)


def conv_gemm(*, batch: int, in_channels: int, in_h: int, in_w: int, out_channels: int,
              kernel_h: int, kernel_w: int, stride_h: int, stride_w: int, pad_h: int, pad_w: int,
              dilation_h: int = 1, dilation_w: int = 1, groups: int = 1
              ) -> tuple[int, int, int, int, float]:
    """(groups, M, N, K, fraction of the im2col matrix read from DRAM) of a convolution."""
    _check_positive(batch=batch, in_channels=in_channels, in_h=in_h, in_w=in_w,
                    out_channels=out_channels, kernel_h=kernel_h, kernel_w=kernel_w,
                    stride_h=stride_h, stride_w=stride_w, dilation_h=dilation_h,
                    dilation_w=dilation_w, groups=groups)
    _check_non_negative(pad_h=pad_h, pad_w=pad_w)
    if in_channels % groups or out_channels % groups:
        raise DriverError(f"groups={groups} must divide in_channels={in_channels} "
                          f"and out_channels={out_channels}")
    out_h = conv_output_size(in_h, kernel_h, stride_h, pad_h, dilation_h)
    out_w = conv_output_size(in_w, kernel_w, stride_w, pad_w, dilation_w)
    if out_h <= 0 or out_w <= 0:
        raise DriverError(f"convolution output would be empty ({out_h}x{out_w}) for input "
                          f"{in_h}x{in_w}, kernel {kernel_h}x{kernel_w}")
    M = batch * out_h * out_w
    N = out_channels // groups
    K = (in_channels // groups) * kernel_h * kernel_w
    ifmap_elements = batch * (in_channels // groups) * in_h * in_w
    return groups, M, N, K, min(1.0, ifmap_elements / (M * K))


def vector_cost(sku: SKU, elements: int, *, ops_per_element: int = 1, bytes_read: int,
                bytes_written: int, precision: str = "fp32") -> Cost:
    """Elementwise work on the vector unit of every core, overlapped with its DRAM traffic."""
    if _RECORDINGS:
        _record("vector_cost", elements=elements, ops_per_element=ops_per_element,
                bytes_read=bytes_read, bytes_written=bytes_written, precision=precision)
    _check_non_negative(elements=elements, ops_per_element=ops_per_element,
                        bytes_read=bytes_read, bytes_written=bytes_written)
    lanes = sku.vector_lanes * sku.cores * sku.multiplier(precision)
    compute = math.ceil(elements * ops_per_element / lanes)
    nbytes = bytes_read + bytes_written
    memory = _dram_cycles(sku, nbytes)
    latency = _latency_cycles(sku) if nbytes else 0
    total = max(compute, memory) + latency
    return Cost(
        unit="vector",
        compute_cycles=compute,
        stall_cycles=total - compute,
        total_cycles=total,
        bytes_read=bytes_read,
        bytes_written=bytes_written,
        dram_utilization=memory / total if total else 0.0,
    )


def dma_cost(sku: SKU, nbytes: int, *, direction: str = "h2d") -> Cost:
    """A copy over the host link; the DMA engine is busy for the whole transfer."""
    if _RECORDINGS:
        _record("dma_cost", nbytes=nbytes, direction=direction)
    _check_non_negative(nbytes=nbytes)
    if direction not in DMA_DIRECTIONS:
        raise DriverError(f"direction must be one of {', '.join(DMA_DIRECTIONS)}, got {direction!r}")
    cycles = math.ceil(nbytes / sku.host_bytes_per_cycle)
    return Cost(
        unit="dma",
        compute_cycles=cycles,
        stall_cycles=0,
        total_cycles=cycles,
        bytes_read=nbytes if direction == "d2h" else 0,
        bytes_written=nbytes if direction == "h2d" else 0,
    )
