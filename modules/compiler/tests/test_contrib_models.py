"""Whole models as onnxruntime's own tools leave them, through `python -m npu_compiler run
--json --inputs`, matching onnxruntime: static QOperator quantization (QLinearAdd, QLinearMul,
QLinearSigmoid, QLinearConcat, QLinearAveragePool, QLinearGlobalAveragePool, QGemm; exact),
16-bit QDQ in its contrib QuantizeLinear/DequantizeLinear (exact), dynamic quantization of an
LSTM (DynamicQuantizeLSTM), the graphs onnxruntime saves after its own fusions
(DynamicQuantizeMatMul, FusedConv, QuickGelu, Gelu, FusedMatMul), a transformer optimized by
onnxruntime.transformers (and then dynamically quantized: QAttention); and a decoder layer as
onnxruntime-genai writes LLMs (4-bit MatMulNBits, GroupQueryAttention with rotary and a KV
cache, SimplifiedLayerNormalization), in prefill and decode."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_dynamic, quantize_static)

RNG = np.random.default_rng(0)


def run_cli(model, feeds, *options) -> tuple[dict, list[dict]]:
    """`python -m npu_compiler run MODEL --sku npu-dc --json --inputs FEEDS.npz`: the outputs
    it saved and the per-op profile it printed."""
    inputs, outputs = model.with_suffix(".inputs.npz"), model.with_suffix(".outputs.npz")
    np.savez(inputs, **feeds)
    result = subprocess.run(
        [sys.executable, "-m", "npu_compiler", "run", str(model), "--sku", "npu-dc", "--json",
         "--no-cache", "--inputs", str(inputs), "--save-outputs", str(outputs), *options],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    with np.load(outputs) as saved:
        return dict(saved), json.loads(result.stdout)["simulated"]["ops"]


def weight(name, *shape, scale=0.3):
    return numpy_helper.from_array((RNG.standard_normal(shape) * scale).astype(np.float32),
                                   name)


def save(path, nodes, inputs, initializers):
    graph = helper.make_graph(
        nodes, path.stem, [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
                           for n, s in inputs],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], initializers)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                ir_version=9), path)
    return path


def cnn(path):
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c2", "r1"], ["s"]),
             helper.make_node("Sigmoid", ["s"], ["sg"]),
             helper.make_node("Mul", ["sg", "s"], ["m"]),
             helper.make_node("Concat", ["m", "r1"], ["cat"], axis=1),
             helper.make_node("AveragePool", ["cat"], ["pool"], kernel_shape=[2, 2],
                              strides=[2, 2]),
             helper.make_node("GlobalAveragePool", ["pool"], ["gap"]),
             helper.make_node("Flatten", ["gap"], ["f"]),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["out"], transB=1)]
    return save(path, nodes, [("x", [1, 3, 16, 16])],
                [weight("w1", 8, 3, 3, 3), weight("b1", 8, scale=0.1),
                 weight("w2", 8, 8, 3, 3, scale=0.15), weight("b2", 8, scale=0.1),
                 weight("fw", 10, 16), weight("fb", 10)])


def lstm(path):
    nodes = [helper.make_node("LSTM", ["x", "W", "R", "B"], ["y", "yh", "yc"], hidden_size=16),
             helper.make_node("Squeeze", ["yh", "axis"], ["h"]),
             helper.make_node("MatMul", ["h", "wo"], ["out"])]
    return save(path, nodes, [("x", [6, 2, 8])],
                [weight("W", 1, 64, 8), weight("R", 1, 64, 16), weight("B", 1, 128, scale=0.1),
                 weight("wo", 16, 10), numpy_helper.from_array(np.array([0], np.int64), "axis")])


def mlp(path):
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["a"]),
             helper.make_node("Add", ["a", "b1"], ["ab"]), helper.make_node("Relu", ["ab"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["out"])]
    return save(path, nodes, [("x", [4, 32])],
                [weight("w1", 32, 64), weight("b1", 64), weight("w2", 64, 10)])


def ffn(path):
    """MatMul + bias, GELU spelled with Erf, a transposed weight and a scale."""
    constants = [numpy_helper.from_array(np.array(v, np.float32), n)
                 for n, v in (("sqrt2", np.sqrt(2)), ("one", 1.0), ("half", 0.5),
                              ("scale", 0.125))]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["a"]),
             helper.make_node("Add", ["a", "b1"], ["ab"]),
             helper.make_node("Div", ["ab", "sqrt2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["e1"]),
             helper.make_node("Mul", ["ab", "e1"], ["m"]),
             helper.make_node("Mul", ["m", "half"], ["g"]),
             helper.make_node("Transpose", ["w2"], ["w2t"], perm=[1, 0]),
             helper.make_node("MatMul", ["g", "w2t"], ["mm"]),
             helper.make_node("Mul", ["mm", "scale"], ["out"])]
    return save(path, nodes, [("x", [2, 8, 32]), ("w2", [16, 64])],
                [weight("w1", 32, 64), weight("b1", 64)] + constants)


class Samples(CalibrationDataReader):
    def __init__(self, shape):
        self.samples = iter([{"x": RNG.standard_normal(shape).astype(np.float32)}
                             for _ in range(8)])

    def get_next(self):
        return next(self.samples, None)


def static_qoperator(src, dst):
    # reduce_range (7-bit weights): onnxruntime's u8 x s8 kernels saturate at int16 on x86
    # machines without VNNI (its documented advice), which would make the reference wrong.
    quantize_static(src, dst, Samples((1, 3, 16, 16)), quant_format=QuantFormat.QOperator,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    reduce_range=True)


def static_qdq16(src, dst):
    """QDQ with 16-bit activations in onnxruntime's own Q/DQ operators."""
    quantize_static(src, dst, Samples((1, 3, 16, 16)), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt16, weight_type=QuantType.QInt8,
                    extra_options={"UseQDQContribOps": True})


def dynamic(src, dst):
    quantize_dynamic(src, dst, weight_type=QuantType.QInt8, reduce_range=True)  # as above


def ort_fused(src, dst):
    """The graph onnxruntime runs after its own (extended) fusions, as it saves it."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])


def dynamic_then_fused(src, dst):
    dynamic(src, src.with_suffix(".q.onnx"))
    ort_fused(src.with_suffix(".q.onnx"), dst)


MODELS = [
    ("cnn-static-qoperator", cnn, static_qoperator, 0.0,
     {"QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearConcat", "QLinearAveragePool",
      "QLinearGlobalAveragePool", "QGemm"}),
    ("cnn-static-qdq16", cnn, static_qdq16, 0.0, {"QuantizeLinear", "DequantizeLinear"}),
    ("lstm-dynamic", lstm, dynamic, 1e-5, {"DynamicQuantizeLSTM"}),
    ("mlp-dynamic-fused", mlp, dynamic_then_fused, 1e-5, {"DynamicQuantizeMatMul"}),
    ("cnn-fused", cnn, ort_fused, 1e-5, {"FusedConv", "QuickGelu"}),
    ("ffn-fused", ffn, ort_fused, 1e-5, {"Gelu", "FusedMatMul"}),
]


def _nbits(prefix, k, n, block=32):
    blocks = k // block
    values = RNG.integers(0, 16, (n, blocks * block)).astype(np.uint8)
    packed = (values[:, 0::2] | (values[:, 1::2] << 4)).reshape(n, blocks, block // 2)
    scales = (RNG.random(n * blocks) * 0.02 + 0.005).astype(np.float32)
    return [numpy_helper.from_array(packed.astype(np.uint8), f"{prefix}_q"),
            numpy_helper.from_array(scales, f"{prefix}_s")]


def _matmul_4bit(prefix, x, out, k, n):
    return helper.make_node("MatMulNBits", [x, f"{prefix}_q", f"{prefix}_s"], [out],
                            domain="com.microsoft", K=k, N=n, bits=4, block_size=32)


VOCAB, HIDDEN, HEADS, KV_HEADS, HEAD, FFN = 64, 64, 4, 2, 16, 96


def llm_layer(batch, seq, past) -> onnx.ModelProto:
    """Embedding, RMS norm, 4-bit Q/K/V, GroupQueryAttention (rotary, KV cache; seqlens_k and
    total_sequence_length computed from attention_mask as onnxruntime-genai does), 4-bit
    output projection, SkipSimplifiedLayerNormalization, SiLU-gated 4-bit MLP, 4-bit head."""
    half = HEAD // 2
    angles = np.arange(128)[:, None] * (1.0 / 10000 ** (np.arange(half) / half))[None]
    inits = [weight("embed", VOCAB, HIDDEN, scale=1.0), weight("ln1", HIDDEN, scale=1.0),
             weight("ln2", HIDDEN, scale=1.0),
             numpy_helper.from_array(np.cos(angles).astype(np.float32), "cos"),
             numpy_helper.from_array(np.sin(angles).astype(np.float32), "sin"),
             numpy_helper.from_array(np.array([1], np.int64), "one"),
             numpy_helper.from_array(np.array(1, np.int32), "one32")]
    shapes = {"q": (HIDDEN, HEADS * HEAD), "k": (HIDDEN, KV_HEADS * HEAD),
              "v": (HIDDEN, KV_HEADS * HEAD), "o": (HEADS * HEAD, HIDDEN), "up": (HIDDEN, FFN),
              "gate": (HIDDEN, FFN), "down": (FFN, HIDDEN), "lm": (HIDDEN, VOCAB)}
    for prefix, (k, n) in shapes.items():
        inits += _nbits(prefix, k, n)
    ms = "com.microsoft"
    nodes = [
        helper.make_node("Gather", ["embed", "input_ids"], ["x"]),
        helper.make_node("SimplifiedLayerNormalization", ["x", "ln1"], ["n1"], epsilon=1e-5),
        *(_matmul_4bit(p, "n1", p, *shapes[p]) for p in "qkv"),
        helper.make_node("ReduceSum", ["attention_mask", "one"], ["lens"], keepdims=0),
        helper.make_node("Cast", ["lens"], ["lens32"], to=TensorProto.INT32),
        helper.make_node("Sub", ["lens32", "one32"], ["seqlens_k"]),
        helper.make_node("Shape", ["attention_mask"], ["mask_shape"]),
        helper.make_node("Gather", ["mask_shape", "one"], ["total"], axis=0),
        helper.make_node("Squeeze", ["total"], ["total_scalar"]),
        helper.make_node("Cast", ["total_scalar"], ["total32"], to=TensorProto.INT32),
        helper.make_node("GroupQueryAttention", ["q", "k", "v", "past_key", "past_value",
                                                 "seqlens_k", "total32", "cos", "sin"],
                         ["attn", "present_key", "present_value"], domain=ms,
                         num_heads=HEADS, kv_num_heads=KV_HEADS, do_rotary=1),
        _matmul_4bit("o", "attn", "o", *shapes["o"]),
        helper.make_node("SkipSimplifiedLayerNormalization", ["o", "x", "ln2"],
                         ["n2", "", "", "residual"], domain=ms, epsilon=1e-5),
        _matmul_4bit("up", "n2", "up", *shapes["up"]),
        _matmul_4bit("gate", "n2", "gate", *shapes["gate"]),
        helper.make_node("Sigmoid", ["gate"], ["sg"]),
        helper.make_node("Mul", ["gate", "sg"], ["silu"]),
        helper.make_node("Mul", ["silu", "up"], ["h"]),
        _matmul_4bit("down", "h", "down", *shapes["down"]),
        helper.make_node("Add", ["down", "residual"], ["y"]),
        _matmul_4bit("lm", "y", "out", *shapes["lm"])]
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [batch, seq]),
              helper.make_tensor_value_info("attention_mask", TensorProto.INT64,
                                            [batch, past + seq])]
    inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [batch, KV_HEADS, past, HEAD])
               for n in ("past_key", "past_value")]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
               for n in ("out", "present_key", "present_value")]
    graph = helper.make_graph(nodes, "llm_layer", inputs, outputs, inits)
    return helper.make_model(graph, ir_version=9, opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid(ms, 1)])


@pytest.mark.parametrize("batch,seq,past", [(1, 7, 0), (1, 1, 7), (2, 1, 5)],
                         ids=["prefill", "decode", "decode-batch2"])
def test_llm_layer_prefill_and_decode_match_onnxruntime_through_the_cli(tmp_path, batch, seq,
                                                                        past):
    RNG.bit_generator.state = np.random.default_rng(1).bit_generator.state
    model = tmp_path / "llm.onnx"
    onnx.save(llm_layer(batch, seq, past), model)
    feeds = {"input_ids": RNG.integers(0, VOCAB, (batch, seq)).astype(np.int64),
             "attention_mask": np.ones((batch, past + seq), np.int64),
             "past_key": RNG.standard_normal((batch, KV_HEADS, past, HEAD)).astype(np.float32),
             "past_value": RNG.standard_normal((batch, KV_HEADS, past, HEAD)).astype(
                 np.float32)}
    options = ort.SessionOptions()
    options.log_severity_level = 3  # its own shape inference guesses present's length
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    expected = dict(zip(["out", "present_key", "present_value"], session.run(None, feeds)))
    outputs, profile = run_cli(model, feeds)
    for name, want in expected.items():
        np.testing.assert_allclose(outputs[name], want, atol=1e-5, rtol=1e-5, err_msg=name)
    ops = Counter(op["op_type"] for op in profile)
    assert ops["com.microsoft.MatMulNBits"] == 8 and ops["com.microsoft.GroupQueryAttention"] == 1


@pytest.mark.parametrize("name,build,transform,atol,contrib", MODELS,
                         ids=[m[0] for m in MODELS])
def test_tool_written_model_matches_onnxruntime_through_the_cli(tmp_path, name, build,
                                                                transform, atol, contrib):
    RNG.bit_generator.state = np.random.default_rng(0).bit_generator.state  # any order
    model = tmp_path / f"{name}.onnx"
    transform(build(tmp_path / "float.onnx"), model)
    ops = Counter(n.op_type for n in onnx.load(model).graph.node if n.domain == "com.microsoft")
    assert contrib <= set(ops), f"the tool wrote {dict(ops)}"
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    feeds = {i.name: RNG.standard_normal(i.shape).astype(np.float32)
             for i in session.get_inputs()}
    expected = session.run(["out"], feeds)[0]
    outputs, profile = run_cli(model, feeds)
    np.testing.assert_allclose(outputs["out"], expected, atol=atol, rtol=atol)
    ran = {op["op_type"].removeprefix("com.microsoft.") for op in profile
           if op["op_type"].startswith("com.microsoft.") and op["cycles"] > 0}
    assert contrib <= ran


@pytest.mark.parametrize("quantized", [False, True], ids=["float", "quantize_dynamic"])
def test_a_transformer_optimized_by_onnxruntime_matches_it_through_the_cli(tmp_path,
                                                                            quantized):
    """onnxruntime.transformers' optimizer on an exported-style encoder writes Attention,
    SkipLayerNormalization and FastGelu (the tanh GELU it substitutes when asked);
    quantize_dynamic then makes the Attention a QAttention."""
    from compiler_models import tiny_transformer, token_feeds
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    onnx.save(tiny_transformer(layers=2, causal=False), tmp_path / "float.onnx")
    options = FusionOptions("bert")
    options.enable_gelu_approximation = True
    optimized = optimize_model(str(tmp_path / "float.onnx"), model_type="bert", num_heads=4,
                               hidden_size=32, opt_level=0, optimization_options=options)
    model = tmp_path / "optimized.onnx"
    optimized.save_model_to_file(str(model))
    wanted = {"Attention", "SkipLayerNormalization", "FastGelu"}
    if quantized:
        quantize_dynamic(model, tmp_path / "quantized.onnx", weight_type=QuantType.QInt8,
                         reduce_range=True, extra_options={"DefaultTensorType": TensorProto.FLOAT})
        model, wanted = tmp_path / "quantized.onnx", {"QAttention", "SkipLayerNormalization"}
    contrib = {n.op_type for n in onnx.load(model).graph.node if n.domain == "com.microsoft"}
    assert wanted <= contrib
    feeds = token_feeds(batch=2)
    expected = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(
        ["y"], feeds)[0]
    outputs, _ = run_cli(model, feeds, "--batch", "2")
    np.testing.assert_allclose(outputs["y"], expected, atol=1e-5, rtol=1e-5)
