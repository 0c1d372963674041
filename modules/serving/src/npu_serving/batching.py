"""Triton-style dynamic batching: requests that arrive together are merged along the batch
dimension (the first) up to `max_batch_size`, run once, and split back.

A batch starts with the oldest waiting request and takes later ones while they fit, waiting at
most `max_queue_delay` for more; while a batch runs, new requests queue up, so under load batches
fill by themselves even with no delay. Only requests whose other dimensions and datatypes agree
can share a batch.
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

import numpy as np

from .errors import Unavailable

# execute(merged inputs, enqueue times of the merged requests) -> outputs of the merged batch
Execute = Callable[[dict[str, np.ndarray], list[float]], Awaitable[dict[str, np.ndarray]]]


@dataclass
class _Waiting:
    inputs: dict[str, np.ndarray]
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)

    @property
    def size(self) -> int:
        return len(next(iter(self.inputs.values())))

    @property
    def compatibility(self) -> tuple:
        return tuple((name, a.shape[1:], a.dtype.str) for name, a in sorted(self.inputs.items()))


class DynamicBatcher:
    def __init__(self, execute: Execute, max_batch_size: int, max_queue_delay_s: float = 0.0):
        self._execute = execute
        self.max_batch_size = max_batch_size
        self.max_queue_delay_s = max_queue_delay_s
        self._waiting: collections.deque[_Waiting] = collections.deque()
        self._arrived = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._serve())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while self._waiting:
            waiting = self._waiting.popleft()
            if not waiting.future.done():
                waiting.future.set_exception(Unavailable("server is shutting down"))

    async def submit(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        waiting = _Waiting(inputs, asyncio.get_running_loop().create_future())
        self._waiting.append(waiting)
        self._arrived.set()
        return await waiting.future

    async def _serve(self) -> None:
        while True:
            while not self._waiting:
                self._arrived.clear()
                await self._arrived.wait()
            await self._run(await self._gather())

    async def _gather(self) -> list[_Waiting]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_queue_delay_s
        batch = [self._waiting.popleft()]
        size = batch[0].size
        while size < self.max_batch_size and await self._more_arrived(deadline):
            candidate = self._waiting[0]
            if size + candidate.size > self.max_batch_size:
                break
            if candidate.compatibility != batch[0].compatibility:
                break
            batch.append(self._waiting.popleft())
            size += candidate.size
        return batch

    async def _more_arrived(self, deadline: float) -> bool:
        loop = asyncio.get_running_loop()
        while not self._waiting:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                pass
        return True

    async def _run(self, batch: list[_Waiting]) -> None:
        batch = [waiting for waiting in batch if not waiting.future.done()]  # clients gone
        if not batch:
            return
        merged = {
            name: np.concatenate([waiting.inputs[name] for waiting in batch])
            for name in batch[0].inputs
        }
        try:
            outputs = await self._execute(merged, [waiting.enqueued for waiting in batch])
        except Exception as exc:  # every request of the batch gets the batch's error
            for waiting in batch:
                if not waiting.future.done():
                    waiting.future.set_exception(exc)
            return
        offset = 0
        for waiting in batch:
            part = {name: out[offset : offset + waiting.size] for name, out in outputs.items()}
            offset += waiting.size
            if not waiting.future.done():
                waiting.future.set_result(part)
