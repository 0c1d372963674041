"""The correctness reference: seeded random inputs and onnxruntime's outputs for them.

onnxruntime runs here, in the harness's own process, and never on the stack's execution path:
it is the answer the stack's outputs are checked against.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from stackci.errors import UsageError

# ONNX element types the generator can fill, by numpy dtype.
_ONNX_TO_NUMPY = {
    onnx.TensorProto.FLOAT: np.float32,
    onnx.TensorProto.DOUBLE: np.float64,
    onnx.TensorProto.FLOAT16: np.float16,
    onnx.TensorProto.INT64: np.int64,
    onnx.TensorProto.INT32: np.int32,
    onnx.TensorProto.INT8: np.int8,
    onnx.TensorProto.UINT8: np.uint8,
    onnx.TensorProto.BOOL: np.bool_,
}


def load_model(model_path: str | Path, *, load_weights: bool = True) -> onnx.ModelProto:
    """The model at `model_path`, or a UsageError naming the file."""
    path = Path(model_path)
    if not path.is_file():
        raise UsageError(f"model not found: {path}")
    try:
        return onnx.load(str(path), load_external_data=load_weights)
    except Exception as exc:  # protobuf raises several unrelated types for corrupt files
        raise UsageError(f"cannot read model {path}: not a valid ONNX file ({_one_line(exc)})")


def model_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """The inputs a caller feeds: graph inputs that are not initializers (IR < 4 lists both)."""
    initializers = {init.name for init in model.graph.initializer}
    return [value for value in model.graph.input if value.name not in initializers]


def input_shape(value: onnx.ValueInfoProto, batch: int = 1) -> tuple[int, ...]:
    """Concrete shape of an input: a symbolic leading dim becomes `batch`, any other 1."""
    dims = value.type.tensor_type.shape.dim
    return tuple(
        dim.dim_value if dim.HasField("dim_value") and dim.dim_value > 0
        else (batch if axis == 0 else 1)
        for axis, dim in enumerate(dims)
    )


def parse_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """`NAME=1x3x640x640` (the compiler's `--shape` spelling) as (name, dims)."""
    name, sep, dims = text.rpartition("=")
    try:
        shape = tuple(int(d) for d in dims.lower().split("x")) if sep and name else None
    except ValueError:
        shape = None
    if not shape or any(d < 0 for d in shape):
        raise UsageError(f"--shape {text!r}: expected NAME=DxDx... with whole numbers, "
                         "e.g. images=1x3x640x640")
    return name, shape


def given_shape(value: onnx.ValueInfoProto, shape: tuple[int, ...], where: str
                ) -> tuple[int, ...]:
    """`shape` for input `value`, checked against the model's fixed dimensions."""
    dims = value.type.tensor_type.shape.dim
    fixed = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims]
    if len(fixed) != len(shape) or any(f is not None and f != g for f, g in zip(fixed, shape)):
        declared = "x".join(str(f) if f is not None else "?" for f in fixed)
        raise UsageError(f"{where}: --shape {value.name}={'x'.join(map(str, shape))} does not "
                         f"fit the model's input {value.name!r} of shape {declared or 'scalar'}")
    return tuple(shape)


def random_inputs(model_path: str | Path, seed: int, *, batch: int = 1,
                  shapes: dict[str, tuple[int, ...]] | None = None) -> dict[str, np.ndarray]:
    """Seeded inputs for every model input: standard normal floats, small non-negative ints;
    `shapes` binds inputs whose dimensions are symbolic."""
    return random_inputs_for(load_model(model_path, load_weights=False), seed, batch=batch,
                             where=str(model_path), shapes=shapes)


def random_inputs_for(model: onnx.ModelProto, seed: int, *, batch: int = 1,
                      where: str = "model",
                      shapes: dict[str, tuple[int, ...]] | None = None) -> dict[str, np.ndarray]:
    """`random_inputs` for a model already in memory."""
    rng = np.random.default_rng(seed)
    feeds = {}
    shapes = dict(shapes or {})
    unknown = sorted(set(shapes) - {value.name for value in model_inputs(model)})
    if unknown:
        raise UsageError(f"{where}: --shape names no input of the model: {', '.join(unknown)}")
    for value in model_inputs(model):
        elem_type = value.type.tensor_type.elem_type
        dtype = _ONNX_TO_NUMPY.get(elem_type)
        if dtype is None:
            raise UsageError(
                f"{where}: input {value.name!r} has element type "
                f"{onnx.TensorProto.DataType.Name(elem_type)}, which random_inputs cannot generate"
            )
        shape = (given_shape(value, shapes[value.name], where) if value.name in shapes
                 else input_shape(value, batch))
        if np.issubdtype(dtype, np.floating):
            values = rng.standard_normal(shape, dtype=np.float32)
            feeds[value.name] = values.astype(dtype, copy=False)
        elif dtype is np.bool_:
            feeds[value.name] = rng.random(shape) < 0.5
        else:
            feeds[value.name] = rng.integers(0, 10, size=shape).astype(dtype)
    return feeds


def declared_inputs(model_path: str | Path, specs, seed: int) -> dict[str, np.ndarray]:
    """Seeded inputs as the suite declares them (`specs`: (name, shape, low, high), see
    workloads/declared.py): floats uniform in [low, high], integers in [low, high] inclusive.
    Inputs the suite does not declare get `random_inputs`' values at their fixed shape."""
    model = load_model(model_path, load_weights=False)
    where = str(model_path)
    by_name = {name: (shape, low, high) for name, shape, low, high in specs}
    feeds = random_inputs_for(model, seed, where=where,
                              shapes={name: shape for name, (shape, _, _) in by_name.items()})
    rng = np.random.default_rng([seed, 1])  # its own stream: a declared input moves no other
    for name, (shape, low, high) in by_name.items():
        dtype = feeds[name].dtype
        if np.issubdtype(dtype, np.floating):
            values = rng.uniform(low, high, size=shape) if low < high else np.full(shape, low)
        elif dtype == np.bool_:
            values = rng.random(shape) < 0.5 if low < high else np.full(shape, bool(low))
        else:
            info = np.iinfo(dtype)
            if low < info.min or high > info.max or low != int(low) or high != int(high):
                raise UsageError(f"{where}: input {name!r} is {dtype}, the declared range "
                                 f"[{low:g}, {high:g}] is not whole numbers within its limits")
            values = rng.integers(int(low), int(high), size=shape, endpoint=True)
        feeds[name] = np.asarray(values).astype(dtype)
    return feeds


def reference_outputs(model_path: str | Path,
                      inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """onnxruntime's outputs (CPU) for `inputs`, by output name."""
    path = Path(model_path)
    if not path.is_file():
        raise UsageError(f"model not found: {path}")
    try:
        session = ort_session(path)
    except Exception as exc:
        raise UsageError(f"cannot load model {path} in onnxruntime: {_one_line(exc)}")
    expected = {value.name for value in session.get_inputs()}
    check_input_names(inputs, expected, f"inputs for {path}")
    try:
        arrays = session.run(None, dict(inputs))
    except Exception as exc:
        raise UsageError(f"onnxruntime failed on {path}: {_one_line(exc)}")
    return {value.name: array for value, array in zip(session.get_outputs(), arrays)}


def ort_session(model: str | Path | bytes, *, threads: int | None = None):
    """An onnxruntime CPU session for a model file or serialized model: the one place sessions
    are made. `threads` fixes the intra- and inter-op thread counts (timings that compare
    across machines and loads use 1); None leaves onnxruntime's defaults."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initializers are noise here
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = threads
    source = model if isinstance(model, bytes) else str(model)
    return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def check_input_names(inputs, expected: set[str], what: str) -> None:
    """A UsageError naming the first missing or extra input, if the names differ."""
    known = ", ".join(sorted(expected))
    missing = sorted(expected - set(inputs))
    if missing:
        raise UsageError(
            f"{what}: missing input {missing[0]!r} (the model's inputs: {known})"
        )
    extra = sorted(set(inputs) - expected)
    if extra:
        raise UsageError(
            f"{what}: unknown input {extra[0]!r} (the model's inputs: {known})"
        )


def check_input_dtypes(feeds: dict, inputs, what: str) -> None:
    """A UsageError naming the first input whose dtype is not the model's: inputs are checked,
    never cast (an int64 array for a float input is the user's mistake, not a number to
    round). String data is only ever right for a string input."""
    for value in inputs:
        if value.name not in feeds:
            continue
        elem_type = value.type.tensor_type.elem_type
        given = np.asarray(feeds[value.name]).dtype
        if elem_type == onnx.TensorProto.STRING:
            if given.kind not in "USO":
                raise UsageError(f"{what}: input {value.name!r}: given dtype {given}, "
                                 "expected string data")
            continue
        try:
            expected = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
        except (KeyError, TypeError, ValueError):
            continue  # an element type numpy has no dtype for: the stack will say
        if given.kind in "USOV":
            raise UsageError(f"{what}: input {value.name!r}: given {given} (not numbers), "
                             f"expected dtype {expected}")
        if given != expected:
            raise UsageError(f"{what}: input {value.name!r}: given dtype {given}, expected "
                             f"{expected} (inputs are checked, not cast)")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + ("..." if len(text) > 300 else "")
