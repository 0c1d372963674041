"""ONNX model -> IR: load (clear errors for bad files), infer shapes, check every operator."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import onnx
from onnx import external_data_helper, helper, numpy_helper, version_converter

import npu_opslib
from npu_compiler.errors import CompileError, InputError, ModelLoadError, UnsupportedOperator
from npu_compiler.ir import CONTROL_FLOW, Graph, Node, Value

# Operators whose semantics changed with the opset; the importer states the old ones with
# attributes opslib's kernels understand.
COERCED_SOFTMAX_BEFORE = 13
COERCED_2D_OPS = ("Softmax", "LogSoftmax", "Hardmax")  # flattened to 2-D before opset 13
RESIZE_ROI_SINCE = 11  # Resize-10 takes (X, scales); later ones (X, roi, scales, sizes)


def load_model(model) -> tuple[onnx.ModelProto, str]:
    """The ModelProto and a name for messages."""
    if isinstance(model, onnx.ModelProto):
        _negative_dims_unknown(model.graph)
        return _converted(model, model.graph.name or "<model>"), model.graph.name or "<model>"
    path = Path(model)
    if not path.is_file():
        raise ModelLoadError(f"cannot read model {path}: no such file")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises several types for corrupt bytes
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelLoadError(f"cannot load model {path}: not a valid ONNX file ({first_line})")
    if not proto.graph.node:
        raise ModelLoadError(f"cannot load model {path}: the graph has no nodes")
    _load_external_data(proto, path)
    _negative_dims_unknown(proto.graph)
    return _converted(proto, str(path)), str(path)


def _negative_dims_unknown(graph: onnx.GraphProto) -> None:
    """Dimensions declared -1 (what Paddle and older exporters write for "dynamic", though
    ONNX has no negative sizes) become unnamed symbolic ones, bound from the feeds like any."""
    for value in [*graph.input, *graph.output, *graph.value_info]:
        if value.type.HasField("tensor_type") and value.type.tensor_type.HasField("shape"):
            for dim in value.type.tensor_type.shape.dim:
                if dim.HasField("dim_value") and dim.dim_value < 0:
                    dim.Clear()


def external_tensors(graph: onnx.GraphProto):
    """Every tensor of a graph and its subgraphs that keeps its data in a side file."""
    tensors = list(graph.initializer)
    for node in graph.node:
        for attr in node.attribute:
            tensors += [attr.t] if attr.type == onnx.AttributeProto.TENSOR else []
            tensors += list(attr.tensors)
            for sub in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else []) + \
                    list(attr.graphs):
                tensors += external_tensors(sub)
    return [t for t in tensors if t.data_location == onnx.TensorProto.EXTERNAL]


def _load_external_data(proto: onnx.ModelProto, path: Path) -> None:
    """Side-file tensors, read only from inside the model's folder: a location that escapes
    it (`../`, an absolute path, a symlink out) is refused before anything is read."""
    tensors = external_tensors(proto.graph)
    if not tensors:
        return
    folder = path.resolve().parent
    for tensor in tensors:
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = (folder / location).resolve()
        if not location or Path(location).is_absolute() or not target.is_relative_to(folder):
            raise ModelLoadError(f"cannot load model {path}: tensor {tensor.name!r} keeps its "
                                 f"data at {location!r}, outside the model's folder; refused")
        if not target.is_file():
            raise ModelLoadError(f"cannot load model {path}: tensor {tensor.name!r} keeps its "
                                 f"data in {location!r}, which does not exist")
    try:
        external_data_helper.load_external_data_for_model(proto, str(folder))
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelLoadError(f"cannot load model {path}: external data: {first_line}")


OLDEST_OPSET = 7  # older models are converted by onnx's version converter
CONVERTED_TO = 13


def _converted(proto: onnx.ModelProto, source: str) -> onnx.ModelProto:
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None or opset >= OLDEST_OPSET:
        return proto
    try:
        return version_converter.convert_version(proto, CONVERTED_TO)
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelLoadError(f"cannot load model {source}: opset {opset} is older than "
                             f"{OLDEST_OPSET} and onnx's version converter failed "
                             f"({first_line[:200]})")


def _dims(type_proto) -> tuple[int, ...] | None:
    tensor = type_proto.tensor_type
    if not tensor.HasField("shape") or any(
            not d.HasField("dim_value") for d in tensor.shape.dim):
        return None
    return tuple(int(d.dim_value) for d in tensor.shape.dim)


def _dtype(type_proto) -> str | None:
    elem = type_proto.tensor_type.elem_type
    if not elem:
        return None
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem)).name


def _input_shape(value: onnx.ValueInfoProto, batch: int | None,
                 bound: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """A feed's concrete shape. `bound` (from `--shape` or the feeds) gives every symbolic
    dimension and must agree with the fixed ones; without it the first axis is `batch` when
    given (1 when symbolic), and any other symbolic dim is an error naming it."""
    dims = list(value.type.tensor_type.shape.dim)
    if bound is not None:
        if len(bound) != len(dims) and value.type.tensor_type.HasField("shape"):
            raise InputError(f"input {value.name!r} has {len(dims)} dimensions, the shape "
                             f"given has {len(bound)} ({_shape_text(bound)})")
        for i, dim in enumerate(dims):
            fixed = dim.dim_value if dim.HasField("dim_value") else None
            if fixed is not None and fixed != bound[i] and not (i == 0 and batch is not None):
                raise InputError(f"input {value.name!r} has shape {list(bound)}, the model "
                                 f"expects {_declared(value)}")
        return tuple(int(d) for d in bound)
    shape = []
    for i, dim in enumerate(dims):
        if i == 0 and (batch is not None or not dim.HasField("dim_value")):
            shape.append(batch or 1)
        elif dim.HasField("dim_value"):
            shape.append(int(dim.dim_value))
        else:
            raise InputError(f"input {value.name!r} has symbolic dimension "
                             f"{dim.dim_param or '?'} at axis {i}; give its shape with "
                             f"--shape {value.name}={_shape_text(_example(value))} or feed it "
                             "(--inputs)")
    return tuple(shape)


def _bound(value: onnx.ValueInfoProto, shapes: dict, feed_shapes: dict | None):
    if value.name in shapes:
        return tuple(shapes[value.name])
    symbolic = any(not d.HasField("dim_value") for d in value.type.tensor_type.shape.dim)
    if feed_shapes and value.name in feed_shapes and symbolic:
        return tuple(feed_shapes[value.name])
    return None


def _declared(value: onnx.ValueInfoProto) -> list:
    """The model's declared shape: numbers, and names for the symbolic dimensions."""
    return [int(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?")
            for d in value.type.tensor_type.shape.dim]


def _example(value: onnx.ValueInfoProto) -> list[int]:
    return [int(d.dim_value) if d.HasField("dim_value") else 1
            for d in value.type.tensor_type.shape.dim]


def _shape_text(shape) -> str:
    return "x".join(str(d) for d in shape)


def symbolic_inputs(proto: onnx.ModelProto) -> dict[str, list]:
    """The declared shapes of the graph inputs that have a symbolic dimension."""
    weights = {init.name for init in proto.graph.initializer}
    return {v.name: _declared(v) for v in proto.graph.input if v.name not in weights and any(
        not d.HasField("dim_value") for d in v.type.tensor_type.shape.dim)}


SUBGRAPH = "onnx_graph"  # attrs[name] = {SUBGRAPH: base64 of the GraphProto}
DECLARED_INPUTS = "declared_inputs"  # a control-flow node's own inputs; outer-scope ones follow
SUBGRAPH_OPSET = "subgraph_opset"  # the model's opset, which its subgraphs are compiled at


def encode_subgraph(graph: onnx.GraphProto) -> dict:
    return {SUBGRAPH: base64.b64encode(graph.SerializeToString()).decode()}


def decode_subgraph(value: dict) -> onnx.GraphProto:
    graph = onnx.GraphProto()
    graph.ParseFromString(base64.b64decode(value[SUBGRAPH]))
    return graph


def is_subgraph(value) -> bool:
    return isinstance(value, dict) and SUBGRAPH in value


def outer_references(graph: onnx.GraphProto) -> list[str]:
    """The values a subgraph (and the subgraphs nested in it) reads from enclosing scopes,
    in order of first use."""
    defined = {v.name for v in graph.input} | {i.name for i in graph.initializer}
    defined |= {o for node in graph.node for o in node.output}
    seen: dict[str, None] = {}
    for node in graph.node:
        used = list(node.input)
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                used += outer_references(attr.g)
        for name in used:
            if name and name not in defined:
                seen.setdefault(name)
    seen.update((o.name, None) for o in graph.output
                if o.name not in defined and o.name not in seen)
    return list(seen)


def _attribute(attr: onnx.AttributeProto):
    if attr.type == onnx.AttributeProto.GRAPH:
        return encode_subgraph(attr.g)
    if attr.type == onnx.AttributeProto.GRAPHS:
        return None
    value = helper.get_attribute_value(attr)
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [v.decode() if isinstance(v, bytes) else v for v in value]
    return value


DEFAULT_DOMAINS = ("", "ai.onnx")


def _check_operators(proto: onnx.ModelProto) -> None:
    """Every operator has a kernel: a built-in one, or for an operator of a custom domain
    one registered from outside opslib (entry point group `npu_opslib.kernels`)."""
    _check_nodes(proto.graph.node)


def _check_nodes(nodes) -> None:
    for index, node in enumerate(nodes):
        name = node.name or f"{node.op_type}_{index}"
        if node.op_type in CONTROL_FLOW and node.domain in DEFAULT_DOMAINS:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    _check_nodes(attr.g.node)
            continue
        op_type = npu_opslib.resolve_op_type(node.domain, node.op_type)
        if not npu_opslib.is_supported(op_type):
            raise UnsupportedOperator(op_type, name)


def import_model(model, *, batch: int | None = None,
                 shapes: dict[str, tuple[int, ...]] | None = None,
                 feed_shapes: dict[str, tuple[int, ...]] | None = None) -> Graph:
    """The IR of `model`, specialized to the input `shapes` given (name -> dims; the others
    as declared); `feed_shapes` (the shapes of the arrays to be fed) bind the inputs that
    have a symbolic dimension only: a fixed input keeps its shape, and a feed that does not
    match it is refused by the engine. Shapes beyond the inputs' come from shape inference."""
    proto, source = load_model(model)
    shapes = dict(shapes or {})
    unknown = sorted(set(shapes) - {v.name for v in proto.graph.input})
    if unknown:
        raise InputError(f"--shape names {', '.join(map(repr, unknown))}, not an input of "
                         f"{source} (inputs: {', '.join(v.name for v in proto.graph.input)})")
    _check_operators(proto)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 13)
    name = proto.graph.name or Path(source).stem
    graph = Graph(name=name, nodes=[], inputs=[], outputs=[o.name for o in proto.graph.output],
                  values={}, constants={}, opset=opset, source=source)
    for init in proto.graph.initializer:
        graph.set_constant(init.name, numpy_helper.to_array(init))
    # Initializers listed as graph inputs (IR < 4 style) are weights, not feeds.
    for value in proto.graph.input:
        if value.name not in graph.constants:
            graph.inputs.append(value.name)
            graph.values[value.name] = Value(value.name, _input_shape(value, batch, _bound(value, shapes, feed_shapes)),
                                             _dtype(value.type))
    for info in proto.graph.output:
        graph.values[info.name] = Value(info.name, None, _dtype(info.type))
    for index, node in enumerate(proto.graph.node):
        graph.nodes.append(convert_node(node, index, opset))
    overridden = {v.name: v.type.tensor_type.shape.dim[0].dim_value for v in proto.graph.input
                  if v.name in graph.inputs and batch is not None and v.name not in shapes and
                  v.type.tensor_type.shape.dim and
                  v.type.tensor_type.shape.dim[0].HasField("dim_value") and
                  v.type.tensor_type.shape.dim[0].dim_value != batch}
    if overridden:
        _reshapes_follow_the_batch(graph, overridden)
    return graph


def _reshapes_follow_the_batch(graph: Graph, declared: dict[str, int]) -> None:
    """`batch` given for inputs declared with a fixed first dimension (`declared`: input ->
    that size, 1 in exported CNNs): a Reshape of a value computed from them to a constant
    shape starting with that size (AlexNet's and ResNet-50's [1, 9216] / [1, 2048] before the
    classifier) keeps the batch instead, its first entry becoming 0 (ONNX: copy the input's
    dimension), so the model compiles at any batch. A shape with another first entry, or a
    Reshape of weights alone, is left as the model wrote it."""
    sizes = set(declared.values())
    batched = set(declared)
    for node in graph.nodes:
        if not any(name in batched for name in node.inputs if name):
            continue
        batched.update(name for name in node.outputs if name)
        if node.op_type != "Reshape" or len(node.inputs) < 2 or node.attrs.get("allowzero"):
            continue
        target = graph.constants.get(node.inputs[1])
        if target is None or target.ndim != 1 or len(target) < 2 or int(target[0]) not in sizes:
            continue
        name = f"{node.inputs[1]}/batch_kept"
        kept = np.array(target, copy=True)
        kept[0] = 0
        graph.set_constant(name, kept)
        node.inputs = [node.inputs[0], name] + list(node.inputs[2:])


def convert_node(node: onnx.NodeProto, index: int, opset: int) -> Node:
    attrs = {a.name: _attribute(a) for a in node.attribute}
    inputs, outputs = list(node.input), list(node.output)
    if node.op_type in COERCED_2D_OPS and opset < COERCED_SOFTMAX_BEFORE:
        attrs.setdefault("axis", 1)
        attrs["coerce_2d"] = 1
    elif node.op_type == "Split" and "split" not in attrs and (
            len(inputs) < 2 or not inputs[1]):
        # Without sizes a Split makes one equal part per output.
        attrs.setdefault("num_outputs", len(outputs))
    elif node.op_type == "Resize" and opset < RESIZE_ROI_SINCE:
        inputs = [inputs[0], "", inputs[1]]
        attrs.setdefault("coordinate_transformation_mode", "asymmetric")
        attrs.setdefault("nearest_mode", "floor")
    elif node.op_type in CONTROL_FLOW and node.domain in DEFAULT_DOMAINS:
        # What the subgraphs read from outside is an input too: dead code, liveness and the
        # engine see it; onnx sees the declared inputs only.
        attrs[DECLARED_INPUTS] = len(inputs)
        attrs[SUBGRAPH_OPSET] = opset
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                inputs += [x for x in outer_references(attr.g) if x not in inputs]
    elif node.op_type == "MaxPool" and len(outputs) > 1 and outputs[1]:
        attrs["with_indices"] = 1  # the argmax is only computed when someone reads it
    name = node.name or f"{node.op_type}_{index}"
    # An omitted output before a used one still has a position: name it, so every output
    # keeps its place (kernels return their outputs in order).
    last = max((i for i, o in enumerate(outputs) if o), default=-1)
    outputs = [o or f"{name}/unused_output_{i}" if i < last else o
               for i, o in enumerate(outputs)]
    domain = "" if node.domain in DEFAULT_DOMAINS else node.domain
    # A custom domain's op type is the kernel's registry key (`com.microsoft.Gelu`): passes
    # that match ONNX's `Gelu` by name leave it alone, kernels are found by it.
    return Node(name=name, op_type=npu_opslib.resolve_op_type(domain, node.op_type),
                inputs=inputs, outputs=outputs, attrs=attrs, domain=domain)
