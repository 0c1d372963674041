"""The seam between the server and what runs a model: `ModelBackend`.

A backend is a small fixed interface (the tensors it takes and gives, a slow `load`, and `infer`);
`CompilerBackend` is the real one, compiling the ONNX model with `npu_compiler` and running the
plan on the simulated NPU.
"""

from __future__ import annotations

import collections
import inspect
import logging
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import datatypes
from .errors import RepositoryError, ServingError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output as KServe describes it: -1 in `shape` accepts any size."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    def accepts_shape(self, shape) -> bool:
        return len(shape) == len(self.shape) and all(
            want in (-1, got) for want, got in zip(self.shape, shape)
        )


class ModelBackend(ABC):
    """What the server needs of a model.

    `prepare` does the slow work (compiling, warming up) off the event loop before the model is
    ready; `execute` is called from the instance's own thread (instance 0 to instances - 1, one
    call at a time per instance), with inputs already checked against `inputs`, and returns the
    outputs and what the simulated device reports of the run (`latency_us`,
    `peak_device_bytes`; empty for a backend with no device).
    """

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    platform = "npu"
    sku_name: str | None = None
    device_memory_bytes: int | None = None

    def load(self) -> None:
        """Prepare to serve; raising marks the model as failed with the exception's message."""

    def prepare(self, instances: int, batch_sizes: list[int]) -> None:
        """`load`, for `instances` instances, with plans ready for `batch_sizes`."""
        self.load()

    def unload(self) -> None:
        """Let go of what `prepare` built: the model is unloaded, nothing runs on it again."""

    @abstractmethod
    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model once; returns every output by name."""

    def execute(self, inputs: dict[str, np.ndarray], instance: int = 0) -> tuple[dict, dict]:
        return self.infer(inputs), {}


class CompilerBackend(ModelBackend):
    """An ONNX model compiled by `npu_compiler` for one SKU and run by its `Engine`.

    Compiled plans have fixed shapes, so a model whose batch dimension varies (a batching model,
    or an ONNX input with a symbolic first dimension) has one plan per batch size: those of
    `prepare`'s batch sizes are compiled and warmed up ahead, and a batch of another size
    runs on the next larger of them, padded with zeros (its outputs cut back), so that nothing
    compiles on a request's path; a batch larger than all of them is compiled when first asked
    for and kept in a bounded cache (the least recently used goes first). Inputs with
    symbolic dimensions past the batch (height, width, sequence length) compile a plan per
    shape signature of the request, in the same cache. Each instance is one simulated device
    with its own engines (an engine's arena and timeline are state of one run at a time), all
    on that device and holding the model's weights once (a compiler before 1.8 uploads them per
    engine); the plans are shared by the instances.
    """

    platform = "npu_onnx"
    CACHED_PLANS = 8

    def __init__(self, path: Path, sku, *, precision: str = "fp32", batching: bool = False):
        self.path = Path(path)
        self.sku = sku
        self.precision = precision
        self.inputs, self.outputs = _onnx_tensor_specs(self.path, batching)
        # Only a batching model's inputs all lead with the batch. Without batching, a model
        # gets exactly the shapes its client sends, and a symbolic first axis need not be a
        # batch (an RNN's state [2, batch, 128] beside its samples [batch, n], a sequence
        # [seq, 576] beside a state [1, 1, 128]): its inputs' whole shapes pick the plan.
        self._variable_batch = batching
        # Inputs with a symbolic dimension beyond the batch: a plan is compiled per shape
        # signature of their feeds (an image model's height and width), in the same cache.
        first = 1 if self._variable_batch else 0
        self._symbolic = [spec.name for spec in self.inputs if -1 in spec.shape[first:]]
        self._plans: collections.OrderedDict = collections.OrderedDict()
        self._constants: dict[str, np.ndarray] = {}  # by name, shared by the plans
        self._pinned: set = set()
        self._prepared: list[int] = []
        self._engines: dict[tuple[int, int | None], object] = {}
        # instance -> (its device's runtime context, the weights uploaded to it by name)
        self._devices: dict[int, tuple] = {}
        # instance -> engines dropped from the cache, closed by that instance's own thread
        # (another may be running one when the cache drops it)
        self._retired: dict[int, list] = collections.defaultdict(list)
        self._lock = threading.Lock()
        self.instances = 1
        self.last_profile: dict | None = None
        self.sku_name = getattr(sku, "name", None) or str(sku)
        self.device_memory_bytes = None

    def load(self) -> None:
        self.prepare(1, [1] if self._variable_batch else [])

    def prepare(self, instances: int, batch_sizes: list[int]) -> None:
        from npu_driver import load_sku

        target = load_sku(self.sku)
        self.sku_name, self.device_memory_bytes = target.name, target.device_memory_bytes
        self.instances = max(1, instances)
        sizes = batch_sizes if self._variable_batch and batch_sizes else \
            [1] if self._variable_batch else [None]
        self._prepared = sorted(b for b in sizes if b is not None)
        if self._symbolic and not self._batch_axis_only():
            return  # no shape to warm up: plans are compiled per request shape signature
        for batch in sizes:
            zeros = self._zeros(batch)
            key = (batch, self._signature(zeros))
            self._pinned.add(key)
            try:
                for instance in range(self.instances):  # warm-up: arenas allocated, pages
                    self.execute(zeros, instance)       # touched
            except Exception as exc:
                if not self._symbolic:
                    raise
                # A length of 1 was a guess, which the model need not take (a Reshape of
                # it to 4x4): it loads, and compiles a plan per request shape instead.
                self._pinned.discard(key)
                log.warning("%s: no warm-up at shape %s (%s: %s); plans compile per request "
                            "shape", self.path, dict(key[1]), type(exc).__name__,
                            str(exc).splitlines()[0][:200] if str(exc) else "")

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.execute(inputs)[0]

    def execute(self, inputs: dict[str, np.ndarray], instance: int = 0) -> tuple[dict, dict]:
        batch = len(next(iter(inputs.values()))) if self._variable_batch else None
        signature = self._signature(inputs)
        run_as = self._padded_size(batch, signature)
        if run_as != batch:
            inputs = {name: _padded(array, run_as) for name, array in inputs.items()}
        outputs, profile = self._run(instance, (run_as, signature), inputs)
        self.last_profile = profile
        outputs = {
            spec.name: np.asarray(outputs[spec.name][:batch] if run_as != batch else
                                  outputs[spec.name], dtype=datatypes.to_numpy(spec.datatype))
            for spec in self.outputs
        }
        return outputs, {"latency_us": profile["latency_us"],
                         "peak_device_bytes": profile["peak_device_bytes"],
                         "executed_batch_size": run_as}

    def _batch_axis_only(self) -> bool:
        """Whether a model without batching has symbolic dims only first (a batch, likely):
        its batch-1 plan is warmed up at load, as a batching model's are."""
        return not self._variable_batch and all(-1 not in s.shape[1:] for s in self.inputs)

    def _signature(self, inputs: dict[str, np.ndarray]) -> tuple:
        """The shapes of the feeds of inputs with symbolic dims (a batching model's past its
        batch axis, which the plan key holds apart; a model without batching's whole)."""
        first = 1 if self._variable_batch else 0
        return tuple((name, tuple(np.shape(inputs[name])[first:])) for name in self._symbolic
                     if name in inputs)

    def _padded_size(self, batch: int | None, signature: tuple = ()) -> int | None:
        if batch is None or (batch, signature) in self._plans or not self._prepared or \
                batch > self._prepared[-1]:
            return batch
        return next(size for size in self._prepared if size >= batch)

    def _zeros(self, batch: int | None) -> dict[str, np.ndarray]:
        feeds = {}
        for spec in self.inputs:
            shape = [1 if dim < 0 else dim for dim in spec.shape]
            if batch is not None and shape:
                shape[0] = batch
            feeds[spec.name] = np.zeros(shape, datatypes.to_numpy(spec.datatype))
        return feeds

    def _run(self, instance: int, plan_key: tuple, inputs: dict) -> tuple[dict, dict]:
        """The engine's run, its simulated device's running out of memory answered: a shape
        whose plan needs more than the device has is the client's (400); one that does not
        fit what is free now resets the instance's device, as an engine of a compiler before
        1.8.1 that runs out of memory keeps what it had allocated of that run (each such
        request leaked its input's bytes, until every request on the instance failed). Either
        was a 500."""
        from npu_compiler import CompileError
        from npu_driver import OutOfDeviceMemory

        try:
            return self._engine(instance, plan_key).run(inputs)
        except OutOfDeviceMemory as exc:
            self._reset_device(instance)
            raise DeviceMemoryFull(f"{exc}: the instance's simulated device was reset",
                                   503) from None
        except CompileError as exc:
            if not plan_key[1]:  # not the client's shapes: the model's own failure
                raise
            # Shapes the client chose for the symbolic dimensions that the model cannot take
            # (a Reshape to 4x4 of 3 elements): the client's mistake, answered 500 before.
            shapes = ", ".join(f"{name} {list(dims)}" for name, dims in plan_key[1])
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ServingError(f"the model does not run at input shapes {shapes}: {reason}",
                               400) from None

    def _reset_device(self, instance: int) -> None:
        """Drop the instance's engines and device: its next engine starts on a new one (with
        the weights uploaded again). Only the instance's own thread calls this."""
        for key in [key for key in self._engines if key[0] == instance]:
            del self._engines[key]
        self._devices.pop(instance, None)
        self._retired[instance].clear()

    def _check_fits(self, plan, plan_key: tuple) -> None:
        peak = (getattr(plan, "memory", None) or {}).get("peak_bytes")  # compiler-api 1.1
        capacity = self.device_memory_bytes
        if peak and capacity and peak > capacity:
            batch, signature = plan_key
            shapes = ", ".join(f"{name} {[batch, *dims] if batch else list(dims)}"
                               for name, dims in signature) or f"batch {batch}"
            raise DeviceMemoryFull(f"{shapes}: the model needs {peak} bytes of simulated device "
                                   f"memory at these shapes, more than the {capacity} of "
                                   f"{self.sku_name}", 400)

    def _engine(self, instance: int, plan_key: tuple):
        """`plan_key` is (batch, shape signature): one engine per instance and plan."""
        key = (instance, plan_key)
        while self._retired[instance]:
            self._retired[instance].pop().close()  # its arena off the device
        if key not in self._engines:
            plan = self._plan(plan_key)
            self._check_fits(plan, plan_key)
            self._engines[key] = self._new_engine(instance, plan)
        return self._engines[key]

    def _new_engine(self, instance: int, plan):
        """An engine on the instance's device, sharing the weights its other engines uploaded
        (with a compiler that cannot share them, on a device of its own)."""
        import npu_compiler  # here, so that the protocol layer loads without the compiler

        # The SKU as given (a YAML path too): a plan names its SKU, not where it came from.
        if "weights" not in inspect.signature(npu_compiler.Engine).parameters:
            return npu_compiler.Engine(plan, self.sku)  # compiler-api before 1.6
        device = self._devices.get(instance)
        ctx, weights = device or (None, {})
        engine = npu_compiler.Engine(plan, self.sku, ctx=ctx, weights=weights)
        if device is None:
            self._devices[instance] = (engine.ctx, engine.shared_weights)
        return engine

    def _plan(self, plan_key: tuple):
        with self._lock:  # instances ask from their own threads
            if plan_key in self._plans:
                self._plans.move_to_end(plan_key)
                return self._plans[plan_key]
        import npu_compiler

        batch, signature = plan_key
        lead = () if batch is None else (batch,)
        feed_shapes = {name: lead + dims for name, dims in signature} or None
        plan = npu_compiler.compile_model(self.path, self.sku, precision=self.precision,
                                          batch=batch, feed_shapes=feed_shapes)
        with self._lock:
            self._share_constants(plan)
            self._plans[plan_key] = plan
            unpinned = [b for b in self._plans if b not in self._pinned]
            while len(self._plans) > self.CACHED_PLANS + len(self._pinned) and unpinned:
                evicted = unpinned.pop(0)
                del self._plans[evicted]
                for instance in range(self.instances):
                    engine = self._engines.pop((instance, evicted), None)
                    if hasattr(engine, "close"):
                        self._retired[instance].append(engine)
        return plan

    def unload(self) -> None:
        """The plans, engines and devices dropped at once, not when the garbage collector
        next breaks the cycles an unloaded model is part of (in a server that loads and
        unloads, a gigabyte of AlexNet's stayed per load until it ran)."""
        with self._lock:
            engines = list(self._engines.values()) + [e for r in self._retired.values() for e in r]
            self._plans.clear()
            self._engines.clear()
            self._retired.clear()
            self._devices.clear()
            self._constants.clear()
            self._pinned.clear()
        for engine in engines:
            if hasattr(engine, "close"):
                engine.close()

    def _share_constants(self, plan) -> None:
        """The plan's constants, replaced by an equal one of a plan compiled before: plans of
        one model at other batch sizes hold the same weights, which the host keeps once."""
        for name, array in plan.constants.items():
            known = self._constants.get(name)
            if known is not None and known.shape == array.shape and known.dtype == array.dtype \
                    and np.array_equal(known, array):
                plan.constants[name] = known
            else:
                self._constants[name] = array

    @property
    def compiled_batch_sizes(self) -> list:
        return list(dict.fromkeys(batch for batch, _ in self._plans))

    @property
    def compiled_signatures(self) -> list:
        """(batch, ((input, dims past the batch), ...)) of each cached plan."""
        return list(self._plans)


class DeviceMemoryFull(ServingError):
    """An execution the simulated device has no memory for (400: never at these shapes;
    503: not now)."""


def _padded(array: np.ndarray, size: int) -> np.ndarray:
    padded = np.zeros((size,) + array.shape[1:], array.dtype)
    padded[: len(array)] = array
    return padded


def _onnx_tensor_specs(path: Path, batching: bool) -> tuple[list[TensorSpec], list[TensorSpec]]:
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as exc:  # onnx raises DecodeError, OSError, ... for a bad file
        raise RepositoryError(f"{path}: not a readable ONNX model ({exc})") from None
    constants = {init.name for init in graph.initializer}
    inputs = [_spec(path, value, batching) for value in graph.input if value.name not in constants]
    outputs = [_spec(path, value, batching) for value in graph.output]
    return inputs, outputs


def _spec(path: Path, value, batching: bool) -> TensorSpec:
    import onnx

    tensor_type = value.type.tensor_type
    if tensor_type.elem_type == onnx.TensorProto.STRING:
        datatype = "BYTES"
    else:
        try:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
            datatype = datatypes.from_numpy(dtype)
        except (KeyError, ValueError):
            raise RepositoryError(
                f"{path}: tensor {value.name!r} has ONNX element type {tensor_type.elem_type}, "
                "which KServe v2 cannot carry"
            ) from None
    shape = [dim.dim_value if dim.dim_value > 0 else -1 for dim in tensor_type.shape.dim]
    if batching:
        if not shape:
            raise RepositoryError(
                f"{path}: tensor {value.name!r} is a scalar, but max_batch_size > 0 needs a batch "
                "dimension first on every input and output"
            )
        shape[0] = -1
    return TensorSpec(value.name, datatype, tuple(shape))
