"""Seeded random weights for the onnx package's light model-zoo topologies.

Those carry their large weights as `ConstantOfShape(0.02)`, so every output is a constant. Each
becomes a seeded random initializer scaled for the operator that consumes it, and the logits are
calibrated to a spread where a wrong answer shows.
"""

from __future__ import annotations

import zlib

import numpy as np
import onnx
from onnx import numpy_helper

from stackci.workloads import reference

# Bump when the weight randomizer changes: it is part of every prepared model's cache key.
RANDOMIZER_VERSION = "2"


def randomize_weights(model: onnx.ModelProto, seed: int) -> int:
    """Replace each float `ConstantOfShape` of a constant shape by a seeded random initializer.

    Returns how many were replaced. Each tensor's values depend only on (seed, tensor name), so
    they do not change when unrelated parts of the graph do.
    """
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    consumers = _consumers(graph)
    replaced, keep = 0, []
    for node in graph.node:
        shape = _constant_shape(node, initializers)
        if shape is None:
            keep.append(node)
            continue
        role, fan_in = _role(node.output[0], shape, consumers)
        tensor = numpy_helper.from_array(_random_weight(seed, node.output[0], shape, role, fan_in),
                                         node.output[0])
        graph.initializer.append(tensor)
        replaced += 1
    if replaced:
        del graph.node[:]
        graph.node.extend(keep)
        _drop_initializer_inputs(graph)  # first: they name the shape initializers dropped next
        _drop_unused_initializers(graph)
        # IR 3 requires every initializer to be a graph input; from IR 4 on they need not be.
        model.ir_version = max(model.ir_version, 4)
    return replaced


def _constant_shape(node: onnx.NodeProto, initializers: dict) -> tuple[int, ...] | None:
    """The shape a floating-point ConstantOfShape fills, if it is a constant; else None."""
    if node.op_type != "ConstantOfShape" or not node.input or node.input[0] not in initializers:
        return None
    value = next((a.t for a in node.attribute if a.name == "value"), None)
    if value is not None and value.data_type not in (onnx.TensorProto.FLOAT,):
        return None
    return tuple(int(d) for d in numpy_helper.to_array(initializers[node.input[0]]))

# Ops a weight passes through unchanged in meaning on its way to the op that uses it.
_PASS_THROUGH = {"Unsqueeze", "Reshape", "Squeeze", "Flatten", "Identity", "Cast", "Transpose"}


def _consumers(graph) -> dict[str, list[tuple[onnx.NodeProto, int]]]:
    found: dict[str, list] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            found.setdefault(name, []).append((node, index))
    return found


def _role(name: str, shape: tuple[int, ...], consumers) -> tuple[str, int]:
    """What the tensor is to the first op that uses it (following pass-through ops), and its
    fan-in where that matters."""
    for _ in range(8):
        uses = consumers.get(name, [])
        if not uses:
            return "other", 1
        node, index = uses[0]
        if node.op_type in _PASS_THROUGH and index == 0:
            name = node.output[0]
            continue
        return _role_at(node, index, shape)
    return "other", 1


def _role_at(node: onnx.NodeProto, index: int, shape: tuple[int, ...]) -> tuple[str, int]:
    op = node.op_type
    if op in ("Conv", "ConvTranspose"):
        return ("weight", int(np.prod(shape[1:]))) if index == 1 else ("bias", 1)
    if op == "Gemm":
        if index == 2:
            return "bias", 1
        flag = "transB" if index == 1 else "transA"
        trans = next((a.i for a in node.attribute if a.name == flag), 0)
        if index == 1 and trans:
            return "weight", int(np.prod(shape[1:]))  # (N, K...): Caffe2's FC layout
        return "weight", int(shape[0] if index == 1 else np.prod(shape[:-1]) or 1)
    if op == "MatMul":
        return "weight", int(shape[-2] if len(shape) >= 2 else shape[0])
    if op == "BatchNormalization":
        roles = {1: "scale", 2: "shift", 3: "mean", 4: "variance"}
        return roles.get(index, "other"), 1
    if op == "Mul":
        return "scale", 1  # the scale half of a BatchNormalization decomposed into Mul and Add
    if op in ("Add", "Sum", "Sub"):
        return "shift", 1
    return "other", 1


def _random_weight(seed: int, name: str, shape, role: str, fan_in: int) -> np.ndarray:
    # Sized like a real trained network's, so activations neither vanish nor explode and the
    # softmax at the end is not one-hot: He scaling for weights, BN near identity.
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    if role in ("scale", "variance"):
        values = rng.random(shape, dtype=np.float32)
        values += np.float32(0.5)
        return values
    values = rng.standard_normal(shape, dtype=np.float32)
    scale = {"weight": np.sqrt(2.0 / max(fan_in, 1)), "bias": 0.01, "shift": 0.1, "mean": 0.1,
             "other": 0.02}[role]
    values *= np.float32(scale)
    return values

# Standard deviation the logits before a softmax are scaled to: wide enough that the top class
# stands out, narrow enough that the probabilities are not one-hot (which would hide errors).
LOGIT_STD = 2.0

# Ops through which scaling a weight scales the output by the same factor.
_HOMOGENEOUS = {"Relu", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity",
                "Dropout", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"}


def calibrate_logits(model: onnx.ModelProto, seed: int, batch: int = 1) -> None:
    """Rescale the last layer before each Softmax so its logits have std LOGIT_STD.

    Random weights compound through deep networks (batch norms whose statistics do not match
    their inputs, residual sums), so the logits of a randomized ResNet are in the hundreds and
    its softmax is one-hot: every class but one is exactly 0 and a wrong answer looks right.
    """
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    initializers = {init.name: init for init in graph.initializer}
    targets = []
    for node in graph.node:
        if node.op_type == "Softmax":
            layer = _linear_producer(node.input[0], producers, initializers)
            if layer is not None:
                targets.append((node.input[0], layer))
    if not targets:
        return
    logits = _run_for_values(model, [name for name, _ in targets], seed, batch)
    for (name, layer), values in zip(targets, logits):
        spread = float(np.std(values))
        if np.isfinite(spread) and spread > 0:
            for operand in layer.input[1:3]:
                tensor = _source_initializer(operand, producers, initializers)
                if tensor is not None:
                    _scale_initializer(tensor, LOGIT_STD / spread)


def _linear_producer(name: str, producers: dict, initializers: dict):
    """The Conv/Gemm/MatMul with initializer weights that `name` scales linearly with, if any."""
    node = producers.get(name)
    while node is not None and node.op_type in _HOMOGENEOUS:
        node = producers.get(node.input[0])
    if node is not None and node.op_type in ("Conv", "Gemm", "MatMul") and len(node.input) > 1 \
            and _source_initializer(node.input[1], producers, initializers) is not None:
        return node
    return None


def _source_initializer(name: str, producers: dict, initializers: dict):
    """The initializer `name` is, or is a reshaping of (e.g. Reshape(weights) feeding a Gemm)."""
    while name not in initializers:
        node = producers.get(name)
        if node is None or node.op_type not in _PASS_THROUGH:
            return None
        name = node.input[0]
    return initializers[name]


def _run_for_values(model: onnx.ModelProto, names: list[str], seed: int, batch: int) -> list:
    """Values of the intermediate tensors `names` on the workload's seeded inputs (onnxruntime)."""
    extra = [onnx.helper.make_empty_tensor_value_info(name) for name in names]
    model.graph.output.extend(extra)
    try:
        serialized = model.SerializeToString()
    finally:
        del model.graph.output[len(model.graph.output) - len(extra):]
    session = reference.ort_session(serialized)
    del serialized
    feeds = reference.random_inputs_for(model, seed, batch=batch)
    return session.run(names, feeds)


def _scale_initializer(tensor: onnx.TensorProto, factor: float) -> None:
    values = numpy_helper.to_array(tensor).copy()
    values *= np.asarray(factor, dtype=values.dtype)
    tensor.CopyFrom(numpy_helper.from_array(values, tensor.name))


def _drop_unused_initializers(graph) -> None:
    used = {name for node in graph.node for name in node.input}
    used |= {output.name for output in graph.output}
    kept = [init for init in graph.initializer if init.name in used]
    if len(kept) != len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(kept)


def _drop_initializer_inputs(graph) -> None:
    initializers = {init.name for init in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    del graph.input[:]
    graph.input.extend(inputs)
