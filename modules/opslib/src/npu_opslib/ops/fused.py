"""Kernels of the patterns the compiler fuses into ops of their own: attention
(MatMul-Softmax-MatMul with its scale and mask in one kernel). Layer norm and GELU fuse into
the standard LayerNormalization and Gelu kernels."""

from __future__ import annotations

import numpy as np

from npu_opslib import costs
from npu_opslib.kernel import Kernel, register_kernel


def _softmax_last(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_last_inplace(x):
    """`_softmax_last` overwriting x (the same operations, so the same numbers)."""
    np.subtract(x, x.max(axis=-1, keepdims=True), out=x)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)
    return x


SCORES_CHUNK_BYTES = 1 << 20
"""Bytes of scores per chunk of a batch in FusedAttention: a batch of sequences runs a few at a
time so its scores and probabilities stay in cache (a whole batch's left it)."""


@register_kernel
class FusedAttention(Kernel):
    """softmax(Q @ Kt * scale + mask) @ V as one kernel: the S x S scores and probabilities
    stay in SRAM instead of four DRAM round trips (scale, mask, softmax, second matmul).
    Inputs: Q [..., S, D], Kt [..., D, Sk] (keys already transposed), V [..., Sk, Dv] and
    an optional additive mask broadcastable to the scores."""

    op_type = "FusedAttention"
    unit = "array"
    int8_operands = 3  # Q, Kt, V; the probabilities are quantized with their fixed range
    int8_bias = None
    SOFTMAX_OPS = 5

    def _run(self, q, k_t, v, mask=None, scale=1.0):
        operands = [q, k_t, v] + ([] if mask is None else [mask])
        ndim = max(np.ndim(x) for x in operands)
        n = q.shape[0] if q.ndim == ndim >= 3 else 1
        per_item = q[0].shape[-2] * k_t.shape[-1] * q.itemsize * \
            int(np.prod(q.shape[1:-2])) if n > 1 else 0
        chunk = max(1, SCORES_CHUNK_BYTES // max(per_item, 1))
        if n <= 1 or chunk >= n:
            return (self._attend(q, k_t, v, mask, scale),)
        # Slices along the batch: an operand with the batch's leading dimension is cut with
        # it, one broadcast over it (a mask of [1, ...], fewer dimensions) is used whole.
        parts = [self._attend(*[x[start:start + chunk] if x is not None and np.ndim(x) == ndim
                                and x.shape[0] == n else x for x in (q, k_t, v, mask)], scale)
                 for start in range(0, n, chunk)]
        return (np.concatenate(parts),)

    @staticmethod
    def _attend(q, k_t, v, mask, scale):
        scores = np.matmul(q, k_t)
        if scale != 1.0:
            scores *= np.asarray(scale, scores.dtype)
        if mask is not None:
            in_place = np.result_type(scores, mask) == scores.dtype and \
                np.broadcast_shapes(scores.shape, np.shape(mask)) == scores.shape
            scores = np.add(scores, mask, out=scores) if in_place else scores + mask
        return np.matmul(_softmax_last_inplace(scores), v).astype(q.dtype, copy=False)

    def _run_int8(self, inputs, attrs, scales):
        from npu_driver.precision import INT8_MAX, quantize_int8

        q, k_t, v = (quantize_int8(x, s)[0].astype(np.float64)
                     for x, s in zip(inputs[:3], scales))
        scores = np.matmul(q, k_t) * (scales[0] * scales[1] * float(attrs.get("scale", 1.0)))
        if len(inputs) > 3 and inputs[3] is not None:
            scores = scores + inputs[3]
        # Probabilities lie in [0, 1]: a fixed scale of 1/127 covers them.
        probs = quantize_int8(_softmax_last(scores), 1.0 / INT8_MAX)[0].astype(np.float64)
        return ((np.matmul(probs, v) * (scales[2] / INT8_MAX)).astype(np.float32),)

    def _dims(self, key):
        q, k_t, v = key.shapes[:3]
        batch = tuple(np.broadcast_shapes(q[:-2], k_t[:-2], v[:-2]))
        return batch, q[-2], k_t[-1], q[-1], v[-1]

    def output_shapes(self, key, attrs):
        batch, s, _, _, dv = self._dims(key)
        return [batch + (s, dv)]

    def cost(self, sku, key, config, attrs):
        batch, s, sk, d, dv = self._dims(key)
        count = int(np.prod(batch))
        scores = costs.gemm(sku, key.precision, s, sk, d, batch=count)
        context = costs.gemm(sku, key.precision, s, dv, sk, batch=count)
        vector_precision = "fp32" if key.precision == "int8" else key.precision
        mask_bytes = int(np.prod(key.shapes[3])) * costs.itemsize(key.precision) \
            if len(key.shapes) > 3 else 0
        extra_ops = (attrs.get("scale", 1.0) != 1.0) + (len(key.shapes) > 3)
        softmax = costs.vector(sku, vector_precision, count * s * sk,
                               self.SOFTMAX_OPS + extra_ops, bytes_read=mask_bytes,
                               bytes_written=0)
        return scores + context + softmax
