"""SCALE-Sim v3's memory system (USER bandwidth mode), reproduced event by event.

SCALE-Sim feeds the array from three double-buffered SRAMs (ifmap, filter, ofmap) and walks a
demand matrix one row (one array cycle) at a time. This module replays the same accounting
without materialising SCALE-Sim's per-cycle Python loop: between events nothing changes, so only
the rows where a read SRAM misses or the ofmap SRAM drains are visited. The rules, as SCALE-Sim
3.0.0 implements them (word = one element):

Read SRAM (ifmap, filter) of S words at `bw` words/cycle. The operand is laid out in SCALE-Sim's
prefetch order and cut into lines of ceil(S/100) words. A window of A lines (half the SRAM) is
resident; a demanded word outside it moves the window forward by P lines (the other half),
wrapping round the operand, until it is inside. Every move is one refill of ceil((S//2)/bw) + 1
cycles; refills run back to back on their own clock, which starts at cycle -1 and never waits for
the array. A row that misses is delayed by how far that clock is ahead of it, counted twice when
positive (SCALE-Sim's `read_buffer.service_reads`).

Ofmap SRAM of S words drained at `bw` words/cycle: once more than S//2 words are waiting and no
drain is running, the waiting words (in lines of `bw`) are drained, ceil((S//2)/bw) lines at a
time; the array stalls only when the SRAM is full while a drain runs.

A row's stall is the largest of the three; later rows start that much later. The layer's total is
the cycle at which the last row's outputs are written.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

# Elements of one operand's demand stream generated at a time (bounds memory, amortises numpy).
_BATCH_ELEMENTS = 1 << 21
_FIRST_SEARCH = 2048


@dataclass(frozen=True)
class MemoryConfig:
    """SCALE-Sim's memory parameters in words: SRAM sizes and DRAM words per cycle per port."""

    ifmap_words: int
    filter_words: int
    ofmap_words: int
    bandwidth: int


@dataclass(frozen=True)
class MemoryRun:
    """SCALE-Sim's figures for one layer; DRAM traffic in words (reads: the first fill of each
    read SRAM plus one half-SRAM per window move; writes: every word the array writes)."""

    total_cycles: int
    stall_cycles: int
    words_read: int = 0
    words_written: int = 0

    @property
    def compute_cycles(self) -> int:
        return self.total_cycles - self.stall_cycles


@dataclass(frozen=True)
class _Geometry:
    """One dataflow's fold structure (SCALE-Sim's systolic_compute_{os,ws,is})."""

    dataflow: str
    rows: int          # array rows R
    cols: int          # array cols C
    M: int
    N: int
    K: int

    @property
    def temporal(self) -> int:
        return {"os": self.K, "ws": self.M, "is": self.N}[self.dataflow]

    @property
    def outer_folds(self) -> int:
        """Folds of the outer loop: N for os and ws, M for is (over array columns)."""
        size = self.M if self.dataflow == "is" else self.N
        return math.ceil(size / self.cols)

    @property
    def inner_folds(self) -> int:
        """Folds of the inner loop: M for os, K for ws and is (over array rows)."""
        size = self.M if self.dataflow == "os" else self.K
        return math.ceil(size / self.rows)

    @property
    def fold_height(self) -> int:
        preload = 0 if self.dataflow == "os" else self.rows   # stationary operand shifts in
        return self.temporal + preload + self.rows + self.cols - 2

    @property
    def total_rows(self) -> int:
        return self.outer_folds * self.inner_folds * self.fold_height


# --------------------------------------------------------------------------- prefetch order

def _prefetch_layout(g: _Geometry, operand: str):
    """(ids of the operand's elements, prefetch matrix row, column, width, height, diagonal).

    Element ids: ifmap (m, k) -> m*K + k; filter (k, n) -> k*N + n. The prefetch matrix stacks the
    operand's folds vertically; SCALE-Sim reads it along anti-diagonals or row by row."""
    R, C, M, N, K = g.rows, g.cols, g.M, g.N, g.K
    if operand == "ifmap":
        m, k = np.divmod(np.arange(M * K, dtype=np.int64), K)
        if g.dataflow == "os":      # folds of R ifmap rows, each K x R
            return m * K + k, (m // R) * K + k, m % R, R, math.ceil(M / R) * K, True
        if g.dataflow == "ws":      # folds of R reduction columns, each M x R
            return m * K + k, (k // R) * M + m, k % R, R, math.ceil(K / R) * M, True
        return m * K + k, (m // C) * K + k, m % C, C, math.ceil(M / C) * K, False  # is
    k, n = np.divmod(np.arange(K * N, dtype=np.int64), N)
    if g.dataflow == "os":
        return k * N + n, (n // C) * K + k, n % C, C, math.ceil(N / C) * K, True
    if g.dataflow == "ws":
        return k * N + n, (n // C) * K + k, n % C, C, math.ceil(N / C) * K, False
    return k * N + n, (k // R) * N + n, k % R, R, math.ceil(K / R) * N, True  # is


def _diagonal_positions(row: np.ndarray, col: np.ndarray, width: int, height: int) -> np.ndarray:
    """Position of (row, col) when a height x width matrix is read by anti-diagonals, each from
    its highest row down (SCALE-Sim's create_*_prefetch_mat)."""
    diags = np.arange(height + width, dtype=np.int64)
    lengths = np.minimum(diags, height - 1) - np.maximum(0, diags - width + 1) + 1
    before = np.concatenate(([0], np.cumsum(np.maximum(lengths, 0))[:-1]))
    d = row + col
    return before[d] + col - np.maximum(0, d - (height - 1))


def _line_of(g: _Geometry, operand: str, line_words: int) -> tuple[np.ndarray, int]:
    """(line index of every element id, number of lines) in the read SRAM's hashed buffer."""
    ids, row, col, width, height, diagonal = _prefetch_layout(g, operand)
    if diagonal:
        position = _diagonal_positions(row, col, width, height)
    else:
        position = row * width + col
    occupied = np.zeros(width * height, dtype=np.int64)
    occupied[position] = 1
    rank = np.cumsum(occupied)[position] - 1
    lines = np.empty(ids.size, dtype=np.int64)
    lines[ids] = rank // line_words
    # SCALE-Sim always closes a last (possibly empty) line.
    return lines, ids.size // line_words + 1


# --------------------------------------------------------------------------- demand streams

def _demand(g: _Geometry, operand: str, outer: np.ndarray, inner: np.ndarray, u: np.ndarray,
            c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(element id, valid) that array lane c asks for in row u of fold (outer, inner)."""
    R, C, M, N, K = g.rows, g.cols, g.M, g.N, g.K
    df = g.dataflow
    if df == "os":
        k = u - c
        if operand == "ifmap":
            m = inner * R + c
            return m * K + k, (k >= 0) & (k < K) & (m < M)
        n = outer * C + c
        return k * N + n, (k >= 0) & (k < K) & (n < N)
    if (df, operand) in (("ws", "ifmap"), ("is", "filter")):
        # Streamed operand: enters after the R-cycle preload, skewed by lane.
        t = u - c - R
        k = inner * R + c
        if operand == "ifmap":
            return t * K + k, (t >= 0) & (t < M) & (k < K)
        return k * N + t, (t >= 0) & (t < N) & (k < K)
    # Stationary operand: R rows loaded bottom row first, no skew.
    k = inner * R + (R - 1 - u)
    if operand == "filter":   # ws
        n = outer * C + c
        return k * N + n, (u < R) & (k < K) & (n < N)
    m = outer * C + c          # is ifmap
    return m * K + k, (u < R) & (k < K) & (m < M)


def _lane_count(g: _Geometry, operand: str) -> int:
    if g.dataflow == "os":
        return g.rows if operand == "ifmap" else g.cols
    if (g.dataflow, operand) in (("ws", "ifmap"), ("is", "filter")):
        return g.rows
    return g.cols


def _stream(g: _Geometry, operand: str, lines_of: np.ndarray):
    """Yield (line, global row) of every demanded word, in SCALE-Sim's order, in batches."""
    height, lanes = g.fold_height, _lane_count(g, operand)
    folds = g.outer_folds * g.inner_folds
    per_batch = max(1, _BATCH_ELEMENTS // (height * lanes))
    u = np.arange(height, dtype=np.int64)[None, :, None]
    c = np.arange(lanes, dtype=np.int64)[None, None, :]
    for first in range(0, folds, per_batch):
        fold = np.arange(first, min(folds, first + per_batch), dtype=np.int64)[:, None, None]
        outer, inner = np.divmod(fold, g.inner_folds)
        ids, valid = _demand(g, operand, outer, inner, u, c)
        rows = np.broadcast_to(fold * height + u, valid.shape)
        yield lines_of[ids[valid]], rows[valid]


def _read_misses(g: _Geometry, operand: str, words: int) -> tuple[list[int], list[int]]:
    """Rows where the read SRAM misses and how many window moves each miss takes (in demand
    order; a row may miss more than once). Independent of timing."""
    line_words = math.ceil(words / 100)
    active_words, prefetch_words = math.ceil(words / 2), words // 2
    count = (g.M * g.K if operand == "ifmap" else g.K * g.N) // line_words + 1
    active = min(math.ceil(active_words / line_words), count)
    step = min(math.ceil(prefetch_words / line_words), count - active)
    miss_rows: list[int] = []
    miss_moves: list[int] = []
    if step == 0:       # the whole operand is resident
        return miss_rows, miss_moves
    lines_of, _ = _line_of(g, operand, line_words)
    start = 0
    for lines, rows in _stream(g, operand, lines_of):
        i, size = 0, lines.size
        while i < size:
            j, span = i, _FIRST_SEARCH
            while j < size:
                outside = np.flatnonzero((lines[j:j + span] - start) % count >= active)
                if outside.size:
                    break
                j += span
                span *= 2
            else:
                break
            i = j + int(outside[0])
            relative, moves = (int(lines[i]) - start) % count, 0
            while relative >= active:
                relative = (relative - step) % count
                moves += 1
            start = (start + moves * step) % count
            miss_rows.append(int(rows[i]))
            miss_moves.append(moves)
            i += 1
    return miss_rows, miss_moves


def _ofmap_counts(g: _Geometry) -> np.ndarray:
    """Words the array writes in every row (SCALE-Sim's ofmap demand matrix, counted)."""
    R, C, M, N, K = g.rows, g.cols, g.M, g.N, g.K
    height = g.fold_height
    u = np.arange(height, dtype=np.int64)[None, :, None]
    c = np.arange(C, dtype=np.int64)[None, None, :]
    fold = np.arange(g.outer_folds * g.inner_folds, dtype=np.int64)[:, None, None]
    outer, inner = np.divmod(fold, g.inner_folds)
    if g.dataflow == "os":
        x = u - c - (K - 1)
        m = inner * R + (R - 1 - x)
        valid = (x >= 0) & (x < R) & (m < M) & (outer * C + c < N)
    else:
        t = u - c - (2 * R - 1)
        lanes_used = (N if g.dataflow == "ws" else M) - outer * C
        valid = (t >= 0) & (t < g.temporal) & (c < lanes_used)
    return valid.sum(axis=2, dtype=np.int64).reshape(-1)


class _ReadPort:
    """A read SRAM's refill clock and its misses, replayed row by row."""

    def __init__(self, rows: list[int], moves: list[int], words: int, bandwidth: int,
                 operand_words: int):
        self.rows, self.moves, self.next = rows, moves, 0
        self.refill = math.ceil((words // 2) / bandwidth) + 1
        self.clock = -1
        self.words_read = min(math.ceil(words / 2), operand_words) + sum(moves) * (words // 2)

    def next_row(self, end: int) -> int:
        return self.rows[self.next] if self.next < len(self.rows) else end

    def serve(self, row: int, cycle: int) -> int:
        offset = 1
        while self.next < len(self.rows) and self.rows[self.next] == row:
            for _ in range(self.moves[self.next]):
                self.clock += self.refill
                ahead = self.clock - (cycle + offset)
                offset += ahead
                if ahead > 0:
                    offset += ahead
            self.next += 1
        return offset - 1


class _WritePort:
    """The ofmap SRAM: words waiting, the running drain, and the lines queued for DRAM."""

    def __init__(self, counts: np.ndarray, words: int, bandwidth: int):
        self.cum = np.concatenate(([0], np.cumsum(counts)))
        self.counts = counts
        self.size, self.bandwidth = words, bandwidth
        self.drain_lines = math.ceil((words // 2) / bandwidth)
        self.busy_below = words - words // 2   # a drain starts when free space falls below this
        self.free = words
        self.drain_end = 0
        self.written = self.flushed = 0
        self.lines: deque[list[int]] = deque()   # [fill, count] runs of queued lines

    def _first_row(self, start: int, words: int, end: int) -> int:
        """First row >= start by which `words` more words have been written."""
        target = self.cum[start] + max(words, 1)
        row = int(np.searchsorted(self.cum, target, side="left")) - 1
        return row if row < end else end

    def next_row(self, row: int, stall: int, end: int) -> int:
        draining_until = self.drain_end - stall       # first row no longer under the drain
        if draining_until > row:
            full = self._first_row(row, self.free, end)
            if full < draining_until:
                return full
            idle_from = min(draining_until, end)
            free = self.free - int(self.cum[idle_from] - self.cum[row])
            return self._first_row(idle_from, free - self.busy_below + 1, end)
        return self._first_row(row, self.free - self.busy_below + 1, end)

    def skip(self, start: int, stop: int) -> None:
        words = int(self.cum[stop] - self.cum[start])
        self.free -= words
        self.written += words

    def serve(self, row: int, cycle: int) -> int:
        current = cycle
        for _ in range(int(self.counts[row])):
            self.free -= 1
            self.written += 1
            if current < self.drain_end:
                if self.free <= 0:
                    current = max(current, self.drain_end)
            elif self.free < self.busy_below:
                self._drain(current)
        return current - cycle

    def _drain(self, start: int) -> None:
        fresh, self.flushed = self.written - self.flushed, self.written
        full, partial = divmod(fresh, self.bandwidth)
        if full:
            self.lines.append([self.bandwidth, full])
        if partial:
            self.lines.append([partial, 1])
        taken, last_fill = 0, self.bandwidth
        while self.lines and taken < self.drain_lines:
            run = self.lines[0]
            used = min(run[1], self.drain_lines - taken)
            taken += used
            last_fill = run[0]
            run[1] -= used
            if run[1] == 0:
                self.lines.popleft()
        if taken == 0:
            return
        self.free += taken * self.bandwidth - (self.bandwidth - last_fill)
        self.drain_end = start + taken - 1


def simulate(dataflow: str, rows: int, cols: int, M: int, N: int, K: int,
             config: MemoryConfig) -> MemoryRun:
    """SCALE-Sim's total and stall cycles for one M x N x K GEMM on an R x C array."""
    g = _Geometry(dataflow, rows, cols, M, N, K)
    end = g.total_rows
    reads = [_ReadPort(*_read_misses(g, operand, words), words, config.bandwidth, size)
             for operand, words, size in (("ifmap", config.ifmap_words, M * K),
                                          ("filter", config.filter_words, K * N))]
    ofmap = _WritePort(_ofmap_counts(g), config.ofmap_words, config.bandwidth)
    row = stall = 0
    last_write_delay = last_stall = 0
    while True:
        event = min(min(port.next_row(end) for port in reads), ofmap.next_row(row, stall, end))
        if event >= end:
            break
        ofmap.skip(row, event)
        cycle = event + stall
        write_delay = ofmap.serve(event, cycle)
        row_stall = max(write_delay, *(port.serve(event, cycle) for port in reads))
        stall += row_stall
        if event == end - 1:
            last_write_delay, last_stall = write_delay, row_stall
        row = event + 1
    total = end - 1 + stall - last_stall + last_write_delay
    return MemoryRun(total_cycles=total, stall_cycles=stall,
                     words_read=sum(port.words_read for port in reads),
                     words_written=int(ofmap.cum[-1]))
