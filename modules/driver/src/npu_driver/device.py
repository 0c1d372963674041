"""The device: finite memory whose storage is numpy, and the SKU it runs at."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import DriverError, OutOfDeviceMemory
from .sku import SKU, load_sku


@dataclass
class _Allocation:
    nbytes: int
    buffer: np.ndarray  # raw bytes; typed views are taken over it
    array: np.ndarray | None = field(default=None)


class Device:
    """One device of a SKU. Handles are integers, never reused within a device."""

    def __init__(self, sku: SKU | str):
        self.sku = load_sku(sku)
        self.capacity_bytes = self.sku.device_memory_bytes
        self.used_bytes = 0
        self.peak_bytes = 0
        self._allocations: dict[int, _Allocation] = {}
        self._next_handle = 1

    @property
    def free_bytes(self) -> int:
        return self.capacity_bytes - self.used_bytes

    def alloc(self, nbytes: int) -> int:
        if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)) or nbytes < 0:
            raise DriverError(f"allocation size must be a non-negative integer, got {nbytes!r}")
        nbytes = int(nbytes)
        if nbytes > self.free_bytes:
            raise OutOfDeviceMemory(
                f"device out of memory on {self.sku.name}: needed {nbytes} bytes, "
                f"{self.free_bytes} free of {self.capacity_bytes}")
        handle, self._next_handle = self._next_handle, self._next_handle + 1
        # np.zeros is lazily backed by the OS, so a large allocation costs nothing until touched.
        self._allocations[handle] = _Allocation(nbytes, np.zeros(nbytes, dtype=np.uint8))
        self.used_bytes += nbytes
        self.peak_bytes = max(self.peak_bytes, self.used_bytes)
        return handle

    def free(self, handle: int) -> None:
        allocation = self._allocation(handle)
        del self._allocations[handle]
        self.used_bytes -= allocation.nbytes

    def view(self, handle: int, shape: tuple[int, ...], dtype) -> np.ndarray:
        """A typed, writable view of an allocation; what later `read` calls return."""
        allocation = self._allocation(handle)
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes > allocation.nbytes:
            raise DriverError(f"a {dtype} array of shape {tuple(shape)} needs {nbytes} bytes, "
                              f"device handle {handle} holds {allocation.nbytes}")
        allocation.array = allocation.buffer[:nbytes].view(dtype).reshape(shape)
        return allocation.array

    def write(self, handle: int, array: np.ndarray) -> None:
        array = np.asarray(array)
        np.copyto(self.view(handle, array.shape, array.dtype), array)

    def read(self, handle: int) -> np.ndarray:
        """The device-side storage, typed as last written or viewed (raw bytes before that)."""
        allocation = self._allocation(handle)
        return allocation.buffer if allocation.array is None else allocation.array

    def reset_peak(self) -> None:
        self.peak_bytes = self.used_bytes

    def _allocation(self, handle: int) -> _Allocation:
        try:
            return self._allocations[handle]
        except (KeyError, TypeError):
            raise DriverError(f"invalid or freed device handle {handle!r} on {self.sku.name}") from None
