"""One-node models of onnxruntime's contrib operators (domain com.microsoft), each with its
inputs, for the per-op tests: built with onnx.helper, run by onnxruntime as the reference."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper

DOMAIN = "com.microsoft"
FEED, CONST = "feed", "const"


@dataclass
class Case:
    """`inputs`: (array, FEED | CONST) per position, None for an omitted optional input."""

    op: str
    inputs: list
    attrs: dict = field(default_factory=dict)
    outputs: int = 1
    unit: str = "vector"
    atol: float = 1e-5
    rtol: float = 1e-5
    exact: bool = False  # integer outputs equal onnxruntime's
    id: str = ""
    domain: str = DOMAIN  # onnxruntime also adds ops of its own to ONNX's domain ("")

    def model(self) -> onnx.ModelProto:
        names, feeds, inits, infos = [], {}, [], []
        for index, item in enumerate(self.inputs):
            if item is None:
                names.append("")
                continue
            array, kind = item
            name = f"in{index}"
            names.append(name)
            if kind == CONST:
                inits.append(numpy_helper.from_array(array, name))
            else:
                feeds[name] = array
                infos.append(helper.make_tensor_value_info(
                    name, helper.np_dtype_to_tensor_dtype(array.dtype), array.shape))
        while names and not names[-1]:
            names.pop()
        outputs = [f"out{i}" for i in range(self.outputs)]
        node = helper.make_node(self.op, names, outputs, domain=self.domain, name="node",
                                **self.attrs)
        graph = helper.make_graph([node], self.op, infos,
                                  [helper.make_empty_tensor_value_info(o) for o in outputs],
                                  inits)
        self.feeds = feeds
        return helper.make_model(graph, ir_version=9,
                                 opset_imports=[helper.make_opsetid("", 17),
                                                helper.make_opsetid(DOMAIN, 1)])


def rng(seed=0):
    return np.random.default_rng(seed)


def f32(*shape, seed=0, scale=1.0):
    return (rng(seed).standard_normal(shape) * scale).astype(np.float32)


def ints(low, high, shape, dtype, seed=0):
    return rng(seed).integers(low, high, shape).astype(dtype)


def weights7(shape, seed=0):
    """int8 weights of a uint8 x int8 product, in 7 bits (onnxruntime's `reduce_range`).
    onnxruntime, the reference, multiplies u8 x s8 with AVX2's vpmaddubsw on x86 machines
    without VNNI, which saturates each pair's sum at int16: full-range weights there make the
    *reference* wrong (seen on an AMD EPYC with AVX2 only), while the array accumulates in
    int32 exactly. 7-bit weights keep every pair below 2**15 on every machine."""
    return ints(-64, 64, shape, np.int8, seed)


def _fused_cases():
    x = f32(2, 8, 16)
    conv_x, conv_w, conv_b = f32(1, 4, 8, 8), f32(6, 4, 3, 3, seed=1, scale=0.3), f32(6, seed=2)
    return [
        Case("Gelu", [(x, FEED)]),
        Case("BiasGelu", [(x, FEED), (f32(16, seed=1), CONST)]),
        Case("FastGelu", [(x, FEED)], id="no-bias"),
        Case("FastGelu", [(x, FEED), (f32(16, seed=1), CONST)], id="bias"),
        Case("QuickGelu", [(x, FEED)]),
        Case("QuickGelu", [(x, FEED)], {"alpha": 1.5}, id="alpha"),
        Case("FusedConv", [(conv_x, FEED), (conv_w, CONST), (conv_b, CONST)],
             {"activation": "Relu", "pads": [1, 1, 1, 1], "kernel_shape": [3, 3]},
             unit="array", atol=1e-4, id="relu"),
        Case("FusedConv", [(conv_x, FEED), (conv_w, CONST), (conv_b, CONST),
                           (f32(1, 6, 4, 4, seed=3), FEED)],
             {"activation": "LeakyRelu", "activation_params": [0.2], "strides": [2, 2],
              "pads": [1, 1, 1, 1]}, unit="array", atol=1e-4, id="sum-leakyrelu"),
        Case("FusedConv", [(conv_x, FEED), (conv_w, CONST)],
             {"activation": "Clip", "activation_params": [-0.5, 0.5]}, unit="array",
             atol=1e-4, id="clip-no-bias"),
        Case("FusedMatMul", [(f32(2, 3, 4, 5), FEED), (f32(2, 3, 6, 5, seed=1), CONST)],
             {"transB": 1, "alpha": 0.5}, unit="array", atol=1e-4, id="transB-alpha"),
        Case("FusedMatMul", [(f32(5, 4), FEED), (f32(5, 3, seed=1), FEED)],
             {"transA": 1}, unit="array", atol=1e-4, id="transA"),
        Case("FusedMatMul", [(f32(4, 2, 3, 5), FEED), (f32(2, 3, 5, 6, seed=1), CONST)],
             {"transBatchA": 1}, unit="array", atol=1e-4, id="transBatchA"),
    ]


def _norm_cases():
    x, skip = f32(2, 8, 32), f32(2, 8, 32, seed=1)
    gamma, beta, bias = f32(32, seed=2), f32(32, seed=3), f32(32, seed=4)
    ids = ints(0, 50, (2, 8), np.int32)
    segments = ints(0, 2, (2, 8), np.int32, seed=1)
    mask = np.array([[1] * 8, [1] * 5 + [0] * 3], np.int32)
    tables = [(f32(50, 32, seed=5), CONST), (f32(16, 32, seed=6), CONST),
              (f32(2, 32, seed=7), CONST), (gamma, CONST), (beta, CONST)]
    return [
        Case("SkipLayerNormalization", [(x, FEED), (skip, FEED), (gamma, CONST),
                                        (beta, CONST), (bias, CONST)], {"epsilon": 1e-5},
             outputs=4, atol=1e-4, id="bias-sum"),
        Case("SkipLayerNormalization", [(x, FEED), (skip, FEED), (gamma, CONST)],
             atol=1e-4, id="gamma-only"),
        Case("SimplifiedLayerNormalization", [(x, FEED), (gamma, CONST)], {"epsilon": 1e-5},
             outputs=2, atol=1e-4, domain="", id="onnx-domain"),
        Case("SkipSimplifiedLayerNormalization", [(x, FEED), (skip, FEED), (gamma, CONST),
                                                  (bias, CONST)], {"epsilon": 1e-5},
             atol=1e-4, id="bias"),
        Case("QEmbedLayerNormalization",
             [(ids, FEED), (segments, FEED)] + [
                 (ints(0, 256, t[0].shape, np.uint8, i), CONST) for i, t in enumerate(tables)]
             + [(mask, FEED)] + [(np.array(0.01 * (i + 1), np.float32), CONST)
                                 for i in range(5)]
             + [(np.array(120 + i, np.uint8), CONST) for i in range(5)],
             {"epsilon": 1e-12}, outputs=2, atol=1e-4, id="mask"),
        Case("EmbedLayerNormalization", [(ids, FEED), (segments, FEED)] + tables +
             [(mask, FEED)], {"epsilon": 1e-12}, outputs=3, atol=1e-4, id="mask"),
        Case("EmbedLayerNormalization", [(ids, FEED), None] + tables[:2] + [None] +
             tables[3:], outputs=2, atol=1e-4, id="no-segment-no-mask"),
    ]


def _attention_cases():
    x, w, b = f32(2, 8, 32), f32(32, 96, seed=1, scale=0.2), f32(96, seed=2)
    lengths = np.array([8, 5], np.int32)
    raw = np.array([[1] * 8, [1] * 6 + [0] * 2], np.int32)
    past = f32(2, 2, 4, 3, 8, seed=3)
    bias4 = f32(1, 4, 8, 8, seed=4)
    kw = {"num_heads": 4}
    q, k, v = f32(2, 8, 32), f32(2, 6, 32, seed=1), f32(2, 6, 32, seed=2)
    return [
        Case("Attention", [(x, FEED), (w, CONST), (b, CONST)], kw, outputs=2, unit="array",
             atol=1e-4, id="plain"),
        Case("Attention", [(x, FEED), (w, CONST), (b, CONST), (lengths, FEED)], kw,
             unit="array", atol=1e-4, id="mask-lengths"),
        Case("Attention", [(x, FEED), (w, CONST), (b, CONST), (raw, FEED), None,
                           (bias4, FEED)], kw, unit="array", atol=1e-4, id="raw-mask-bias"),
        Case("Attention", [(x, FEED), (w, CONST), (b, CONST),
                           (np.array([8, 6, 0, 2], np.int32), FEED)], kw, unit="array",
             atol=1e-4, id="mask-end-start"),
        Case("Attention", [(x, FEED), (w, CONST), (b, CONST),
                           (ints(0, 2, (2, 8, 8), np.int32, 5), FEED)], kw, unit="array",
             atol=1e-4, id="mask-3d"),
        Case("Attention", [(x[:, :3], FEED), (w, CONST), (b, CONST), None, (past, FEED)],
             {**kw, "unidirectional": 1}, outputs=2, unit="array", atol=1e-4,
             id="causal-past"),
        Case("Attention", [(x, FEED), (f32(32, 80, seed=5, scale=0.2), CONST),
                           (f32(80, seed=6), CONST)],
             {**kw, "qkv_hidden_sizes": [32, 32, 16]}, unit="array", atol=1e-4,
             id="qkv-sizes"),
        Case("QAttention", [(ints(0, 256, (2, 8, 32), np.uint8), FEED),
                            (weights7((32, 96), 1), CONST), (b, CONST),
                            (np.array(0.02, np.float32), CONST),
                            (np.array(0.004, np.float32), CONST), (lengths, FEED),
                            (np.array(128, np.uint8), CONST), (np.array(0, np.int8), CONST)],
             kw, unit="array", atol=1e-4, id="mask-lengths"),
        Case("MultiHeadAttention", [(q, FEED), (k, FEED), (v, FEED), (f32(96), CONST),
                                    (raw[:, :6], FEED)], kw, unit="array", atol=1e-4,
             id="bias-padding-mask"),
        Case("MultiHeadAttention", [(q[:, :1], FEED), (k[:, :1], FEED), (v[:, :1], FEED),
                                    None, None, None, (f32(2, 4, 5, 8, seed=7), FEED),
                                    (f32(2, 4, 5, 8, seed=8), FEED)], kw, outputs=3,
             unit="array", atol=1e-4, id="past-present"),
        Case("MultiHeadAttention", [(q, FEED), (f32(2, 4, 6, 8, seed=1), FEED),
                                    (f32(2, 4, 6, 8, seed=2), FEED)], kw, unit="array",
             atol=1e-4, id="bnsh-kv"),
        Case("MultiHeadAttention", [(q, FEED), (k, FEED), (v, FEED)],
             {**kw, "unidirectional": 1, "scale": 0.3}, unit="array", atol=1e-4,
             id="causal-scale"),
    ]


def _rotary_cases():
    angles = np.arange(16)[:, None] * (1.0 / 10000 ** (np.arange(4) / 4))[None, :]
    cos, sin = np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)
    positions = np.array([[0, 1, 2, 3, 4, 5], [3, 4, 5, 6, 7, 8]], np.int64)
    x3, x4 = f32(2, 6, 32), f32(2, 4, 6, 8)
    return [
        Case("RotaryEmbedding", [(x3, FEED), (positions, FEED), (cos, CONST), (sin, CONST)],
             {"num_heads": 4}, id="halves"),
        Case("RotaryEmbedding", [(x3, FEED), (positions, FEED), (cos, CONST), (sin, CONST)],
             {"num_heads": 4, "interleaved": 1}, id="interleaved"),
        Case("RotaryEmbedding", [(x4, FEED), (np.array([2], np.int64), CONST),
                                 (cos, CONST), (sin, CONST)], {"interleaved": 1},
             id="bnsh-offset"),
        Case("RotaryEmbedding", [(f32(2, 6, 64), FEED), (positions, FEED),
                                 (cos, CONST), (sin, CONST)],
             {"num_heads": 4, "rotary_embedding_dim": 8}, id="partial"),
    ]


def _gqa_cases():
    angles = np.arange(32)[:, None] * (1.0 / 10000 ** (np.arange(8) / 8))[None, :]
    cos, sin = np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)
    kw = {"num_heads": 4, "kv_num_heads": 2}

    def case(seq, past_len, seqlens, total, attrs, rotary=False, id=""):
        batch = len(seqlens)
        # onnxruntime's CPU kernel takes head sizes of multiples of 16.
        inputs = [(f32(batch, seq, 64), FEED), (f32(batch, seq, 32, seed=1), FEED),
                  (f32(batch, seq, 32, seed=2), FEED),
                  (f32(batch, 2, past_len, 16, seed=3), FEED),
                  (f32(batch, 2, past_len, 16, seed=4), FEED),
                  (np.array(seqlens, np.int32), FEED),
                  (np.array(total, np.int32), CONST)]
        if rotary:
            inputs += [(cos, CONST), (sin, CONST)]
        return Case("GroupQueryAttention", inputs, {**kw, **attrs}, outputs=3, unit="array",
                    atol=1e-4, id=id)

    explicit = case(1, 6, [6, 6], 7, {"do_rotary": 1}, rotary=True, id="decode-position-ids")
    explicit.inputs += [(np.array([[4], [2]], np.int64), FEED)]
    biased = case(1, 6, [6, 6], 7, {}, id="decode-attention-bias")
    biased.inputs += [None, None, None, (f32(2, 1, 1, 7, seed=9), FEED)]
    return [
        explicit, biased,
        case(5, 0, [4], 5, {}, id="prefill"),
        Case("GroupQueryAttention", [(f32(1, 3, 128), FEED), None, None,
                                     (f32(1, 2, 4, 16, seed=3), FEED),
                                     (f32(1, 2, 4, 16, seed=4), FEED),
                                     (np.array([6], np.int32), FEED),
                                     (np.array(7, np.int32), CONST)], kw, outputs=3,
             unit="array", atol=1e-4, id="packed-qkv-chunk"),
        case(6, 0, [5, 5], 6, {"do_rotary": 1}, rotary=True, id="prefill-rotary"),
        case(1, 6, [4, 5], 6, {}, id="decode-shared-buffer"),
        case(1, 6, [6, 6], 7, {"do_rotary": 1, "rotary_interleaved": 1}, rotary=True,
             id="decode-grow-rotary-interleaved"),
        case(6, 0, [5], 6, {"local_window_size": 2}, id="prefill-window"),
        case(1, 5, [5], 6, {"softcap": 2.0, "scale": 0.5}, id="decode-softcap"),
        case(4, 0, [3], 4, {"smooth_softmax": 1}, id="prefill-smooth-softmax"),
        case(1, 4, [4], 5, {"smooth_softmax": 1, "local_window_size": 3},
             id="decode-smooth-softmax-window"),
    ]


def _nbits(n, k, bits, block, seed=0, zero_points=False):
    blocks = -(-k // block)
    values = rng(seed).integers(0, 1 << bits, (n, blocks * block)).astype(np.uint8)
    per_byte = 8 // bits
    packed = np.zeros((n, blocks * block // per_byte), np.uint8)
    for i in range(per_byte):
        packed |= (values[:, i::per_byte] << (i * bits)).astype(np.uint8)
    scales = (rng(seed + 1).random(n * blocks) * 0.1 + 0.01).astype(np.float32)
    inputs = [(packed.reshape(n, blocks, -1), CONST), (scales, CONST)]
    if zero_points:
        zp = rng(seed + 2).integers(0, 1 << bits, (n, blocks)).astype(np.uint8)
        if bits < 8:
            per = 8 // bits
            width = -(-blocks // per)
            padded = np.zeros((n, width * per), np.uint8)
            padded[:, :blocks] = zp
            zp = np.zeros((n, width), np.uint8)
            for i in range(per):
                zp |= (padded[:, i::per] << (i * bits)).astype(np.uint8)
        inputs.append((zp.reshape(-1), CONST))
    return inputs


def _quant_cases():
    a = f32(4, 16)
    b8 = weights7((16, 8))
    u8 = lambda shape, seed=0: ints(0, 256, shape, np.uint8, seed)  # noqa: E731
    s8 = lambda shape, seed=0: ints(-128, 128, shape, np.int8, seed)  # noqa: E731
    scalar = lambda v, dtype=np.float32: np.array(v, dtype)  # noqa: E731
    lstm_w = weights7((1, 8, 24), 1)
    lstm_r = weights7((1, 6, 24), 2)
    lstm = [(f32(5, 2, 8), FEED), (lstm_w, CONST), (lstm_r, CONST),
            (f32(1, 48, seed=3, scale=0.1), CONST), None, None, None, None,
            (np.array([0.02], np.float32), CONST), (np.array([0], np.int8), CONST),
            (np.array([0.03], np.float32), CONST), (np.array([0], np.int8), CONST)]
    qbin = [(u8((2, 3, 8)), FEED), (scalar(0.05), CONST), (scalar(128, np.uint8), CONST),
            (u8((3, 8), 1), FEED), (scalar(0.02), CONST), (scalar(100, np.uint8), CONST),
            (scalar(0.07), CONST), (scalar(120, np.uint8), CONST)]
    qbin8 = [(s8((2, 8)), FEED), (scalar(0.05), CONST), (scalar(3, np.int8), CONST),
             (s8((2, 8), 1), FEED), (scalar(0.04), CONST), (scalar(-5, np.int8), CONST),
             (scalar(0.03), CONST), (scalar(1, np.int8), CONST)]
    pool = [(u8((1, 4, 5, 5)), FEED), (scalar(0.05), CONST), (scalar(128, np.uint8), CONST),
            (scalar(0.01), CONST), (scalar(120, np.uint8), CONST)]
    return [
        Case("DynamicQuantizeMatMul", [(a, FEED), (b8, CONST), (scalar(0.01), CONST)],
             unit="array", atol=1e-5, id="per-tensor"),
        Case("DynamicQuantizeMatMul", [(a, FEED), (b8, CONST),
                                       (np.linspace(0.01, 0.02, 8).astype(np.float32), CONST),
                                       (np.zeros(8, np.int8), CONST),
                                       (f32(8, seed=1), CONST)],
             unit="array", atol=1e-5, id="per-column-bias"),
        Case("MatMulInteger16", [(ints(-3000, 3000, (3, 5), np.int16), FEED),
                                 (ints(-3000, 3000, (5, 4), np.int16, 1), CONST)],
             unit="array", exact=True),
        Case("QGemm", [(u8((4, 16)), FEED), (scalar(0.05), CONST), (scalar(120, np.uint8), CONST),
                       (weights7((8, 16), 1), CONST), (scalar(0.01), CONST), (scalar(0, np.int8), CONST),
                       (ints(-500, 500, (8,), np.int32, 2), CONST), (scalar(0.2), CONST),
                       (scalar(128, np.uint8), CONST)], {"transB": 1}, unit="array",
             exact=True, id="requantized-transB"),
        Case("QGemm", [(u8((4, 16)), FEED), (scalar(0.05), CONST), (scalar(120, np.uint8), CONST),
                       (weights7((16, 8), 1), CONST),
                       (np.linspace(0.01, 0.02, 8).astype(np.float32), CONST),
                       (np.zeros(8, np.int8), CONST)], {"alpha": 0.5}, unit="array",
             atol=1e-5, id="float-out-per-column"),
        Case("QLinearAdd", qbin, exact=True, id="uint8-broadcast"),
        Case("QLinearAdd", qbin8, exact=True, id="int8"),
        Case("QLinearMul", qbin, exact=True, id="uint8-broadcast"),
        Case("QLinearMul", qbin8, exact=True, id="int8"),
        Case("QLinearSigmoid", [(u8((2, 16)), FEED), (scalar(0.1), CONST),
                                (scalar(128, np.uint8), CONST), (scalar(1 / 256), CONST),
                                (scalar(0, np.uint8), CONST)], exact=True),
        Case("QLinearLeakyRelu", [(u8((2, 16)), FEED), (scalar(0.05), CONST),
                                  (scalar(128, np.uint8), CONST), (scalar(0.03), CONST),
                                  (scalar(100, np.uint8), CONST)], {"alpha": 0.1},
             exact=True),
        Case("QuantizeLinear", [(f32(2, 8, 4), FEED), (np.linspace(0.01, 0.02, 8).astype(
            np.float32), CONST), (ints(-50, 50, (8,), np.int16), CONST)], {"axis": 1},
             exact=True, id="int16-per-axis"),
        Case("DequantizeLinear", [(ints(-3000, 3000, (2, 8), np.int16), FEED),
                                  (scalar(0.001), CONST), (scalar(7, np.int16), CONST)],
             id="int16"),
        Case("QLinearAveragePool", [(u8((1, 4, 9, 9)), FEED)] + pool[1:],
             {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, exact=True,
             id="pads"),
        Case("QLinearAveragePool", [(u8((1, 4, 8, 8)), FEED)] + pool[1:],
             {"kernel_shape": [2, 2], "strides": [2, 2], "count_include_pad": 1}, exact=True,
             id="2x2"),
        Case("QLinearAveragePool", [(u8((1, 7, 7, 4)), FEED)] + pool[1:],
             {"kernel_shape": [3, 3], "channels_last": 1}, exact=True, id="nhwc"),
        Case("QLinearGlobalAveragePool", pool, exact=True, id="nchw"),
        Case("QLinearGlobalAveragePool", [(u8((1, 5, 5, 4)), FEED)] + pool[1:],
             {"channels_last": 1}, exact=True, id="nhwc"),
        Case("QLinearConcat", [(scalar(0.05), CONST), (scalar(128, np.uint8), CONST),
                               (u8((1, 2, 4)), FEED), (scalar(0.05), CONST),
                               (scalar(128, np.uint8), CONST), (u8((1, 3, 4), 1), FEED),
                               (scalar(0.08), CONST), (scalar(110, np.uint8), CONST)],
             {"axis": 1}, exact=True),
        Case("QLinearSoftmax", [(u8((2, 3, 40)), FEED), (scalar(0.08), CONST),
                                (scalar(128, np.uint8), CONST), (scalar(1 / 256), CONST),
                                (scalar(0, np.uint8), CONST)], {"opset": 13, "axis": -1},
             exact=True, id="uint8-opset13"),
        Case("QLinearSoftmax", [(u8((2, 6, 5), 1), FEED), (scalar(0.3), CONST),
                                (scalar(120, np.uint8), CONST), (scalar(1 / 256), CONST),
                                (scalar(0, np.uint8), CONST)], {"opset": 13, "axis": 1},
             exact=True, id="uint8-inner-axis"),
        Case("QLinearSoftmax", [(u8((2, 3, 4), 2), FEED), (scalar(0.1), CONST),
                                (scalar(128, np.uint8), CONST), (scalar(1 / 255), CONST),
                                (scalar(0, np.uint8), CONST)], {"opset": 12, "axis": 1},
             exact=True, id="uint8-opset12-flattened"),
        Case("QLinearSoftmax", [(s8((3, 16)), FEED), (scalar(0.05), CONST),
                                (scalar(0, np.int8), CONST), (scalar(1 / 256), CONST),
                                (scalar(-128, np.int8), CONST)], {"opset": 13},
             exact=True, id="int8"),
        Case("QLinearWhere", [(ints(0, 2, (2, 8), np.bool_), FEED), (u8((2, 8)), FEED),
                              (scalar(0.05), CONST), (scalar(128, np.uint8), CONST),
                              (u8((8,), 1), FEED), (scalar(0.02), CONST),
                              (scalar(100, np.uint8), CONST), (scalar(0.04), CONST),
                              (scalar(120, np.uint8), CONST)], exact=True, id="requantized"),
        Case("MatMulNBits", [(f32(3, 64), FEED)] + _nbits(16, 64, 4, 16),
             {"K": 64, "N": 16, "bits": 4, "block_size": 16}, unit="array", atol=1e-4,
             id="4bit-b16"),
        Case("MatMulNBits", [(f32(2, 3, 80), FEED)] + _nbits(8, 80, 4, 32, zero_points=True),
             {"K": 80, "N": 8, "bits": 4, "block_size": 32}, unit="array", atol=1e-4,
             id="4bit-b32-zero-points-ragged"),
        Case("MatMulNBits", [(f32(3, 64), FEED)] + _nbits(16, 64, 4, 16),
             {"K": 64, "N": 16, "bits": 4, "block_size": 16, "accuracy_level": 4},
             unit="array", atol=1e-4, id="4bit-int8-compute"),
        Case("MatMulNBits", [(f32(2, 3, 80), FEED)] + _nbits(8, 80, 4, 32, zero_points=True),
             {"K": 80, "N": 8, "bits": 4, "block_size": 32, "accuracy_level": 4},
             unit="array", atol=1e-4, id="4bit-int8-compute-zero-points-ragged"),
        Case("MatMulNBits", [(f32(3, 64), FEED)] + _nbits(16, 64, 8, 32),
             {"K": 64, "N": 16, "bits": 8, "block_size": 32, "accuracy_level": 4},
             unit="array", atol=1e-4, id="8bit-int8-compute"),
        Case("MatMulNBits", [(f32(3, 64), FEED)] + _nbits(16, 64, 8, 32, zero_points=True),
             {"K": 64, "N": 16, "bits": 8, "block_size": 32}, unit="array", atol=1e-4,
             id="8bit"),
        Case("DynamicQuantizeLSTM", lstm, {"hidden_size": 6}, outputs=3, unit="array",
             atol=1e-5, id="forward"),
        Case("DynamicQuantizeLSTM", lstm[:8] + [(np.array([0.02], np.float32), CONST),
                                                (np.array([3], np.int8), CONST),
                                                (np.linspace(0.02, 0.04, 24).astype(
                                                    np.float32).reshape(1, 24), CONST),
                                                (np.zeros((1, 24), np.int8), CONST)],
             {"hidden_size": 6, "direction": "forward"}, outputs=3, unit="array",
             atol=1e-5, id="per-column-scales"),
        Case("DynamicQuantizeLSTM",
             [(f32(5, 2, 8), FEED), (weights7((2, 8, 24), 4), CONST),
              (weights7((2, 6, 24), 5), CONST),
              (f32(2, 48, seed=6, scale=0.1), CONST), (np.array([5, 3], np.int32), FEED),
              None, None, None, (np.array([0.02, 0.03], np.float32), CONST),
              (np.array([0, 1], np.int8), CONST), (np.array([0.03, 0.02], np.float32), CONST),
              (np.array([-2, 0], np.int8), CONST)],
             {"hidden_size": 6, "direction": "bidirectional"}, outputs=3, unit="array",
             atol=1e-5, id="bidirectional-lengths"),
    ]


def cases() -> list[Case]:
    return (_fused_cases() + _norm_cases() + _attention_cases() + _rotary_cases()
            + _gqa_cases() + _quant_cases())
