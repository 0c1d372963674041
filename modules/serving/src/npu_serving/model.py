"""A served model: a backend, its configuration, its state (loading, ready, failed) and the way
its requests reach the backend (one at a time, or merged by the dynamic batcher)."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .backend import ModelBackend
from .batching import DynamicBatcher
from .errors import NotFound, ServingError, Unavailable
from .metrics import Metrics
from .repository import ModelConfig

log = logging.getLogger("npu_serving")

LOADING, READY, FAILED = "loading", "ready", "failed"


class ServedModel:
    def __init__(self, name: str, version: str, backend: ModelBackend, config=ModelConfig()):
        self.name = name
        self.version = version
        self.backend = backend
        self.config = config
        self.state = LOADING
        self.error: str | None = None
        self.metrics: Metrics | None = None
        # One thread per model: the backend runs one batch at a time (a simulated device).
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"model-{name}")
        self._batcher: DynamicBatcher | None = None

    @property
    def labels(self) -> dict:
        return {"model": self.name, "version": self.version}

    def check_version(self, version: str | None) -> None:
        if version not in (None, "", self.version):
            raise NotFound(
                f"model {self.name!r} has no version {version!r} (serving version {self.version})"
            )

    def require_ready(self) -> None:
        if self.state == LOADING:
            raise Unavailable(f"model {self.name!r} is loading")
        if self.state == FAILED:
            raise Unavailable(f"model {self.name!r} failed to load: {self.error}")

    def metadata(self) -> dict:
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": self.backend.platform,
            "inputs": [spec.to_dict() for spec in self.backend.inputs],
            "outputs": [spec.to_dict() for spec in self.backend.outputs],
        }

    async def start(self, metrics: Metrics) -> None:
        self.metrics = metrics
        metrics.model_ready.labels(**self.labels).set(0)
        if self.config.batches_dynamically:
            self._batcher = DynamicBatcher(
                self._execute, self.config.max_batch_size, self.config.max_queue_delay_us / 1e6
            )
            self._batcher.start()

    async def load(self) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self.backend.load)
        except Exception as exc:  # any failure to load is reported, not raised: others load on
            self.state, self.error = FAILED, f"{type(exc).__name__}: {exc}"
            log.error("model %s version %s failed to load: %s", self.name, self.version, self.error)
            return
        self.state = READY
        self.metrics.model_ready.labels(**self.labels).set(1)
        log.info("model %s version %s is ready", self.name, self.version)

    async def stop(self) -> None:
        if self._batcher is not None:
            await self._batcher.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.require_ready()
        if self._batcher is not None:
            return await self._batcher.submit(inputs)
        return await self._execute(inputs, [time.perf_counter()])

    async def _execute(self, inputs: dict[str, np.ndarray], enqueued: list[float]) -> dict:
        labels = self.labels

        def run() -> dict:
            started = time.perf_counter()
            for moment in enqueued:
                self.metrics.queue_duration.labels(**labels).observe(started - moment)
            outputs = self.backend.infer(inputs)
            self.metrics.compute_duration.labels(**labels).observe(time.perf_counter() - started)
            return outputs

        batch = len(next(iter(inputs.values()))) if self.config.max_batch_size > 0 else 1
        self.metrics.batch_size.labels(**labels).observe(batch)
        outputs = await asyncio.get_running_loop().run_in_executor(self._executor, run)
        self._check_outputs(outputs, batch)
        return outputs

    def _check_outputs(self, outputs: dict, batch: int) -> None:
        for spec in self.backend.outputs:
            if spec.name not in outputs:
                raise ServingError(f"model {self.name!r} returned no output {spec.name!r}")
            shape = np.shape(outputs[spec.name])
            if self.config.max_batch_size > 0 and shape[:1] != (batch,):
                raise ServingError(
                    f"model {self.name!r}: output {spec.name!r} has shape {list(shape)}, "
                    f"expected batch dimension {batch} first"
                )
