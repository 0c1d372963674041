"""Transformers built in code with seeded weights, exported as ONNX graphs of standard ops.

Two models, in the shape PyTorch exports them at opset 13: a BERT-style encoder (token and
position embeddings, post-norm layers) and a GPT-style decoder (causal mask, pre-norm layers,
final layer norm and a language-model head tied to the token embedding). Layer norm appears
decomposed (ReduceMean/Sub/Pow/Sqrt/Div/Mul/Add) and GELU in its erf form, as exports spell
them; attention is MatMul -> Div(sqrt(d)) -> [Add(mask)] -> Softmax -> MatMul.

Workload sources: `builtin:bert-encoder?layers=2` and `builtin:gpt-decoder?layers=12&vocab=...`.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, fields, replace
from urllib.parse import parse_qsl

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Bump when the generated graphs or weights change: part of every prepared model's cache key.
GENERATOR_VERSION = "1"
OPSET = 13


@dataclass(frozen=True)
class TransformerConfig:
    kind: str  # "bert-encoder" | "gpt-decoder"
    layers: int = 2
    hidden: int = 768
    heads: int = 12
    ffn: int = 3072
    seq: int = 128
    vocab: int = 30522
    seed: int = 0

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


DEFAULTS = {"bert-encoder": TransformerConfig("bert-encoder", vocab=30522),
            "gpt-decoder": TransformerConfig("gpt-decoder", vocab=50257)}


def parse_source(spec: str) -> TransformerConfig:
    """`bert-encoder?layers=2&seq=64` -> its config; ValueError naming what is wrong."""
    name, _, query = spec.partition("?")
    if name not in DEFAULTS:
        raise ValueError(f"unknown builtin model {name!r} (expected one of: "
                         f"{', '.join(DEFAULTS)})")
    config = DEFAULTS[name]
    known = {f.name for f in fields(TransformerConfig)} - {"kind"}
    values = {}
    for key, text in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
        if key not in known:
            raise ValueError(f"unknown parameter {key!r} (expected: {', '.join(sorted(known))})")
        if not text.isdigit() or (int(text) < 1 and key != "seed"):
            raise ValueError(f"parameter {key}: expected a positive integer, got {text!r}")
        values[key] = int(text)
    config = replace(config, **values)
    if config.hidden % config.heads:
        raise ValueError(f"hidden {config.hidden} is not a multiple of heads {config.heads}")
    return config


class _Builder:
    """Nodes and initializers of one graph, with seeded weights named by their role."""

    def __init__(self, config: TransformerConfig):
        self.config = config
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.counter = 0

    def constant(self, name: str, array) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def weight(self, name: str, shape, std: float = 0.02, mean: float = 0.0) -> str:
        rng = np.random.default_rng([self.config.seed, zlib.crc32(name.encode())])
        values = rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
        return self.constant(name, values + np.float32(mean))

    def op(self, op_type: str, inputs, **attrs) -> str:
        self.counter += 1
        output = f"{op_type.lower()}_{self.counter}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [output],
                                           name=f"{op_type}_{self.counter}", **attrs))
        return output

    def scalar(self, name: str, value: float) -> str:
        return self.constant(name, np.array(value, dtype=np.float32))

    def linear(self, x: str, prefix: str, n_in: int, n_out: int) -> str:
        w = self.weight(f"{prefix}.weight", (n_in, n_out))
        b = self.weight(f"{prefix}.bias", (n_out,), std=0.01)
        return self.op("Add", [self.op("MatMul", [x, w]), b])

    def layer_norm(self, x: str, prefix: str) -> str:
        """The decomposition PyTorch exports for LayerNorm before opset 17."""
        hidden = self.config.hidden
        mean = self.op("ReduceMean", [x], axes=[-1])
        centered = self.op("Sub", [x, mean])
        square = self.op("Pow", [centered, self.scalar(f"{prefix}.two", 2.0)])
        variance = self.op("ReduceMean", [square], axes=[-1])
        std = self.op("Sqrt", [self.op("Add", [variance, self.scalar(f"{prefix}.eps", 1e-5)])])
        normalized = self.op("Div", [centered, std])
        gamma = self.weight(f"{prefix}.gamma", (hidden,), std=0.05, mean=1.0)
        beta = self.weight(f"{prefix}.beta", (hidden,), std=0.02)
        return self.op("Add", [self.op("Mul", [normalized, gamma]), beta])

    def gelu(self, x: str, prefix: str) -> str:
        """x * 0.5 * (1 + erf(x / sqrt(2))), as exported."""
        erf = self.op("Erf", [self.op("Div", [x, self.scalar(f"{prefix}.sqrt2",
                                                             math.sqrt(2.0))])])
        one_plus = self.op("Add", [erf, self.scalar(f"{prefix}.one", 1.0)])
        return self.op("Mul", [self.op("Mul", [x, one_plus]),
                               self.scalar(f"{prefix}.half", 0.5)])

    def heads(self, x: str, transpose_keys: bool = False) -> str:
        """[B, S, H*D] -> [B, H, S, D] (keys [B, H, D, S])."""
        c = self.config
        shaped = self.op("Reshape", [x, self.constant(f"split_heads.{self.counter}",
                                                      np.array([0, 0, c.heads, c.head_dim]))])
        return self.op("Transpose", [shaped], perm=[0, 2, 3, 1] if transpose_keys else
                       [0, 2, 1, 3])

    def attention(self, x: str, prefix: str, mask: str | None) -> str:
        c = self.config
        q = self.heads(self.linear(x, f"{prefix}.query", c.hidden, c.hidden))
        k = self.heads(self.linear(x, f"{prefix}.key", c.hidden, c.hidden), transpose_keys=True)
        v = self.heads(self.linear(x, f"{prefix}.value", c.hidden, c.hidden))
        scores = self.op("Div", [self.op("MatMul", [q, k]),
                                 self.scalar(f"{prefix}.scale", math.sqrt(c.head_dim))])
        if mask is not None:
            scores = self.op("Add", [scores, mask])
        context = self.op("MatMul", [self.op("Softmax", [scores], axis=-1), v])
        merged = self.op("Reshape", [self.op("Transpose", [context], perm=[0, 2, 1, 3]),
                                     self.constant(f"{prefix}.merge",
                                                   np.array([0, 0, c.hidden]))])
        return self.linear(merged, f"{prefix}.output", c.hidden, c.hidden)

    def feed_forward(self, x: str, prefix: str) -> str:
        c = self.config
        hidden = self.gelu(self.linear(x, f"{prefix}.up", c.hidden, c.ffn), prefix)
        return self.linear(hidden, f"{prefix}.down", c.ffn, c.hidden)

    def embeddings(self, ids: str) -> str:
        c = self.config
        table = self.weight("embeddings.token", (c.vocab, c.hidden))
        positions = self.weight("embeddings.position", (c.seq, c.hidden))
        return self.op("Add", [self.op("Gather", [table, ids], axis=0), positions])


def _bert(b: _Builder) -> str:
    x = b.layer_norm(b.embeddings("input_ids"), "embeddings.norm")
    for i in range(b.config.layers):
        x = b.layer_norm(b.op("Add", [x, b.attention(x, f"layer{i}.attention", None)]),
                         f"layer{i}.attention.norm")
        x = b.layer_norm(b.op("Add", [x, b.feed_forward(x, f"layer{i}.ffn")]),
                         f"layer{i}.ffn.norm")
    return x


def _gpt(b: _Builder) -> str:
    c = b.config
    # Causal: position i attends to positions <= i (a large negative score elsewhere).
    mask = b.constant("causal_mask", np.triu(np.full((c.seq, c.seq), -1e4, np.float32), 1)
                      .reshape(1, 1, c.seq, c.seq))
    x = b.embeddings("input_ids")
    for i in range(c.layers):
        x = b.op("Add", [x, b.attention(b.layer_norm(x, f"layer{i}.norm1"),
                                        f"layer{i}.attention", mask)])
        x = b.op("Add", [x, b.feed_forward(b.layer_norm(x, f"layer{i}.norm2"), f"layer{i}.ffn")])
    x = b.layer_norm(x, "final.norm")
    # Tied head: logits against the token embedding, transposed once here.
    table = next(i for i in b.initializers if i.name == "embeddings.token")
    head = b.constant("lm_head", np.ascontiguousarray(numpy_helper.to_array(table).T))
    return b.op("MatMul", [x, head])


def build(config: TransformerConfig) -> onnx.ModelProto:
    """The ONNX model of `config`, batch symbolic, weights seeded by `config.seed`."""
    b = _Builder(config)
    (_bert if config.kind == "bert-encoder" else _gpt)(b)
    output = "last_hidden_state" if config.kind == "bert-encoder" else "logits"
    b.nodes[-1].output[0] = output  # the last op built computes it, and nothing reads it
    width = config.hidden if config.kind == "bert-encoder" else config.vocab
    graph = helper.make_graph(
        b.nodes, config.kind.replace("-", "_"),
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", config.seq])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT,
                                       ["batch", config.seq, width])],
        b.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="stackci.transformers")
    model.ir_version = 8
    return model


def build_source(spec: str) -> onnx.ModelProto:
    return build(parse_source(spec))
