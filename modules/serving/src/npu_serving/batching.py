"""The scheduler of one model, Triton's dynamic batcher: requests wait in a bounded queue per
priority level, and each instance takes the next batch when it is free.

A batch starts with the oldest request of the highest priority waiting (level 1 is the highest)
and takes later ones while they fit `max_batch_size` and agree on their other dimensions and
datatypes, waiting at most `max_queue_delay` for more, and stopping early at a preferred batch
size; while every instance is busy new requests queue up, so under load batches fill by
themselves even with no delay. Without batching (`max_batch_size` 0) a batch is one request.

Two choices go beyond Triton's batcher, so that batching is never slower than running requests
one by one: a batch formed while other instances are idle takes only its share of the waiting
requests (the rest go to those instances at once rather than wait for this batch to end), and
a batch whose size has no plan is padded up to the next planned size rather than cut back to
the one below when the measured execution times say that serves more requests per second.

A full queue (`max_queue_size`) rejects at once (503). A request whose timeout passes while it
waits is rejected then (timeout action REJECT; it is never executed) or, with DELAY, goes
behind every other waiting request.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

import numpy as np

from .errors import Unavailable

# execute(the requests of a batch, instance) -> (outputs of the batch (see `merged`), what
# each request's response says of the execution); `submit` returns (its part, that)
Execute = Callable[[list["Waiting"], int], Awaitable[dict]]
# seconds(batch size) -> how long an execution of that planned size takes, if known
Seconds = Callable[[int], "float | None"]


@dataclass
class Waiting:
    inputs: dict[str, np.ndarray]
    future: asyncio.Future
    priority: int = 1
    deadline: float | None = None  # loop time
    enqueued: float = field(default_factory=time.perf_counter)
    delayed: bool = False
    started: float | None = None
    batch_size: int = 0

    @property
    def size(self) -> int:
        """Its batch size (a model without batching may take scalars: one request is one)."""
        first = next(iter(self.inputs.values()))
        return len(first) if np.ndim(first) else 1

    @property
    def compatibility(self) -> tuple:
        return tuple((name, a.shape[1:], a.dtype.str) for name, a in sorted(self.inputs.items()))


@dataclass(frozen=True)
class Policy:
    max_batch_size: int = 0  # 0: one request per execution
    max_queue_delay_s: float = 0.0
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_size: int = 0  # 0: unbounded
    priority_levels: int = 0  # 0: one level
    default_priority_level: int = 0
    timeout_action: str = "REJECT"
    default_timeout_us: int = 0
    allow_timeout_override: bool = False
    instances: int = 1
    # Sizes the backend has plans for: a gathered batch is cut back to the largest of them
    # that it reaches (the rest wait for the next batch) rather than padded up to the next.
    planned_batch_sizes: tuple[int, ...] = ()


class Durations:
    """How long executions of each batch size take: an exponentially weighted mean of the
    latest ones (wall seconds, pacing included), so that it follows the machine's load."""

    WEIGHT = 0.2  # of the newest execution

    def __init__(self):
        self._seconds: dict[int, float] = {}

    def observe(self, size: int, seconds: float) -> None:
        before = self._seconds.get(size)
        self._seconds[size] = seconds if before is None else \
            before + self.WEIGHT * (seconds - before)

    def __call__(self, size: int) -> float | None:
        return self._seconds.get(size)


class TimedOut(Unavailable):
    """Triton's answer to a request whose queue timeout passed."""


class DynamicBatcher:
    def __init__(self, execute: Execute, max_batch_size: int = 0, max_queue_delay_s: float = 0.0,
                 policy: Policy | None = None, seconds: Seconds | None = None):
        self._execute = execute
        self._seconds = seconds or (lambda size: None)
        self.policy = policy or Policy(max_batch_size, max_queue_delay_s)
        self.max_batch_size = self.policy.max_batch_size
        levels = max(1, self.policy.priority_levels)
        self._queues: list[collections.deque[Waiting]] = [collections.deque()
                                                          for _ in range(levels)]
        self._arrived = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        # One batch forms at a time (Triton's batcher thread): a free instance waits its turn
        # rather than splitting the requests another is still gathering.
        self._forming = asyncio.Lock()
        self.pending = 0  # waiting, not yet executing
        self.busy = 0  # instances executing a batch
        self.expired = 0
        self.rejected_full = 0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._serve(instance))
                       for instance in range(max(1, self.policy.instances))]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for queue in self._queues:
            while queue:
                waiting = queue.popleft()
                if not waiting.future.done():
                    waiting.future.set_exception(Unavailable("server is shutting down"))
        self.pending = 0

    def level(self, priority: int | None) -> int:
        """The queue level of a request's `priority` (0 or absent: the default level)."""
        levels = max(1, self.policy.priority_levels)
        if not priority:
            priority = self.policy.default_priority_level or (levels + 1) // 2
        return min(max(int(priority), 1), levels)

    async def submit(self, inputs: dict[str, np.ndarray], priority: int | None = None,
                     timeout_us: int | None = None) -> dict[str, np.ndarray]:
        policy = self.policy
        if policy.max_queue_size and self.pending >= policy.max_queue_size:
            self.rejected_full += 1
            raise Unavailable(f"exceeds maximum queue size ({policy.max_queue_size} requests "
                              "waiting)")
        loop = asyncio.get_running_loop()
        waiting = Waiting(inputs, loop.create_future(), self.level(priority))
        timeout = policy.default_timeout_us
        if timeout_us and (policy.allow_timeout_override or not timeout):
            timeout = timeout_us
        if timeout:
            waiting.deadline = loop.time() + timeout / 1e6
            if policy.timeout_action == "REJECT":
                loop.call_at(waiting.deadline, self._expire, waiting)
        self._queues[waiting.priority - 1].append(waiting)
        self.pending += 1
        self._arrived.set()
        return await waiting.future

    def _expire(self, waiting: Waiting) -> None:
        if waiting.started is None and not waiting.future.done():
            self.expired += 1
            self._unqueue(waiting)
            waiting.future.set_exception(TimedOut("request timeout expired while queued"))

    def _unqueue(self, waiting: Waiting) -> None:
        try:
            self._queues[waiting.priority - 1].remove(waiting)
            self.pending -= 1
        except ValueError:
            pass

    def _head(self) -> Waiting | None:
        """The next request to run (a DELAY request whose timeout passed goes behind all)."""
        now = asyncio.get_running_loop().time()
        for queue in self._queues:
            while queue:
                waiting = queue[0]
                if waiting.future.done():  # expired or abandoned
                    queue.popleft()
                    self.pending -= 1
                    continue
                if waiting.deadline is not None and now >= waiting.deadline and \
                        not waiting.delayed:
                    queue.popleft()
                    waiting.delayed = True
                    self._queues[-1].append(waiting)
                    continue
                return waiting
        return None

    def _take(self) -> Waiting:
        waiting = self._head()
        self._queues[waiting.priority - 1].popleft()
        self.pending -= 1
        return waiting

    async def _serve(self, instance: int) -> None:
        while True:
            async with self._forming:
                while self._head() is None:
                    self._arrived.clear()
                    await self._arrived.wait()
                batch = await self._gather()
                self.busy += 1  # before the next batch forms, so that it sees this one busy
            try:
                await self._run(batch, instance)
            finally:
                self.busy -= 1

    async def _gather(self) -> list[Waiting]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.policy.max_queue_delay_s
        batch = [self._take()]
        size = batch[0].size
        if self.max_batch_size <= 0:
            return batch
        preferred = self.policy.preferred_batch_sizes
        while size < self._share(size):
            candidate = self._head()
            if candidate is None:
                if size in preferred or not await self._more_arrived(deadline):
                    break
                continue
            if size + candidate.size > self.max_batch_size or \
                    candidate.compatibility != batch[0].compatibility:
                break
            batch.append(self._take())
            size += candidate.size
        return self._cut_to_plan(batch)

    def _share(self, gathered: int) -> int:
        """The most this batch takes: all it can while it is the only free instance; with idle
        instances besides it, its share of the requests waiting, split evenly among them (so
        four requests on two idle instances run as two batches of two, side by side)."""
        idle = max(1, self.policy.instances) - self.busy
        if idle <= 1:
            return self.max_batch_size
        waiting = gathered + sum(w.size for q in self._queues for w in q if not w.future.done())
        return min(self.max_batch_size, max(gathered, math.ceil(waiting / idle)))

    def _cut_to_plan(self, batch: list[Waiting]) -> list[Waiting]:
        planned = self.policy.planned_batch_sizes
        size = sum(w.size for w in batch)
        if not planned or size in planned or size > max(planned):
            return batch
        fitting = [p for p in planned if p <= size]
        target = max(fitting) if fitting else size
        if self._pad_serves_more(size, target, min(p for p in planned if p >= size)):
            return batch  # the backend runs it padded to the next plan
        kept, total = [], 0
        for waiting in batch:
            if kept and total + waiting.size > target:
                break
            kept.append(waiting)
            total += waiting.size
        for waiting in reversed(batch[len(kept):]):  # back at the front, in their order
            self._queues[waiting.priority - 1].appendleft(waiting)
            self.pending += 1
        if len(kept) < len(batch):
            self._arrived.set()
        return kept

    def _pad_serves_more(self, size: int, cut: int, padded: int) -> bool:
        """Whether `size` requests padded to the `padded` plan serve more per second than the
        `cut` plan's requests do (the rest wait): on a device whose time per image falls with
        the batch, 7 padded to 8 beats 4; where it is flat, cutting wastes nothing. Unknown
        times cut: a padded image is work done for nothing."""
        cut_s, padded_s = self._seconds(cut), self._seconds(padded)
        if not cut_s or not padded_s:
            return False
        return size / padded_s > cut / cut_s

    async def _more_arrived(self, deadline: float) -> bool:
        loop = asyncio.get_running_loop()
        while self._head() is None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                pass
        return True

    async def _run(self, batch: list[Waiting], instance: int) -> None:
        batch = [waiting for waiting in batch if not waiting.future.done()]  # clients gone
        if not batch:
            return
        for waiting in batch:
            waiting.started = time.perf_counter()
        try:
            outputs, info = await self._execute(batch, instance)
            parts = _split(batch, outputs)
        except Exception as exc:  # every request of the batch gets the batch's error (and
            for waiting in batch:  # the instance's worker lives on to serve the next batch)
                if not waiting.future.done():
                    waiting.future.set_exception(exc)
            return
        for waiting, part in zip(batch, parts):
            if not waiting.future.done():
                waiting.future.set_result((part, info))


def _split(batch: list[Waiting], outputs: dict[str, np.ndarray]) -> list[dict]:
    """Each request's part of the batch's outputs. A lone request gets them whole: the outputs
    of a model without batching need not keep its inputs' first axis (a recognizer's 20 steps
    for one image, a scalar score)."""
    if len(batch) == 1:
        return [outputs]
    parts, offset = [], 0
    for waiting in batch:
        parts.append({name: out[offset: offset + waiting.size] for name, out in outputs.items()})
        offset += waiting.size
    return parts


def merged(batch: list[Waiting]) -> dict[str, np.ndarray]:
    """The inputs of a batch's requests, concatenated along the batch dimension."""
    if len(batch) == 1:
        return batch[0].inputs
    return {name: np.concatenate([waiting.inputs[name] for waiting in batch])
            for name in batch[0].inputs}
