"""The work a model asks of the device, counted from its ONNX graph: multiply-accumulates of
the array's ops (convolutions, matrix products, recurrences) plus one operation per output
element of every other op (the vector unit's share). The planner's prior for a job never run
anywhere (nightly/planner.py): the cost model's cycles need an environment, which planning
comes before, while the graph is at hand; a job's wall time on the functional device grows
with this count.

Shapes come from onnx's own shape inference on the workload's input shapes (its declared
inputs, else the batch for a symbolic leading dimension and 1 for others, as its inputs are
made); an op whose shapes stay unknown counts nothing. Large initializers lose their bytes
before inference (their dims are what it reads), so a 400 MB model is counted in about a
second.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import onnx
from onnx import shape_inference

from stackci.errors import UsageError
from stackci.workloads.npz import atomic_write
from stackci.workloads.prepare import prepare_model, prepared_paths
from stackci.workloads.reference import input_shape, load_model, model_inputs
from stackci.workloads.sources import source_path
from stackci.workloads.suite import Workload

# Ops whose work is multiply-accumulates: name -> index of the input holding the weights.
_CONVOLUTIONS = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3, "NhwcConv": 1,
                 "FusedConv": 1}
_PRODUCTS = {"MatMul": 0, "MatMulInteger": 0, "QLinearMatMul": 0, "FusedMatMul": 0,
             "Gemm": 0, "MatMulNBits": 0}
_RECURRENT = {"LSTM", "GRU", "RNN", "DynamicQuantizeLSTM"}
_SMALL = 4096  # initializers up to this many elements keep their values (shape constants)
CACHE_FILE = "work.json"


def graph_work(model: onnx.ModelProto, shapes: dict[str, tuple[int, ...]]) -> float | None:
    """Operations of one inference of `model` with inputs of `shapes`; None when no op's
    shapes could be inferred."""
    for value in model_inputs(model):
        dims = value.type.tensor_type.shape.dim
        for dim, size in zip(dims, shapes.get(value.name, ())):
            dim.Clear()
            dim.dim_value = size
    for tensor in model.graph.initializer:
        if math.prod(tensor.dims) > _SMALL:
            tensor.ClearField("raw_data")
            for field in ("float_data", "int32_data", "int64_data", "double_data"):
                tensor.ClearField(field)
    try:
        inferred = shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # inference refuses some valid models; the planner then falls back
        return None
    known = _shapes(inferred)
    total, counted = 0.0, False
    for node in inferred.graph.node:
        work = _node_work(node, known)
        if work is not None:
            total, counted = total + work, True
    return total if counted else None


def _shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    shapes = {}
    values = [*model.graph.input, *model.graph.value_info, *model.graph.output]
    for value in values:
        tensor = value.type.tensor_type
        if value.type.HasField("tensor_type") and tensor.HasField("shape") and \
                all(d.HasField("dim_value") for d in tensor.shape.dim):
            dims = tensor.shape.dim
            shapes[value.name] = tuple(d.dim_value for d in dims)
    for tensor in model.graph.initializer:
        shapes[tensor.name] = tuple(tensor.dims)
    return shapes


def _node_work(node: onnx.NodeProto, shapes: dict) -> float | None:
    out = shapes.get(node.output[0]) if node.output else None
    inputs = [shapes.get(name) if name else None for name in node.input]
    if node.op_type in _CONVOLUTIONS:
        weight = _at(inputs, _CONVOLUTIONS[node.op_type])
        return None if out is None or weight is None else \
            math.prod(out) * math.prod(weight[1:])
    if node.op_type == "ConvTranspose":  # every input pixel scatters into a kernel window
        x, weight = _at(inputs, 0), _at(inputs, 1)
        return None if x is None or weight is None else math.prod(x) * math.prod(weight[1:])
    if node.op_type in _PRODUCTS:
        a = _at(inputs, _PRODUCTS[node.op_type])
        if out is None or a is None or not a:
            return None
        inner = a[0] if node.op_type == "Gemm" and _attr(node, "transA") else a[-1]
        return math.prod(out) * inner
    if node.op_type in _RECURRENT:  # each step multiplies [x, h] by every gate's weights
        x, w, r = _at(inputs, 0), _at(inputs, 1), _at(inputs, 2)
        if x is None or w is None or r is None or len(x) < 2:
            return None
        return x[0] * x[1] * w[0] * w[1] * (w[2] + r[2])
    return None if out is None else float(math.prod(out))


def _at(inputs: list, index: int):
    return inputs[index] if index < len(inputs) else None


def _attr(node: onnx.NodeProto, name: str) -> int:
    return next((a.i for a in node.attribute if a.name == name), 0)


def input_shapes(model: onnx.ModelProto, workload: Workload) -> dict[str, tuple[int, ...]]:
    """The shapes the workload's inputs are made with (workloads/prepare.py)."""
    declared = {name: tuple(shape) for name, shape, _, _ in workload.inputs}
    return {value.name: declared.get(value.name) or input_shape(value, workload.batch)
            for value in model_inputs(model)}


def _graph_file(ws, workload: Workload, prepared: Path) -> Path | None:
    """A file holding the workload's graph without fetching anything: its prepared model
    (`prepared`), else its source (the same graph: preparing only changes weights), else for
    a built-in model the prepared one made now (the night needs it anyway). None for a real
    model whose wheel is not in the cache yet."""
    if prepared.exists():
        return prepared
    kind = workload.source.partition(":")[0]
    if kind == "builtin":
        return prepare_model(ws, workload).model_path
    if kind == "pypi":
        return None
    return source_path(workload)


def workload_work(ws, workload: Workload) -> float | None:
    """`graph_work` of the workload's model at its inputs, cached in the workspace's cache by
    the prepared model's name (which carries its content hash and batch); None when the
    graph is not at hand or cannot be read."""
    try:
        prepared = prepared_paths(ws, workload).model_path
        name = prepared.name
        cache = _read_cache(ws.cache / CACHE_FILE)
        if name not in cache:
            path = _graph_file(ws, workload, prepared)
            if path is None:
                return None
            model = load_model(path, load_weights=False)
            cache[name] = graph_work(model, input_shapes(model, workload))
            payload = json.dumps(cache, sort_keys=True).encode()
            atomic_write(ws.cache / CACHE_FILE, lambda handle: handle.write(payload))
        return cache[name]
    except (UsageError, OSError):  # a missing or broken model fails its own job, not the plan
        return None


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
