"""Sweeps over the attributes and shapes of the contrib operators with the most variants
(MatMulNBits block quantization, GroupQueryAttention prefill/decode, Attention masks and
past, rotary embeddings): hypothesis draws a few of each, every one must match onnxruntime."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npu_compiler import Engine, compile_model

from contrib_cases import CONST, FEED, Case, _nbits, f32, ints

SWEEP = settings(max_examples=20, deadline=None, derandomize=True,
                 suppress_health_check=list(HealthCheck))


def check(case: Case):
    model = case.model()
    expected = ort.InferenceSession(model.SerializeToString(),
                                    providers=["CPUExecutionProvider"]).run(None, case.feeds)
    outputs, profile = Engine(compile_model(model, "npu-dc")).run(case.feeds)
    for index, want in enumerate(expected):
        np.testing.assert_allclose(outputs[f"out{index}"], want, atol=case.atol,
                                   rtol=case.rtol, err_msg=f"output {index}")
    assert sum(op["cycles"] for op in profile["ops"]) > 0


@SWEEP
@given(bits=st.sampled_from([4, 8]), block=st.sampled_from([16, 32, 64, 128]),
       k=st.integers(16, 160), n=st.integers(1, 24), rows=st.integers(1, 5),
       zero_points=st.booleans(), accuracy=st.sampled_from([0, 4]), seed=st.integers(0, 99))
def test_matmul_nbits(bits, block, k, n, rows, zero_points, accuracy, seed):
    check(Case("MatMulNBits", [(f32(rows, k, seed=seed), FEED)]
               + _nbits(n, k, bits, block, seed=seed, zero_points=zero_points),
               {"K": k, "N": n, "bits": bits, "block_size": block, "accuracy_level": accuracy},
               atol=1e-4, rtol=1e-4))


def _rotary_cache(positions, half):
    angles = np.arange(positions)[:, None] * (1.0 / 10000 ** (np.arange(half) / half))[None]
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


@SWEEP
@given(batch=st.integers(1, 2), group=st.sampled_from([1, 2, 4]), kv_heads=st.integers(1, 2),
       decode=st.booleans(), seq=st.integers(1, 6), past=st.integers(0, 6),
       rotary=st.sampled_from([None, 0, 1]), window=st.sampled_from([-1, 2]),
       seed=st.integers(0, 99))
def test_group_query_attention(batch, group, kv_heads, decode, seq, past, rotary, window, seed):
    heads, head = group * kv_heads, 16  # onnxruntime's CPU kernel: head sizes of 16k
    if not decode:
        past = 0
    elif seq > 1 and past:
        batch = 1  # onnxruntime: several new tokens after a past only for batch 1
    total = past + seq
    inputs = [(f32(batch, seq, heads * head, seed=seed), FEED),
              (f32(batch, seq, kv_heads * head, seed=seed + 1), FEED),
              (f32(batch, seq, kv_heads * head, seed=seed + 2), FEED),
              (f32(batch, kv_heads, past, head, seed=seed + 3), FEED),
              (f32(batch, kv_heads, past, head, seed=seed + 4), FEED),
              (np.full(batch, total - 1, np.int32), FEED),
              (np.array(total, np.int32), CONST)]
    attrs = {"num_heads": heads, "kv_num_heads": kv_heads, "local_window_size": window}
    if rotary is not None:
        cos, sin = _rotary_cache(32, head // 2)
        inputs += [(cos, CONST), (sin, CONST)]
        attrs.update(do_rotary=1, rotary_interleaved=rotary)
    check(Case("GroupQueryAttention", inputs, attrs, outputs=3, atol=1e-4, rtol=1e-4))


@SWEEP
@given(batch=st.integers(1, 2), seq=st.integers(1, 6), heads=st.sampled_from([1, 2, 4]),
       past=st.integers(0, 4), mask=st.sampled_from(["none", "lengths", "raw"]),
       causal=st.booleans(), seed=st.integers(0, 99))
def test_attention(batch, seq, heads, past, mask, causal, seed):
    hidden = 8 * heads
    total = past + seq
    inputs = [(f32(batch, seq, hidden, seed=seed), FEED),
              (f32(hidden, 3 * hidden, seed=seed + 1, scale=0.3), CONST),
              (f32(3 * hidden, seed=seed + 2), CONST)]
    lengths = ints(1, total + 1, (batch,), np.int32, seed)
    if mask == "lengths":
        inputs.append((lengths, FEED))
    elif mask == "raw":
        inputs.append(((np.arange(total)[None] < lengths[:, None]).astype(np.int32), FEED))
    else:
        inputs.append(None)
    outputs = 1
    if past:
        inputs.append((f32(2, batch, heads, past, 8, seed=seed + 3), FEED))
        outputs = 2
    check(Case("Attention", inputs, {"num_heads": heads, "unidirectional": int(causal)},
               outputs=outputs, atol=1e-4, rtol=1e-4))


@SWEEP
@given(batch=st.integers(1, 2), seq=st.integers(1, 6), heads=st.sampled_from([1, 2, 4]),
       head=st.sampled_from([8, 16]), interleaved=st.booleans(), bnsh=st.booleans(),
       partial=st.booleans(), seed=st.integers(0, 99))
def test_rotary_embedding(batch, seq, heads, head, interleaved, bnsh, partial, seed):
    rotary = head // 2 if partial else head
    cos, sin = _rotary_cache(16, rotary // 2)
    shape = (batch, heads, seq, head) if bnsh else (batch, seq, heads * head)
    positions = ints(0, 16 - seq, (batch, 1), np.int64, seed) + np.arange(seq)
    attrs = {"interleaved": int(interleaved)}
    if not bnsh:
        attrs["num_heads"] = heads
    if partial:
        attrs.update(rotary_embedding_dim=rotary, num_heads=heads)
    check(Case("RotaryEmbedding", [(f32(*shape, seed=seed), FEED), (positions, FEED),
                                   (cos, CONST), (sin, CONST)], attrs))
