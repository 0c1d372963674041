"""The performance model priced over many design points at once (numpy; realistic mode).

`perf` prices one piece of work on one SKU; an architect asks what a whole compiled plan costs on
a thousand variants of a SKU. This module gives the same figures as `perf`'s public cost
functions, for a `Grid` of SKUs at once: the work split over cores, the SRAM tile search, the
DRAM traffic and every formula are `perf`'s own helpers where they do not depend on the SKU,
and the SKU-dependent arithmetic is the same expressions on arrays. tests/test_perf_grid.py
checks with hypothesis that every figure equals `perf`'s on random design points and problems,
so there is one meaning in two speeds.

`perf.recording()` collects the cost calls a kernel makes; `price(grid, calls)` re-prices them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from . import perf
from .errors import DriverError, InvalidSKU
from .perf import CostCall, Tile
from .sku import PRECISION_BYTES, SKU

# Points priced together in one block of (candidate tiles x points) arrays: bounds memory.
_CHUNK = 512
_NEVER = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Grid:
    """Design points: the SKU fields the cost model reads, one array entry per point."""

    skus: tuple[SKU, ...]
    clock_ghz: np.ndarray
    cores: np.ndarray
    array_rows: np.ndarray
    array_cols: np.ndarray
    dataflow: np.ndarray
    sram_bytes: np.ndarray
    dram_bandwidth_gbps: np.ndarray
    dram_latency_ns: np.ndarray
    vector_lanes: np.ndarray
    host_link_gbps: np.ndarray

    @classmethod
    def from_skus(cls, skus: Iterable[SKU]) -> Grid:
        skus = tuple(skus)
        if not skus:
            raise DriverError("a design-space grid needs at least one SKU")

        def column(name, dtype):
            return np.array([getattr(s, name) for s in skus], dtype=dtype)

        ints = ("cores", "array_rows", "array_cols", "sram_bytes", "vector_lanes")
        floats = ("clock_ghz", "dram_bandwidth_gbps", "dram_latency_ns", "host_link_gbps")
        return cls(skus=skus, dataflow=column("dataflow", object),
                   **{n: column(n, np.int64) for n in ints},
                   **{n: column(n, np.float64) for n in floats})

    def __len__(self) -> int:
        return len(self.skus)

    def multiplier(self, precision: str) -> np.ndarray:
        missing = [s.name for s in self.skus if precision not in s.precisions]
        if missing:
            raise InvalidSKU(f"SKU {missing[0]} does not support precision {precision!r}")
        return np.array([s.precisions[precision] for s in self.skus], dtype=np.int64)

    @property
    def dram_bytes_per_cycle(self) -> np.ndarray:
        return self.dram_bandwidth_gbps / self.clock_ghz

    @property
    def latency_cycles(self) -> np.ndarray:
        return np.ceil(self.dram_latency_ns * self.clock_ghz).astype(np.int64)


@dataclass(frozen=True)
class GridCost:
    """What a piece of work costs at every point. `feasible` is False where the scalar model
    raises (an explicit tile, or not even a 1x1x1 tile, does not fit that point's SRAM)."""

    total_cycles: np.ndarray
    compute_cycles: np.ndarray
    fill_drain_cycles: np.ndarray
    memory_cycles: np.ndarray
    bytes_read: np.ndarray
    bytes_written: np.ndarray
    macs: int
    pe_cycles: np.ndarray  # MACs over each point's per-PE rate: busy PE-cycles of the array
    feasible: np.ndarray

    @property
    def stall_cycles(self) -> np.ndarray:
        return self.total_cycles - self.compute_cycles

    @classmethod
    def zeros(cls, points: int) -> GridCost:
        zero = np.zeros(points, np.int64)
        return cls(zero, zero, zero, zero, zero, zero, 0, np.zeros(points), np.ones(points, bool))

    def __add__(self, other: GridCost) -> GridCost:
        return GridCost(self.total_cycles + other.total_cycles,
                        self.compute_cycles + other.compute_cycles,
                        self.fill_drain_cycles + other.fill_drain_cycles,
                        self.memory_cycles + other.memory_cycles,
                        self.bytes_read + other.bytes_read,
                        self.bytes_written + other.bytes_written, self.macs + other.macs,
                        self.pe_cycles + other.pe_cycles, self.feasible & other.feasible)

    def scaled(self, count: int) -> GridCost:
        """`count` runs of the same work one after another."""
        return GridCost(self.total_cycles * count, self.compute_cycles * count,
                        self.fill_drain_cycles * count, self.memory_cycles * count,
                        self.bytes_read * count, self.bytes_written * count, self.macs * count,
                        self.pe_cycles * count, self.feasible)


# --------------------------------------------------------------------------- public cost functions

def gemm_cost(grid: Grid, M: int, N: int, K: int, *, precision: str = "fp32", batch: int = 1,
              mode: str = "realistic", tile: Tile | None = None) -> GridCost:
    """`perf.gemm_cost` at every point of `grid`."""
    perf._check_positive(M=M, N=N, K=K, batch=batch)
    return _matmul(grid, batch, M, N, K, precision, mode, tile, 1.0)


def conv_cost(grid: Grid, *, precision: str = "fp32", mode: str = "realistic",
              tile: Tile | None = None, **geometry) -> GridCost:
    """`perf.conv_cost` at every point of `grid` (the same geometry keywords)."""
    groups, M, N, K, a_fraction = perf.conv_gemm(**geometry)
    return _matmul(grid, groups, M, N, K, precision, mode, tile, a_fraction)


def vector_cost(grid: Grid, elements: int, *, ops_per_element: int = 1, bytes_read: int,
                bytes_written: int, precision: str = "fp32") -> GridCost:
    """`perf.vector_cost` at every point of `grid`."""
    perf._check_non_negative(elements=elements, ops_per_element=ops_per_element,
                             bytes_read=bytes_read, bytes_written=bytes_written)
    lanes = grid.vector_lanes * grid.cores * grid.multiplier(precision)
    compute = np.ceil(elements * ops_per_element / lanes).astype(np.int64)
    nbytes = bytes_read + bytes_written
    memory = np.ceil(nbytes / grid.dram_bytes_per_cycle).astype(np.int64)
    latency = grid.latency_cycles if nbytes else np.zeros(len(grid), np.int64)
    total = np.maximum(compute, memory) + latency
    points = len(grid)
    return GridCost(total, compute, np.zeros(points, np.int64), memory,
                    np.full(points, bytes_read, np.int64), np.full(points, bytes_written, np.int64),
                    0, np.zeros(points), np.ones(points, bool))


def dma_cost(grid: Grid, nbytes: int, *, direction: str = "h2d") -> GridCost:
    """`perf.dma_cost` at every point of `grid`."""
    perf._check_non_negative(nbytes=nbytes)
    if direction not in perf.DMA_DIRECTIONS:
        raise DriverError(f"direction must be one of {', '.join(perf.DMA_DIRECTIONS)}, "
                          f"got {direction!r}")
    cycles = np.ceil(nbytes / (grid.host_link_gbps / grid.clock_ghz)).astype(np.int64)
    points = len(grid)
    read = nbytes if direction == "d2h" else 0
    zero = np.zeros(points, np.int64)
    return GridCost(cycles, cycles, zero, zero, np.full(points, read, np.int64),
                    np.full(points, nbytes - read, np.int64), 0, np.zeros(points),
                    np.ones(points, bool))


FUNCTIONS = {"gemm_cost": gemm_cost, "conv_cost": conv_cost, "vector_cost": vector_cost,
             "dma_cost": dma_cost}


def price(grid: Grid, calls: Iterable[CostCall], memo: dict | None = None) -> GridCost:
    """The sum of recorded cost calls (`perf.recording()`) at every point of `grid`. `memo`
    (a dict kept by the caller for one grid) prices a repeated call once."""
    memo = {} if memo is None else memo
    total = GridCost.zeros(len(grid))
    for call in calls:
        key = (call.function, tuple(sorted(call.arguments.items())))
        if key not in memo:
            if call.function not in FUNCTIONS:
                raise DriverError(f"no vectorized twin of cost function {call.function!r}")
            memo[key] = FUNCTIONS[call.function](grid, **call.arguments)
        total = total + memo[key]
    return total


# --------------------------------------------------------------------------- the array

@dataclass
class _Candidates:
    """Every (work split, SRAM tile) the scalar search may take, in its order of trial."""

    tiles: list[Tile]
    split: list[int]  # which split each candidate belongs to
    fallback: list[bool]  # the 1x1x1 tile taken only when no other tile of its split fits
    shares: list[list[tuple[int, perf._Share]]]


def _candidates(cores: int, batch: int, M: int, N: int, K: int, tile: Tile | None) -> _Candidates:
    found = _Candidates([], [], [], [])
    for index, shares in enumerate(perf._splits(cores, batch, M, N, K).values()):
        largest = shares[0][1]
        if tile is None:
            tiles = [Tile(m, n, k) for m in perf._candidates(largest.m)
                     for n in perf._candidates(largest.n) for k in perf._candidates(largest.k)]
            flags = [False] * len(tiles) + [True]
            tiles.append(Tile(1, 1, 1))
        else:
            tiles = [Tile(min(tile.m, largest.m), min(tile.n, largest.n), min(tile.k, largest.k))]
            flags = [False]
        for candidate, flag in zip(tiles, flags):
            found.tiles.append(candidate)
            found.split.append(index)
            found.fallback.append(flag)
            found.shares.append(shares)
    return found


def _compute_table(found: _Candidates, dataflow: str, rows: np.ndarray, cols: np.ndarray,
                   multiplier: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(compute cycles, fill and drain cycles) of every candidate (rows) on every distinct
    array (columns): `perf._share_compute` summed over tile shapes, the busiest share taken."""
    overhead = rows + cols - 2 if dataflow == "os" else 2 * rows + cols - 2
    edges, owner = [], []  # one row per (candidate, share, tile shape)
    for c, (candidate, shares) in enumerate(zip(found.tiles, found.shares)):
        for s, (_, share) in enumerate(shares):
            clamped = Tile(min(candidate.m, share.m), min(candidate.n, share.n),
                           min(candidate.k, share.k))
            for m, n, k, count in perf.tile_edges(share.m, share.n, share.k, clamped):
                edges.append((*perf._mapping(dataflow, m, n, k), count * share.batches))
                owner.append(2 * c + s)
    table = np.array(edges, dtype=np.int64)
    spread_r, spread_c, temporal, count = (table[:, i:i + 1] for i in range(4))
    folds = -(-spread_r // rows) * -(-spread_c // cols)
    per_fold = np.maximum(-(-temporal // multiplier), rows)
    cycles = (folds * per_fold + overhead) * count
    fill = overhead * count
    owner = np.array(owner)
    share_cycles = np.zeros((2 * len(found.tiles), len(rows)), np.int64)
    share_fill = np.zeros_like(share_cycles)
    np.add.at(share_cycles, owner, cycles)
    np.add.at(share_fill, owner, fill)
    first, second = share_cycles[0::2], share_cycles[1::2]
    # perf._plan keeps the first share whose cycles exceed the running maximum.
    later = second > first
    return (np.where(later, second, first),
            np.where(later, share_fill[1::2], share_fill[0::2]))


def _matmul(grid: Grid, batch: int, M: int, N: int, K: int, precision: str, mode: str,
            tile: Tile | None, a_fraction: float) -> GridCost:
    if mode != "realistic":
        raise DriverError(f"the vectorized model prices realistic mode only, got {mode!r}")
    if tile is not None and not isinstance(tile, Tile):
        raise DriverError(f"tile must be a Tile(m, n, k) or None, got {tile!r}")
    multiplier = grid.multiplier(precision)
    points = len(grid)
    out = {name: np.zeros(points, np.int64) for name in
           ("total", "compute", "fill", "memory", "reads", "writes")}
    feasible = np.ones(points, bool)
    groups = {}
    for p in range(points):
        groups.setdefault((int(grid.cores[p]), grid.dataflow[p]), []).append(p)
    for (cores, dataflow), where in groups.items():
        where = np.array(where)
        _matmul_group(grid, where, multiplier, cores, dataflow, batch, M, N, K,
                      PRECISION_BYTES[precision], tile, a_fraction, out, feasible)
    macs = batch * M * N * K
    return GridCost(out["total"], out["compute"], out["fill"], out["memory"],
                    out["reads"] * PRECISION_BYTES[precision],
                    out["writes"] * PRECISION_BYTES[precision], macs, macs / multiplier, feasible)


def _matmul_group(grid, where, multiplier, cores, dataflow, batch, M, N, K, element_bytes, tile,
                  a_fraction, out, feasible) -> None:
    """`perf._best_plan` for the points `where`, which share a core count and a dataflow."""
    found = _candidates(cores, batch, M, N, K, tile)
    arrays = np.stack([grid.array_rows[where], grid.array_cols[where], multiplier[where]], 1)
    distinct, which = np.unique(arrays, axis=0, return_inverse=True)
    which = which.reshape(-1)
    compute_table, fill_table = _compute_table(found, dataflow, distinct[:, 0], distinct[:, 1],
                                               distinct[:, 2])
    reads, writes = np.array([_traffic(cand, shares, a_fraction)
                              for cand, shares in zip(found.tiles, found.shares)], np.int64).T
    moved = (reads + writes) * element_bytes
    first_bytes = np.array([(t.m * t.k + t.k * t.n) * element_bytes for t in found.tiles])
    last_bytes = np.array([t.m * t.n * element_bytes for t in found.tiles])
    sram = np.array([t.sram_bytes(element_bytes) for t in found.tiles], np.int64)
    split = np.array(found.split)
    fallback = np.array(found.fallback)
    splits = split.max() + 1
    for start in range(0, len(where), _CHUNK):
        points = where[start:start + _CHUNK]
        per_cycle = grid.dram_bytes_per_cycle[points]
        fits = sram[:, None] <= grid.sram_bytes[points][None, :]
        regular_fit = np.zeros((splits, len(points)), bool)
        np.logical_or.at(regular_fit, split[~fallback], fits[~fallback])
        valid = np.where(fallback[:, None], fits & ~regular_fit[split], fits)
        compute = compute_table[:, which[start:start + _CHUNK]]
        memory = np.ceil(moved[:, None] / per_cycle).astype(np.int64)
        first = np.ceil(first_bytes[:, None] / per_cycle).astype(np.int64)
        last = np.ceil(last_bytes[:, None] / per_cycle).astype(np.int64)
        exposed = np.minimum(memory, grid.latency_cycles[points] + first + last)
        total = np.maximum(compute, memory - exposed) + exposed
        best = _first_best(total, (reads + writes)[:, None], compute, valid)
        column = np.arange(len(points))
        # An explicit tile must fit every split's largest share (perf._check_tile raises).
        ok = valid.any(axis=0) if tile is None else valid.all(axis=0)
        feasible[points] = ok
        out["total"][points] = np.where(ok, total[best, column], 0)
        out["compute"][points] = np.where(ok, compute[best, column], 0)
        out["fill"][points] = np.where(ok, fill_table[:, which[start:start + _CHUNK]][best, column], 0)
        out["memory"][points] = np.where(ok, memory[best, column], 0)
        out["reads"][points] = np.where(ok, reads[best], 0)
        out["writes"][points] = np.where(ok, writes[best], 0)


def _traffic(candidate: Tile, shares, a_fraction: float) -> tuple[int, int]:
    """(elements read, elements written) by all cores, as `perf._plan` sums them."""
    reads = writes = 0
    for cores, share in shares:
        clamped = Tile(min(candidate.m, share.m), min(candidate.n, share.n),
                       min(candidate.k, share.k))
        share_reads, share_writes = perf._traffic(share, clamped, a_fraction)
        reads += cores * share_reads
        writes += cores * share_writes
    return reads, writes


def _first_best(total, traffic, compute, valid) -> np.ndarray:
    """Per point (column), the first candidate (row) with the least (total, traffic, compute)
    among the valid ones: the scalar search's strict-less comparison of keys."""
    chosen = valid.copy()
    for key in (total, np.broadcast_to(traffic, total.shape), compute):
        masked = np.where(chosen, key, _NEVER)
        chosen &= masked == masked.min(axis=0)
    return np.argmax(chosen, axis=0)
