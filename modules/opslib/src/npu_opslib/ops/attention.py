"""Attention (opset 23+): scaled dot-product attention over heads, with grouped key/value
heads, a boolean or additive mask, causal and sliding-window masking, a KV cache (past and
present keys/values), softcapping, and the optional QK output. Two batched matmuls on the
array with a softmax between them on the vector unit."""

from __future__ import annotations

import numpy as np

from npu_opslib import costs
from npu_opslib.kernel import Kernel, register_kernel


def _heads(x, heads):
    """[batch, seq, hidden] -> [batch, heads, seq, hidden / heads]."""
    batch, seq, hidden = x.shape
    return x.reshape(batch, seq, heads, hidden // heads).transpose(0, 2, 1, 3)


def _as_bias(mask, dtype):
    if mask.dtype == np.bool_:
        return np.where(mask, 0.0, -np.inf).astype(dtype)
    return mask.astype(dtype)


def _masked_softmax(scores):
    peak = scores.max(axis=-1, keepdims=True)
    peak = np.where(np.isneginf(peak), 0.0, peak)
    e = np.exp(scores - peak)
    total = e.sum(axis=-1, keepdims=True)
    return e / np.where(total == 0, 1.0, total)


@register_kernel
class Attention(Kernel):
    op_type = "Attention"
    unit = "array"

    def _run(self, q, k, v, attn_mask=None, past_key=None, past_value=None,
             nonpad_kv_seqlen=None, *, scale=None, is_causal=0, q_num_heads=None,
             kv_num_heads=None, softmax_precision=None, softcap=0.0, qk_matmul_output_mode=0,
             left_window_size=-1, right_window_size=-1):
        dtype = q.dtype
        three_d = q.ndim == 3
        if three_d:
            q, k, v = _heads(q, q_num_heads), _heads(k, kv_num_heads), _heads(v, kv_num_heads)
        if past_key is not None:
            k = np.concatenate([past_key, k], axis=2)
            v = np.concatenate([past_value, v], axis=2)
        present_key, present_value = k, v
        batch, q_heads, q_len, head_size = q.shape
        kv_len = k.shape[2]
        bias = np.zeros((q_len, kv_len))
        if attn_mask is not None:
            mask = attn_mask
            if mask.shape[-1] < kv_len:  # a mask over the new keys only: the rest is masked
                fill = False if mask.dtype == np.bool_ else -np.inf
                mask = np.pad(mask, [(0, 0)] * (mask.ndim - 1) + [(0, kv_len - mask.shape[-1])],
                              constant_values=fill)
            bias = bias + _as_bias(mask, np.float64)
        # Queries sit at the end of the key sequence: past length, or the non-padded length.
        if nonpad_kv_seqlen is not None and past_key is None:
            offset = (np.asarray(nonpad_kv_seqlen).reshape(-1, 1, 1, 1) - q_len)
        else:
            offset = 0 if past_key is None else past_key.shape[2]
        rows = np.arange(q_len).reshape(q_len, 1) + offset
        cols = np.arange(kv_len).reshape(1, kv_len)
        allowed = np.ones(np.broadcast_shapes(np.shape(rows), (1, kv_len)), dtype=bool)
        if is_causal:
            allowed = allowed & (cols <= rows)
        if left_window_size is not None and left_window_size >= 0:
            allowed = allowed & (rows - cols <= left_window_size)
        if right_window_size is not None and right_window_size >= 0:
            allowed = allowed & (cols - rows <= right_window_size)
        if nonpad_kv_seqlen is not None:
            allowed = allowed & (cols < np.asarray(nonpad_kv_seqlen).reshape(-1, 1, 1, 1))
        bias = bias + np.where(allowed, 0.0, -np.inf)
        if q_heads != k.shape[1]:  # grouped-query attention: each KV head serves a group
            k = np.repeat(k, q_heads // k.shape[1], axis=1)
            v = np.repeat(v, q_heads // v.shape[1], axis=1)
        factor = 1.0 / np.sqrt(head_size) if scale is None else float(scale)
        scores = (q.astype(np.float64) @ np.swapaxes(k.astype(np.float64), -1, -2)) * factor
        scores = scores.astype(dtype).astype(np.float64)
        if softcap:
            scores = softcap * np.tanh(scores / softcap)
        qk_output = scores
        with_bias = scores + bias
        if qk_matmul_output_mode == 2:
            qk_output = with_bias
        weights = _masked_softmax(with_bias)
        weights = np.where(np.isneginf(bias.max(axis=-1, keepdims=True)), 0.0, weights)
        if qk_matmul_output_mode == 3:
            qk_output = weights
        y = weights.astype(dtype).astype(np.float64) @ v.astype(np.float64)
        if three_d:
            y = y.transpose(0, 2, 1, 3).reshape(batch, q_len, -1)
        return (y.astype(dtype), present_key, present_value, qk_output.astype(dtype))

    def _problem(self, key, attrs):
        q, k, v = key.shapes[:3]
        if len(q) == 3:
            heads = int(attrs.get("q_num_heads") or 1)
            batch, q_len, head = q[0], q[1], q[2] // heads
            kv_len, v_head = k[1], v[2] // int(attrs.get("kv_num_heads") or heads)
        else:
            batch, heads, q_len, head = q
            kv_len, v_head = k[2], v[3]
        # A past cache (rank 4, the keys' head size) lengthens the keys. Omitted optional
        # inputs leave no shape, so it is recognized by its shape.
        past = [s for s in key.shapes[3:] if len(s) == 4 and s[-1] == head and s[0] == batch]
        if len(past) >= 2:
            kv_len += past[-2][-2]
        return batch * heads, q_len, kv_len, head, v_head

    def output_shapes(self, key, attrs):
        return [key.shapes[0]]

    def cost(self, sku, key, config, attrs):
        groups, q_len, kv_len, head, v_head = self._problem(key, attrs)
        scores = costs.gemm(sku, key.precision, q_len, kv_len, head, batch=groups)
        mix = costs.gemm(sku, key.precision, q_len, v_head, kv_len, batch=groups)
        elements = groups * q_len * kv_len
        softmax = costs.vector(sku, key.precision, elements, 5, bytes_read=0, bytes_written=0)
        return scores + softmax + mix


@register_kernel
class Einsum(Kernel):
    """numpy's einsum; its multiply-accumulates run on the array."""

    op_type = "Einsum"
    unit = "array"

    def _run(self, *inputs, equation):
        return (np.asarray(np.einsum(equation, *inputs, optimize=len(inputs) > 2),
                           dtype=inputs[0].dtype),)

    def output_shapes(self, key, attrs):
        return [key.shapes[0]]

    def cost(self, sku, key, config, attrs):
        # The size of the iteration space is the product of every label's extent.
        equation = attrs["equation"].replace(" ", "")
        operands = equation.split("->")[0].split(",")
        extents: dict[str, int] = {}
        for labels, shape in zip(operands, key.shapes):
            labels = labels.replace("...", "")
            for label, size in zip(labels[::-1], shape[::-1]):
                extents[label] = max(extents.get(label, 1), int(size))
        macs = int(np.prod(list(extents.values()))) if extents else 1
        inner = max(extents.get(operands[0][-1:], 1), 1) if operands[0] else 1
        return costs.gemm(sku, key.precision, max(macs // inner, 1), 1, inner)
