"""The device: a finite address space carved by an aligning allocator, storage in numpy.

Device memory is one range of `capacity_bytes` addresses. `alloc` places each allocation at the
lowest aligned offset of the first free block that holds it (first fit), so alignment padding
and fragmentation are modelled: an allocation can fail although enough bytes are free in total,
when no single free block is large enough. Freed blocks coalesce with their free neighbours.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .errors import DriverError, OutOfDeviceMemory
from .sku import SKU, load_sku

DEFAULT_ALIGNMENT = 256  # bytes, as DMA engines and most accelerator allocators require


@dataclass(frozen=True)
class Allocation:
    """A placed block of device memory: `size` bytes at `offset`, a multiple of `alignment`.
    `id` is never reused within a device, so a freed allocation is always recognised."""

    offset: int
    size: int
    alignment: int
    id: int

    @property
    def end(self) -> int:
        return self.offset + self.size


class Device:
    """One device of a SKU (driver-api 2.0)."""

    def __init__(self, sku: SKU | str):
        self.sku = load_sku(sku)
        self.capacity_bytes = self.sku.device_memory_bytes
        self.used_bytes = 0
        self.peak_bytes = 0
        self._free: list[tuple[int, int]] = [(0, self.capacity_bytes)] if self.capacity_bytes else []
        self._storage: dict[int, np.ndarray] = {}  # allocation id -> raw bytes
        self._live: dict[int, Allocation] = {}
        # allocation id -> (shape, dtype) as asked -> the typed view: kernels ask for the same
        # views at every launch, and building one costs more than the launch's bookkeeping.
        self._views: dict[int, dict[tuple, np.ndarray]] = {}
        self._ids = itertools.count(1)

    # ---------------------------------------------------------------- accounting
    @property
    def free_bytes(self) -> int:
        return self.capacity_bytes - self.used_bytes

    @property
    def largest_free_block(self) -> int:
        return max((length for _, length in self._free), default=0)

    @property
    def fragmentation(self) -> float:
        """1 - largest free block / free bytes: 0 when all free memory is one block."""
        return 1.0 - self.largest_free_block / self.free_bytes if self.free_bytes else 0.0

    @property
    def allocations(self) -> list[Allocation]:
        return sorted(self._live.values(), key=lambda a: a.offset)

    def reset_peak(self) -> None:
        self.peak_bytes = self.used_bytes

    # ---------------------------------------------------------------- allocator
    def alloc(self, nbytes: int, *, alignment: int = DEFAULT_ALIGNMENT) -> Allocation:
        nbytes = _non_negative_int(nbytes, "allocation size")
        alignment = _non_negative_int(alignment, "alignment")
        if alignment < 1 or alignment & (alignment - 1):
            raise DriverError(f"alignment must be a power of two, got {alignment}")
        offset = 0 if nbytes == 0 else self._place(nbytes, alignment)
        allocation = Allocation(offset, nbytes, alignment, next(self._ids))
        # np.zeros is lazily backed by the OS, so a large allocation costs nothing until touched.
        self._storage[allocation.id] = np.zeros(nbytes, dtype=np.uint8)
        self._live[allocation.id] = allocation
        self.used_bytes += nbytes
        self.peak_bytes = max(self.peak_bytes, self.used_bytes)
        return allocation

    def _place(self, nbytes: int, alignment: int) -> int:
        for index, (start, length) in enumerate(self._free):
            offset = -(-start // alignment) * alignment
            if offset + nbytes <= start + length:
                pieces = [(start, offset - start), (offset + nbytes, start + length - offset - nbytes)]
                self._free[index:index + 1] = [(s, n) for s, n in pieces if n > 0]
                return offset
        message = (f"device out of memory on {self.sku.name}: needed {nbytes} bytes, "
                   f"{self.free_bytes} free of {self.capacity_bytes}")
        if nbytes <= self.free_bytes:
            message += (f" (fragmented: largest free block {self.largest_free_block} bytes, "
                        f"alignment {alignment})")
        raise OutOfDeviceMemory(message)

    def free(self, allocation: Allocation) -> None:
        self._check_live(allocation)
        del self._live[allocation.id], self._storage[allocation.id]
        self._views.pop(allocation.id, None)
        self.used_bytes -= allocation.size
        if allocation.size:
            self._release(allocation.offset, allocation.size)

    def _release(self, start: int, length: int) -> None:
        blocks = sorted([*self._free, (start, length)])
        merged: list[tuple[int, int]] = []
        for block_start, block_length in blocks:
            if merged and merged[-1][0] + merged[-1][1] == block_start:
                merged[-1] = (merged[-1][0], merged[-1][1] + block_length)
            else:
                merged.append((block_start, block_length))
        self._free = merged

    # ---------------------------------------------------------------- storage
    def view(self, allocation: Allocation, shape: tuple[int, ...], dtype) -> np.ndarray:
        """A typed, writable view of the allocation's storage (the device memory itself)."""
        key = _view_key(shape, dtype)
        views = self._views.get(getattr(allocation, "id", None))
        if views is not None and key in views and self._live.get(allocation.id) is allocation:
            return views[key][...]  # a new ndarray object on the same memory
        self._check_live(allocation)
        dtype = np.dtype(dtype)
        shape = tuple(int(d) for d in shape)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes > allocation.size:
            raise DriverError(f"a {dtype} array of shape {shape} needs {nbytes} bytes, "
                              f"allocation at offset {allocation.offset} holds {allocation.size}")
        array = self._storage[allocation.id][:nbytes].view(dtype).reshape(shape)
        if key is not None:
            self._views.setdefault(allocation.id, {})[key] = array
        return array[...]

    def _check_live(self, allocation) -> None:
        if not isinstance(allocation, Allocation):
            raise DriverError(f"expected an Allocation from Device.alloc, got {allocation!r} "
                              "(driver-api 2.0 has no integer handles)")
        if self._live.get(allocation.id) != allocation:
            raise DriverError(f"invalid or freed allocation at offset {allocation.offset} "
                              f"on {self.sku.name}")


def _view_key(shape, dtype) -> tuple | None:
    """(shape, dtype) as the caller spelled them, when they can key a dict."""
    if not isinstance(shape, tuple):
        return None
    try:
        hash(dtype)
        hash(shape)
    except TypeError:
        return None
    return shape, dtype


def _non_negative_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise DriverError(f"{what} must be a non-negative integer, got {value!r}")
    return int(value)
