"""A served model: a backend, its configuration, its state (loading, ready, failed, unloaded)
and the way its requests reach the backend: the scheduler (batching.py) hands batches to the
model's instances, each running on its own thread (and its own simulated device)."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import config as model_config
from .backend import ModelBackend
from .batching import DynamicBatcher, Durations, Policy, merged
from .config import ModelConfig
from .errors import NotFound, ServingError, Unavailable
from .metrics import Metrics
from .statistics import ModelStatistics
from .tensors import client_specs, config_mismatch, model_mismatch, reshaped

log = logging.getLogger("npu_serving")

LOADING, READY, FAILED, UNLOADED = "loading", "ready", "failed", "unloaded"
# Triton's repository index states
INDEX_STATES = {LOADING: "LOADING", READY: "READY", FAILED: "UNAVAILABLE",
                UNLOADED: "UNAVAILABLE"}


class ServedModel:
    def __init__(self, name: str, version: str, backend: ModelBackend, config=ModelConfig(),
                 *, pace: bool = False):
        self.name = name
        self.version = version
        self.backend = backend
        self.config = config
        self.pace = pace
        self.state = LOADING
        self.error: str | None = None
        self.metrics: Metrics | None = None
        self.stats = ModelStatistics(name, version)
        self.instances = config.instances()
        self._executors = [ThreadPoolExecutor(1, thread_name_prefix=f"model-{name}-{i}")
                           for i in range(self.instances)]
        self._batcher: DynamicBatcher | None = None
        # Requests not answered yet, and executions running: an unload lets the executions
        # finish and answers every other request (see `unload`).
        self._answers: set[asyncio.Future] = set()
        self._executing = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.durations = Durations()  # of executions by the size they ran at (padded or not)

    @property
    def labels(self) -> dict:
        return {"model": self.name, "version": self.version}

    @property
    def pending(self) -> int:
        return self._batcher.pending if self._batcher is not None else 0

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
        if self.state == UNLOADED:
            raise Unavailable(f"model {self.name!r} is unloaded")

    @property
    def inputs(self) -> list:
        """The inputs as clients send them (configured dims where the model reshapes)."""
        return client_specs(self.backend.inputs, self.config.input_reshapes,
                            self.config.max_batch_size > 0)

    @property
    def outputs(self) -> list:
        return client_specs(self.backend.outputs, self.config.output_reshapes,
                            self.config.max_batch_size > 0)

    def metadata(self) -> dict:
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": self.backend.platform,
            "inputs": [spec.to_dict() for spec in self.inputs],
            "outputs": [spec.to_dict() for spec in self.outputs],
        }

    def triton_config(self) -> dict:
        """The configuration as Triton's JSON, completed from the model as Triton does
        (name, platform, inputs and outputs, the instance group it runs)."""
        pb = model_config.schema()
        proto = pb.ModelConfig()
        if self.config.proto is not None:
            proto.CopyFrom(self.config.proto)
        proto.name = self.name
        proto.platform = proto.platform or self.backend.platform
        proto.backend = proto.backend or "npu"
        proto.max_batch_size = self.config.max_batch_size
        batched = self.config.max_batch_size > 0
        if self.config.batches_dynamically and not proto.HasField("dynamic_batching"):
            proto.dynamic_batching.max_queue_delay_microseconds = self.config.max_queue_delay_us
        if not proto.input:
            for spec in self.backend.inputs:
                proto.input.add(name=spec.name, data_type=_triton_type(pb, spec.datatype),
                                dims=list(spec.shape[1:] if batched else spec.shape))
        if not proto.output:
            for spec in self.backend.outputs:
                proto.output.add(name=spec.name, data_type=_triton_type(pb, spec.datatype),
                                 dims=list(spec.shape[1:] if batched else spec.shape))
        if not proto.instance_group:
            proto.instance_group.add(name=self.name, count=self.instances,
                                     kind=pb.ModelInstanceGroup.KIND_CPU)
        if "precision" not in proto.parameters:
            proto.parameters["precision"].string_value = self.config.precision
        return model_config.to_json_dict(proto)

    def policy(self) -> Policy:
        c = self.config
        batching = c.batches_dynamically
        return Policy(
            max_batch_size=c.max_batch_size if batching else 0,
            max_queue_delay_s=c.max_queue_delay_us / 1e6,
            preferred_batch_sizes=c.preferred_batch_sizes,
            max_queue_size=c.max_queue_size,
            priority_levels=c.priority_levels,
            default_priority_level=c.default_priority_level,
            timeout_action=c.timeout_action,
            default_timeout_us=c.default_timeout_us,
            allow_timeout_override=c.allow_timeout_override,
            instances=self.instances,
            planned_batch_sizes=tuple(c.batch_sizes_to_prepare()) if batching else (),
        )

    async def start(self, metrics: Metrics) -> None:
        self.metrics = metrics
        metrics.model_ready.labels(**self.labels).set(0)
        # (through a weak reference: the registry outlives an unloaded model, whose plans and
        # engines a closure over `self` would keep, a gigabyte per load of AlexNet)
        model = weakref.ref(self)
        metrics.nv_pending.labels(**self.labels).set_function(
            lambda: model().pending if model() is not None else 0)
        self._batcher = DynamicBatcher(self._execute, policy=self.policy(), seconds=self.durations)
        self._batcher.start()

    async def load(self) -> None:
        self.state, self.error = LOADING, None
        sizes = self.config.batch_sizes_to_prepare()
        batched = self.config.max_batch_size > 0
        problem = model_mismatch(self.backend.inputs, self.config.input_reshapes, batched,
                                 "input") or model_mismatch(
            self.backend.outputs, self.config.output_reshapes, batched, "output") or \
            self._config_mismatch(batched)
        if problem:  # Triton refuses such a configuration at load too
            self.state, self.error = FAILED, f"{self.config.source}: {problem}"
            log.error("model %s version %s failed to load: %s", self.name, self.version, self.error)
            return
        try:
            await asyncio.get_running_loop().run_in_executor(
                self._executors[0], _raising_no_stop_iteration, self.backend.prepare,
                self.instances, sizes)
        except Exception as exc:  # any failure to load is reported, not raised: others load on
            self.state, self.error = FAILED, f"{type(exc).__name__}: {exc}"
            log.error("model %s version %s failed to load: %s", self.name, self.version, self.error)
            return
        if self.state == UNLOADED:  # unloaded while it compiled: it must not turn ready
            return
        for instance in range(self.instances):
            self.metrics.device_attached(self.backend.sku_name or "none", (self.name, self.version,
                                         instance), self.backend.device_memory_bytes)
        self.state = READY
        self.metrics.model_ready.labels(**self.labels).set(1)
        log.info("model %s version %s is ready (%d instances)", self.name, self.version,
                 self.instances)

    def _config_mismatch(self, batched: bool) -> str | None:
        proto = self.config.proto
        if proto is None:
            return None
        return config_mismatch(self.backend.inputs, proto.input, batched, "input",
                               _kserve_type) or config_mismatch(
            self.backend.outputs, proto.output, batched, "output", _kserve_type)

    async def stop(self) -> None:
        if self._batcher is not None:
            await self._batcher.stop()
        for executor in self._executors:
            executor.shutdown(wait=False, cancel_futures=True)

    async def unload(self) -> None:
        """Triton's unload: new requests are refused at once, executions in flight finish and
        answer, and every request still waiting is answered 503 (before, the requests of the
        batches executing never got an answer, and the waiting ones were told the server was
        shutting down)."""
        self.state = UNLOADED  # from here, a batch the scheduler hands over fails at once
        if self.metrics is not None:
            self.metrics.model_ready.labels(**self.labels).set(0)
        await self._idle.wait()
        if self.metrics is not None:  # after the last execution, which records its device
            for instance in range(self.instances):
                self.metrics.device_detached(self.backend.sku_name or "none",
                                             (self.name, self.version, instance))
        # Stopping the scheduler yields to the loop, so the requests whose executions just
        # finished get their answers first; what is left never will (queued, or in a batch
        # being gathered, which the scheduler drops).
        await self.stop()
        for answer in list(self._answers):
            if not answer.done():
                answer.set_exception(self._unloaded())
        self.backend.unload()

    def _forward(self, answer: asyncio.Future, submitted: asyncio.Future) -> None:
        """The scheduler's answer (`submitted`) onto the request's own future."""
        if submitted.cancelled():
            if not answer.done():
                answer.cancel()
            return
        error = submitted.exception()  # retrieved even when unused: asyncio logs it otherwise
        if answer.done():
            return
        if type(error) is Unavailable and self.state == UNLOADED:
            error = self._unloaded()  # the stopped scheduler's "server is shutting down"
        if error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(submitted.result())

    def _unloaded(self) -> Unavailable:
        return Unavailable(f"model {self.name!r} version {self.version} was unloaded before "
                           "the request ran")

    async def infer(self, inputs: dict[str, np.ndarray], priority: int | None = None,
                    timeout_us: int | None = None) -> tuple[dict[str, np.ndarray], dict]:
        """The outputs, and what the response's `parameters` say of the execution."""
        self.require_ready()
        if priority and self.config.priority_levels and priority > self.config.priority_levels:
            raise ServingError(f"priority {priority} is out of range for model {self.name!r}: "
                               f"expected 1 to {self.config.priority_levels}", 400)
        batched = self.config.max_batch_size > 0
        inputs = reshaped(inputs, self.config.input_reshapes, batched, to_model=True)
        outputs, info = await self._answered(inputs, priority, timeout_us)
        return reshaped(outputs, self.config.output_reshapes, batched, to_model=False), info

    async def _answered(self, inputs, priority, timeout_us) -> tuple[dict, dict]:
        """The scheduler's answer, through a future of the model's own, so that an unload
        answers the request whatever the scheduler did with it (a batch being gathered when
        the scheduler stops is dropped with its requests)."""
        answer = asyncio.get_running_loop().create_future()
        submitted = asyncio.ensure_future(self._batcher.submit(inputs, priority, timeout_us))
        submitted.add_done_callback(functools.partial(self._forward, answer))
        self._answers.add(answer)
        try:
            return await answer
        finally:
            self._answers.discard(answer)
            submitted.cancel()  # the client went away: its request leaves the queue too

    async def _execute(self, batch, instance: int) -> tuple[dict, dict]:
        if self.state == UNLOADED:
            raise self._unloaded()
        self._executing += 1
        self._idle.clear()
        try:
            return await self._execute_now(batch, instance)
        finally:
            self._executing -= 1
            if not self._executing:
                self._idle.set()

    async def _execute_now(self, batch, instance: int) -> tuple[dict, dict]:
        labels = self.labels
        batched = self.config.max_batch_size > 0

        def run() -> tuple[dict, dict]:
            started = time.perf_counter()
            queued = [started - waiting.enqueued for waiting in batch]
            inputs = merged(batch)
            size = len(next(iter(inputs.values()))) if batched else 1
            inferring = time.perf_counter()
            outputs, device = self.backend.execute(inputs, instance)
            device_us = float(device.get("latency_us") or 0.0)
            if self.pace:  # the execution lasts at least as long as on the simulated device
                remaining = device_us / 1e6 - (time.perf_counter() - inferring)
                if remaining > 0:
                    time.sleep(remaining)
            returning = time.perf_counter()
            self.durations.observe(device.get("executed_batch_size") or size, returning - inferring)
            self._check_outputs(outputs, size)
            ended = time.perf_counter()
            phases = {"compute_input": inferring - started, "compute_infer": returning - inferring,
                      "compute_output": ended - returning}
            self.stats.execution(len(batch), size, queued, phases)
            self._count(labels, batch, size, queued, phases, device_us, device, instance)
            info = {"batch_size": size, "simulated_device_time_us": round(device_us, 3),
                    "instance": instance}
            if device.get("executed_batch_size") not in (None, size):
                info["executed_batch_size"] = device["executed_batch_size"]  # padded
            if device.get("peak_device_bytes") is not None:
                info["simulated_device_peak_bytes"] = int(device["peak_device_bytes"])
            return outputs, info

        return await asyncio.get_running_loop().run_in_executor(
            self._executors[instance], _raising_no_stop_iteration, run)

    def _count(self, labels, batch, size, queued, phases, device_us, device, instance) -> None:
        metrics = self.metrics
        metrics.batch_size.labels(**labels).observe(size)
        metrics.nv_count.labels(**labels).inc(size)
        metrics.nv_exec_count.labels(**labels).inc()
        for waited in queued:
            metrics.queue_duration.labels(**labels).observe(waited)
            metrics.observe_us("queue", labels, waited)
        compute = sum(phases.values())
        metrics.compute_duration.labels(**labels).observe(compute)
        for phase, seconds in phases.items():
            metrics.observe_us(phase, labels, seconds, len(batch))
        metrics.device_execution(self.backend.sku_name or "none",
                                 (self.name, self.version, instance), device_us,
                                 device.get("peak_device_bytes"))

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


def _raising_no_stop_iteration(function, *args):
    """`function(*args)`, for a thread whose result an asyncio future awaits: a StopIteration
    escaping it (a stray `next()` in a backend) cannot be set on a future, so the future would
    never complete and its request or load would hang; it is raised as a RuntimeError."""
    try:
        return function(*args)
    except StopIteration as exc:
        raise RuntimeError(f"StopIteration escaped the backend ({exc!r})") from None


def _kserve_type(data_type: int) -> str | None:
    """Triton's data_type as KServe's datatype name (None: TYPE_INVALID, not configured)."""
    name = model_config.schema().DataType.Name(data_type)
    if name == "TYPE_INVALID":
        return None
    return "BYTES" if name == "TYPE_STRING" else name.removeprefix("TYPE_")


def _triton_type(pb, datatype: str) -> int:
    return pb.DataType.Value("TYPE_STRING" if datatype == "BYTES" else f"TYPE_{datatype}")
