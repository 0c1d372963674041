"""The seam between the server and what runs a model: `ModelBackend`.

A backend is a small fixed interface (the tensors it takes and gives, a slow `load`, and `infer`);
`CompilerBackend` is the real one, compiling the ONNX model with `npu_compiler` and running the
plan on the simulated NPU.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import datatypes
from .errors import RepositoryError


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

    `load` does the slow work (compiling) and runs off the event loop before the model is ready;
    `infer` is called from one thread at a time, with inputs already checked against `inputs`.
    """

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    platform = "npu"

    def load(self) -> None:
        """Prepare to serve; raising marks the model as failed with the exception's message."""

    @abstractmethod
    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model once; returns every output by name."""


class CompilerBackend(ModelBackend):
    """An ONNX model compiled by `npu_compiler` for one SKU and run by its `Engine`.

    Compiled plans have fixed shapes, so a model whose batch dimension varies (a batching model,
    or an ONNX input with a symbolic first dimension) is compiled once per batch size, lazily,
    and the engines are kept.
    """

    platform = "npu_onnx"

    def __init__(self, path: Path, sku, *, precision: str = "fp32", batching: bool = False):
        self.path = Path(path)
        self.sku = sku
        self.precision = precision
        self.inputs, self.outputs = _onnx_tensor_specs(self.path, batching)
        self._variable_batch = batching or any(spec.shape[:1] == (-1,) for spec in self.inputs)
        self._engines: dict[int | None, object] = {}
        self.last_profile: dict | None = None

    def load(self) -> None:
        self._engine(1 if self._variable_batch else None)

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch = len(next(iter(inputs.values()))) if self._variable_batch else None
        outputs, self.last_profile = self._engine(batch).run(inputs)
        return {
            spec.name: np.asarray(outputs[spec.name], dtype=datatypes.to_numpy(spec.datatype))
            for spec in self.outputs
        }

    def _engine(self, batch: int | None):
        if batch not in self._engines:
            import npu_compiler  # here, so that the protocol layer loads without the compiler

            plan = npu_compiler.compile_model(
                self.path, self.sku, precision=self.precision, batch=batch
            )
            self._engines[batch] = npu_compiler.Engine(plan)
        return self._engines[batch]


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
