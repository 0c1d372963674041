"""The tensors of a model as its clients see them: the backend's, except where the model's
configuration gives an input or output `dims` with a `reshape` (Triton's reshape): clients send
and receive `dims` (after the batch dimension of a batching model), the model takes and gives
`reshape.shape`. Triton's own densenet_onnx example declares its [1, 3, 224, 224] input as
dims [3, 224, 224]."""

from __future__ import annotations

import math

import numpy as np

from .backend import TensorSpec

# tensor name -> (dims the client uses, shape the model uses), batch dimension excluded
Reshapes = dict[str, tuple[tuple[int, ...], tuple[int, ...]]]


def check_reshape(where: str, dims: tuple[int, ...], shape: tuple[int, ...]) -> str | None:
    """Why `dims` cannot be reshaped to `shape` (None when it can): the same element count,
    and at most one variable (-1) dimension in the shape, only where dims has one too."""
    if sum(d == -1 for d in shape) > 1 or any(d < -1 for d in (*dims, *shape)):
        return f"{where}: reshape.shape {list(shape)}: expected sizes, at most one -1"
    if -1 in shape and -1 not in dims:
        return f"{where}: reshape.shape {list(shape)} has a variable dimension, dims {list(dims)} none"
    if -1 not in dims and -1 not in shape and math.prod(dims) != math.prod(shape):
        return (f"{where}: dims {list(dims)} hold {math.prod(dims)} elements, reshape.shape "
                f"{list(shape)} {math.prod(shape)}")
    return None


def client_specs(specs: list[TensorSpec], reshapes: Reshapes, batched: bool) -> list[TensorSpec]:
    """`specs` (the backend's) with the configured dims where a tensor is reshaped."""
    lead = (-1,) if batched else ()
    return [TensorSpec(s.name, s.datatype, lead + reshapes[s.name][0]) if s.name in reshapes
            else s for s in specs]


def model_mismatch(specs: list[TensorSpec], reshapes: Reshapes, batched: bool,
                   what: str) -> str | None:
    """Why a reshape does not fit the model's own tensor (None when every one fits)."""
    by_name = {spec.name: spec for spec in specs}
    for name, (_, shape) in reshapes.items():
        spec = by_name.get(name)
        if spec is None:
            return f"{what} {name!r}: reshape of a tensor the model does not have " \
                   f"(it has {', '.join(by_name)})"
        model = (-1,) + shape if batched else shape
        if len(model) != len(spec.shape) or any(
                want not in (-1, got) and got != -1 for want, got in zip(spec.shape, model)):
            return (f"{what} {name!r}: reshape.shape {list(shape)} does not fit the model's "
                    f"shape {list(spec.shape)}")
    return None


def config_mismatch(specs: list[TensorSpec], entries, batched: bool, what: str,
                    datatype_of) -> str | None:
    """Why the configuration's inputs (or outputs) do not describe the model's own (None when
    they do): a name the model lacks, another data_type, other dims (past the batch dimension;
    -1 takes any size). Triton refuses such a configuration at load; here it loaded and `GET
    .../config` told clients of tensors the model does not take. `datatype_of(data_type)` is
    the KServe name (None for TYPE_INVALID, not given)."""
    by_name = {spec.name: spec for spec in specs}
    for entry in entries:
        spec = by_name.get(entry.name)
        if spec is None:
            return (f"{what} {entry.name!r}: the model has no such {what} (it has "
                    f"{', '.join(by_name)})")
        configured = datatype_of(entry.data_type)
        if configured is not None and configured != spec.datatype:
            return (f"{what} {entry.name!r}: data_type {configured}, but the model's is "
                    f"{spec.datatype}")
        if entry.HasField("reshape"):
            continue  # its dims are the client's, checked against the reshape
        own = spec.shape[1:] if batched else spec.shape
        dims = tuple(entry.dims)
        if len(dims) != len(own) or any(d != m and -1 not in (d, m) for d, m in zip(dims, own)):
            return (f"{what} {entry.name!r}: dims {list(dims)}, but the model's are {list(own)}"
                    f"{' past the batch dimension' if batched else ''} (-1: any size)")
    return None


def reshaped(arrays: dict[str, np.ndarray], reshapes: Reshapes, batched: bool,
             to_model: bool) -> dict[str, np.ndarray]:
    """`arrays` in the model's shapes (`to_model`) or back in the client's."""
    if not reshapes:
        return arrays
    out = dict(arrays)
    for name, (dims, shape) in reshapes.items():
        if name in out:
            array = out[name]
            target = shape if to_model else dims
            out[name] = array.reshape(((len(array),) if batched else ()) + target)
    return out
