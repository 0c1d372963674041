"""Test models: the onnx package's light model-zoo topologies with seeded random weights in
place of their ConstantOfShape(0.02) ones, and small synthetic graphs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def light_model(name: str) -> onnx.ModelProto:
    return onnx.load(str(LIGHT / f"light_{name}.onnx"))


def _role(model: onnx.ModelProto, value: str) -> tuple[str, int, dict]:
    """(op type, input index, attributes) of the first node reading `value` (through Unsqueeze)."""
    for node in model.graph.node:
        if value in node.input:
            if node.op_type == "Unsqueeze":
                op, _, _ = _role(model, node.output[0])
                return "Unsqueeze>" + op, 1, {}
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            return node.op_type, list(node.input).index(value), attrs
    return "", 0, {}


def random_weight(shape, op: str, index: int, attrs: dict, rng) -> np.ndarray:
    if op in ("Conv", "Gemm") and index == 1:
        if op == "Conv":
            fan_in = int(np.prod(shape[1:]))
        else:
            fan_in = shape[1] if attrs.get("transB") else shape[0]
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
    if (op == "BatchNormalization" and index in (1, 4)) or op == "Unsqueeze>Mul":
        return rng.uniform(0.5, 1.5, shape)
    return rng.normal(0.0, 0.1, shape)


def randomize_weights(model: onnx.ModelProto, seed: int = 0) -> onnx.ModelProto:
    """Every ConstantOfShape with a constant shape becomes an initializer of seeded random
    values scaled for its role (He-normal weights, BN scales and variances in [0.5, 1.5])."""
    rng = np.random.default_rng(seed)
    model = onnx.ModelProto.FromString(model.SerializeToString())
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    kept = []
    for node in model.graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in inits:
            shape = [int(d) for d in inits[node.input[0]]]
            op, index, attrs = _role(model, node.output[0])
            array = random_weight(shape, op, index, attrs, rng).astype(np.float32)
            model.graph.initializer.append(numpy_helper.from_array(array, node.output[0]))
        else:
            kept.append(node)
    del model.graph.node[:]
    model.graph.node.extend(kept)
    return model


def random_feeds(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    inits = {i.name for i in model.graph.initializer}
    feeds = {}
    for value in model.graph.input:
        if value.name not in inits:
            shape = [d.dim_value or 1 for d in value.type.tensor_type.shape.dim]
            feeds[value.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def onnxruntime_outputs(model: onnx.ModelProto, feeds: dict) -> dict[str, np.ndarray]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # the light models carry unused initializers: no warnings
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def with_logits(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with the input of its final Softmax as an extra output: random weights
    saturate some softmaxes to one-hot vectors, the logits still show every error."""
    softmax = next((n for n in reversed(model.graph.node) if n.op_type == "Softmax"), None)
    if softmax is None:
        return model
    model = onnx.ModelProto.FromString(model.SerializeToString())
    model.graph.output.append(helper.make_tensor_value_info(softmax.input[0], 1, None))
    return model


def make_model(nodes, inputs, outputs, initializers=(), opset=13) -> onnx.ModelProto:
    """A small model: `inputs`/`outputs` are (name, shape) pairs of float32 tensors,
    `initializers` (name, array) pairs."""
    graph = helper.make_graph(
        nodes, "synthetic",
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, s) for n, s in outputs],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in initializers])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def conv_block_model(seed: int = 0) -> onnx.ModelProto:
    """Conv -> BatchNormalization -> Mul/Add by per-channel constants -> Add(residual) -> Relu,
    then Gemm -> Relu, with a dead branch and a Dropout: something for every pass."""
    rng = np.random.default_rng(seed)
    c = 8
    inits = [
        ("w", rng.normal(0, 0.3, (c, 4, 3, 3)).astype(np.float32)),
        ("b", rng.normal(0, 0.1, c).astype(np.float32)),
        ("scale", rng.uniform(0.5, 1.5, c).astype(np.float32)),
        ("shift", rng.normal(0, 0.1, c).astype(np.float32)),
        ("mean", rng.normal(0, 0.1, c).astype(np.float32)),
        ("var", rng.uniform(0.5, 1.5, c).astype(np.float32)),
        ("gamma", rng.uniform(0.5, 1.5, (c, 1, 1)).astype(np.float32)),
        ("beta", rng.normal(0, 0.1, (c, 1, 1)).astype(np.float32)),
        ("w2", rng.normal(0, 0.3, (c, 4, 1, 1)).astype(np.float32)),
        ("fc_shape", np.array([10, 1], dtype=np.int64)),
        ("fc_w", rng.normal(0, 0.3, (10, c * 6 * 6)).astype(np.float32)),
        ("fc_b", rng.normal(0, 0.1, 10).astype(np.float32)),
        ("flat_shape", np.array([1, -1], dtype=np.int64)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c1"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("BatchNormalization", ["c1", "scale", "shift", "mean", "var"],
                         ["bn"], name="bn"),
        helper.make_node("Mul", ["bn", "gamma"], ["scaled"], name="mul"),
        helper.make_node("Add", ["scaled", "beta"], ["shifted"], name="add_beta"),
        helper.make_node("Conv", ["x", "w2"], ["shortcut"], name="shortcut"),
        helper.make_node("Add", ["shifted", "shortcut"], ["sum"], name="residual"),
        helper.make_node("Relu", ["sum"], ["act"], name="relu"),
        helper.make_node("Dropout", ["act"], ["dropped"], name="dropout"),
        helper.make_node("Reshape", ["dropped", "flat_shape"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1, name="fc"),
        helper.make_node("Relu", ["logits"], ["y"], name="fc_relu"),
        # Dead: computes something nobody reads; constant-foldable shape arithmetic.
        helper.make_node("ConstantOfShape", ["fc_shape"], ["ones"],
                         value=numpy_helper.from_array(np.ones(1, np.float32))),
        helper.make_node("Sigmoid", ["x"], ["unused"], name="dead"),
    ]
    return make_model(nodes, [("x", [1, 4, 6, 6])], [("y", [1, 10])], inits)


def tiny_transformer(layers: int = 1, hidden: int = 32, heads: int = 4, ffn: int = 64,
                     seq: int = 8, vocab: int = 50, causal: bool = True,
                     seed: int = 0) -> onnx.ModelProto:
    """A small pre-norm decoder as exporters spell it at opset 13: decomposed layer norms,
    erf GELU, attention as MatMul/Div/Add(mask)/Softmax/MatMul."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    count = iter(range(10**6))

    def const(array):
        name = f"c{next(count)}"
        inits.append((name, np.asarray(array)))
        return name

    def op(op_type, inputs, **attrs):
        out = f"v{next(count)}"
        nodes.append(helper.make_node(op_type, inputs, [out], name=f"{op_type}_{out}", **attrs))
        return out

    def weight(*shape, std=0.2):
        return const(rng.normal(0, std, shape).astype(np.float32))

    def scalar(value):
        return const(np.array(value, np.float32))

    def linear(x, n_in, n_out):
        return op("Add", [op("MatMul", [x, weight(n_in, n_out)]), weight(n_out, std=0.05)])

    def layer_norm(x):
        centered = op("Sub", [x, op("ReduceMean", [x], axes=[-1])])
        variance = op("ReduceMean", [op("Pow", [centered, scalar(2.0)])], axes=[-1])
        std = op("Sqrt", [op("Add", [variance, scalar(1e-5)])])
        scaled = op("Mul", [op("Div", [centered, std]), weight(hidden, std=0.1)])
        return op("Add", [scaled, weight(hidden, std=0.1)])

    def split(x, perm):
        shaped = op("Reshape", [x, const(np.array([0, 0, heads, hidden // heads]))])
        return op("Transpose", [shaped], perm=perm)

    mask = const(np.triu(np.full((seq, seq), -1e4, np.float32), 1)[None, None]) if causal \
        else None
    x = op("Add", [op("Gather", [weight(vocab, hidden), "ids"], axis=0), weight(seq, hidden)])
    for _ in range(layers):
        h = layer_norm(x)
        q = split(linear(h, hidden, hidden), [0, 2, 1, 3])
        k = split(linear(h, hidden, hidden), [0, 2, 3, 1])
        v = split(linear(h, hidden, hidden), [0, 2, 1, 3])
        scores = op("Div", [op("MatMul", [q, k]), scalar(np.sqrt(hidden // heads))])
        if mask:
            scores = op("Add", [scores, mask])
        context = op("MatMul", [op("Softmax", [scores], axis=-1), v])
        merged = op("Reshape", [op("Transpose", [context], perm=[0, 2, 1, 3]),
                                const(np.array([0, 0, hidden]))])
        x = op("Add", [x, linear(merged, hidden, hidden)])
        up = linear(layer_norm(x), hidden, ffn)
        erf = op("Erf", [op("Div", [up, scalar(np.sqrt(2.0))])])
        gelu = op("Mul", [op("Mul", [up, op("Add", [erf, scalar(1.0)])]), scalar(0.5)])
        x = op("Add", [x, linear(gelu, ffn, hidden)])
    nodes[-1].output[0] = "y"
    graph = helper.make_graph(
        nodes, "tiny_transformer",
        [helper.make_tensor_value_info("ids", onnx.TensorProto.INT64, ["batch", seq])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", seq, hidden])],
        [numpy_helper.from_array(a, n) for n, a in inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def token_feeds(batch: int = 2, seq: int = 8, vocab: int = 50, seed: int = 0) -> dict:
    return {"ids": np.random.default_rng(seed).integers(0, vocab, (batch, seq)).astype(np.int64)}


def fire_model(batch: int = 1, seed: int = 0) -> onnx.ModelProto:
    """SqueezeNet's Fire module (squeeze 1x1, expand 1x1 and 3x3, channel Concat), then a
    DenseNet-style Concat of that output with features computed from it."""
    rng = np.random.default_rng(seed)

    def conv_weights(name, out_c, in_c, k):
        return [(f"{name}_w", rng.normal(0, 0.4, (out_c, in_c, k, k)).astype(np.float32)),
                (f"{name}_b", rng.normal(0, 0.1, out_c).astype(np.float32))]

    inits = (conv_weights("squeeze", 3, 4, 1) + conv_weights("e1", 5, 3, 1) +
             conv_weights("e3", 6, 3, 3) + conv_weights("grow", 2, 11, 3) +
             conv_weights("head", 4, 13, 1))

    def conv(name, source, pad=0):
        return [helper.make_node("Conv", [source, f"{name}_w", f"{name}_b"], [f"{name}_c"],
                                 pads=[pad] * 4, name=name),
                helper.make_node("Relu", [f"{name}_c"], [name], name=f"{name}_relu")]

    nodes = (conv("squeeze", "x") + conv("e1", "squeeze") + conv("e3", "squeeze", pad=1) +
             [helper.make_node("Concat", ["e1", "e3"], ["fire"], axis=1, name="fire_cat")] +
             conv("grow", "fire", pad=1) +
             [helper.make_node("Concat", ["fire", "grow"], ["dense"], axis=1, name="dense_cat"),
              helper.make_node("Conv", ["dense", "head_w", "head_b"], ["y"], name="head")])
    return make_model(nodes, [("x", [batch, 4, 8, 8])], [("y", [batch, 4, 8, 8])], inits)
