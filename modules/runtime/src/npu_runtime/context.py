"""Contexts, device arrays, streams and events: how work is placed on the device's timeline."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from npu_driver import SKU, Allocation, Device, DriverError, load_sku
from npu_driver.perf import Cost, dma_cost

from .timeline import LaunchRecord, Timeline


class RuntimeAPIError(DriverError):
    """Misuse of the runtime (a freed array, a stream or event of another context)."""


@dataclass(eq=False)
class DeviceArray:
    """A typed array in device memory. `view()` is the device storage itself, not a copy."""

    context: Context
    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int
    allocation: Allocation
    name: str = ""
    freed: bool = False

    @property
    def handle(self) -> Allocation:
        """runtime-api 1.0's name for the allocation."""
        return self.allocation

    def view(self) -> np.ndarray:
        if self.freed:
            raise RuntimeAPIError(f"device array {self.name or self.allocation.offset!r} was freed")
        return self.context.device.view(self.allocation, self.shape, self.dtype)

    def __repr__(self) -> str:
        return f"DeviceArray(name={self.name!r}, shape={self.shape}, dtype={self.dtype})"


@dataclass(frozen=True)
class Event:
    """A point on a stream's timeline: the cycle at which all work recorded before it is done."""

    stream: Stream
    cycle: int


class Stream:
    """An in-order queue of work with a cycle cursor (when its last piece of work ends)."""

    def __init__(self, context: Context, name: str):
        self.context = context
        self.name = name
        self.cursor = 0

    def record_event(self) -> Event:
        return Event(self, self.cursor)

    def wait_event(self, event: Event) -> None:
        if event.stream.context is not self.context:
            raise RuntimeAPIError(f"stream {self.name!r} cannot wait on an event of another context")
        self.cursor = max(self.cursor, event.cycle)

    def __repr__(self) -> str:
        return f"Stream({self.name!r}, cursor={self.cursor})"


class Context:
    """A device of one SKU, with its memory, streams and timeline."""

    def __init__(self, sku: str | SKU):
        self.sku = load_sku(sku)
        self.device = Device(self.sku)
        self.timeline = Timeline(self.sku)
        self._streams: list[Stream] = []
        self._stream_numbers = itertools.count(1)
        self.default_stream = self.stream("default")

    # ---------------------------------------------------------------- memory
    def alloc(self, shape, dtype, name: str = "", *, alignment: int | None = None) -> DeviceArray:
        shape = tuple(int(d) for d in np.atleast_1d(shape)) if np.ndim(shape) else (int(shape),)
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        # The driver's default alignment unless asked otherwise; never below the element size.
        options = {} if alignment is None else {"alignment": max(alignment, dtype.itemsize)}
        allocation = self.device.alloc(nbytes, **options)
        return DeviceArray(self, shape, dtype, nbytes, allocation, name)

    def free(self, darr: DeviceArray) -> None:
        if darr.freed:
            raise RuntimeAPIError(f"device array {darr.name or darr.allocation.offset!r} was already freed")
        self.device.free(darr.allocation)
        darr.freed = True

    def to_device(self, array: np.ndarray, *, stream: Stream | None = None, name: str = "") -> DeviceArray:
        array = np.asarray(array)
        darr = self.alloc(array.shape, array.dtype, name)
        self.launch(f"h2d {name}".rstrip(), lambda: np.copyto(darr.view(), array),
                    dma_cost(self.sku, darr.nbytes, direction="h2d"), stream=stream,
                    args={"bytes": darr.nbytes})
        return darr

    def to_host(self, darr: DeviceArray, *, stream: Stream | None = None) -> np.ndarray:
        host = np.empty(darr.shape, darr.dtype)
        self.launch(f"d2h {darr.name}".rstrip(), lambda: np.copyto(host, darr.view()),
                    dma_cost(self.sku, darr.nbytes, direction="d2h"), stream=stream,
                    args={"bytes": darr.nbytes})
        return host

    # ---------------------------------------------------------------- streams and work
    def stream(self, name: str | None = None) -> Stream:
        if name is None:
            name = f"stream {next(self._stream_numbers)}"
        if any(s.name == name for s in self._streams):
            raise RuntimeAPIError(f"a stream named {name!r} already exists")
        stream = Stream(self, name)
        self._streams.append(stream)
        self.timeline.add_stream(name)
        return stream

    @property
    def streams(self) -> list[Stream]:
        return list(self._streams)

    def launch(self, name: str, fn: Callable[[], Any] | None, cost: Cost, *,
               stream: Stream | None = None, args: dict | None = None) -> LaunchRecord:
        """Run `fn` (the functional work) now and place `cost` after the stream's earlier work."""
        stream = self._own(stream)
        if not isinstance(cost, Cost):
            raise RuntimeAPIError(f"launch {name!r}: cost must be an npu_driver.perf.Cost, got {cost!r}")
        if fn is not None:
            fn()
        start = stream.cursor
        stream.cursor = start + cost.total_cycles
        return self.timeline.add(LaunchRecord(name, stream.name, start, stream.cursor, cost,
                                              dict(args or {})))

    def synchronize(self) -> int:
        return max(s.cursor for s in self._streams)

    def profile(self) -> dict[str, Any]:
        total = self.synchronize()
        return {
            "total_cycles": total,
            "latency_us": self.timeline.cycles_to_us(total),
            "peak_device_bytes": self.device.peak_bytes,
            "launches": [r.to_dict() for r in self.timeline.records],
        }

    def _own(self, stream: Stream | None) -> Stream:
        if stream is None:
            return self.default_stream
        if not isinstance(stream, Stream) or stream.context is not self:
            raise RuntimeAPIError(f"{stream!r} is not a stream of this context")
        return stream
