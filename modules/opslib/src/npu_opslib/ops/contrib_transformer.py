"""onnxruntime's transformer contrib kernels (`com.microsoft`), as its transformer optimizer
and LLM exporters write them: the fused layer norms of BERT (SkipLayerNormalization,
EmbedLayerNormalization), attention with its input projection (Attention), on projected
inputs (MultiHeadAttention) and with grouped KV heads and a KV cache (GroupQueryAttention,
prefill and decode), and rotary position embeddings. Layer norm is LayerNormalization's
`_run`, the softmax attention's masked softmax; masks follow onnxruntime: a masked score is
replaced by `mask_filter_value` (-10000), a causal or windowed one drops out entirely."""

from __future__ import annotations

import numpy as np

from npu_opslib import costs
from npu_opslib.errors import KernelError
from npu_opslib.kernel import register_kernel
from npu_opslib.ops.attention import _heads, _masked_softmax
from npu_opslib.ops.contrib import ContribKernel, ms, shape_of, value_of
from npu_opslib.ops.norm import LayerNormalization, RMSNormalization
from npu_opslib.ops.quant import _int8_precision

MASK_FILTER_VALUE = -10000.0


def _merge_heads(x):
    """[batch, heads, seq, head] -> [batch, seq, heads * head]."""
    b, n, s, h = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, s, n * h)


def attention_cost(sku, precision, groups, q_len, kv_len, head, v_head):
    """Scores and mixing as batched matmuls on the array, the softmax on the vector unit."""
    scores = costs.gemm(sku, precision, q_len, kv_len, head, batch=groups)
    mix = costs.gemm(sku, precision, q_len, v_head, kv_len, batch=groups)
    elements = groups * q_len * kv_len
    return scores + mix + costs.vector(sku, precision, elements, 5, bytes_read=0,
                                       bytes_written=0)


def scaled_dot_product(q, k, v, bias, scale=None, softcap=0.0, smooth=False):
    """softmax(q k^T * scale + bias) v over [batch, heads, seq, head] in float64; `bias`
    additive (-inf drops a key); KV heads repeat for grouped queries. `smooth`: the softmax
    has one more, zero, logit (a sink) in its denominator."""
    if q.shape[1] != k.shape[1]:
        k = np.repeat(k, q.shape[1] // k.shape[1], axis=1)
        v = np.repeat(v, q.shape[1] // v.shape[1], axis=1)
    factor = 1.0 / np.sqrt(q.shape[-1]) if not scale else float(scale)
    scores = (q.astype(np.float64) @ np.swapaxes(k.astype(np.float64), -1, -2)) * factor
    if softcap:
        scores = softcap * np.tanh(scores / softcap)
    scores = scores + bias
    if smooth:
        sink = np.zeros(scores.shape[:-1] + (1,))
        weights = _masked_softmax(np.concatenate([scores, sink], axis=-1))[..., :-1]
    else:
        weights = _masked_softmax(scores)
    return weights @ v.astype(np.float64)


def rotate(x, cos, sin, interleaved):
    """Rotary embedding of x [..., seq, head] with cos/sin [..., seq, rotary/2] (broadcast):
    pairs (x[i], x[i + rotary/2]), or (x[2i], x[2i+1]) interleaved, turn by their angle;
    dimensions past the rotary ones pass through."""
    half = cos.shape[-1]
    rot, rest = x[..., :2 * half].astype(np.float64), x[..., 2 * half:]
    if interleaved:
        x1, x2 = rot[..., 0::2], rot[..., 1::2]
    else:
        x1, x2 = rot[..., :half], rot[..., half:]
    y1, y2 = x1 * cos - x2 * sin, x2 * cos + x1 * sin
    out = np.empty_like(rot)
    if interleaved:
        out[..., 0::2], out[..., 1::2] = y1, y2
    else:
        out[..., :half], out[..., half:] = y1, y2
    return np.concatenate([out.astype(x.dtype), rest], axis=-1)


def _cache_rows(cache, positions):
    return np.asarray(cache, np.float64)[np.asarray(positions, np.int64)]


@register_kernel
class SkipLayerNormalization(ContribKernel):
    """LayerNorm(input + skip + bias) over the last axis; outputs the normalized value, the
    mean and inverse standard deviation, and the sum itself (what the next skip adds)."""

    op_type = ms("SkipLayerNormalization")
    ops_per_element = 8

    def _run(self, x, skip, gamma, beta=None, bias=None, epsilon=1e-12):
        total = x + skip if bias is None else x + skip + bias
        y, mean, inv_std = LayerNormalization._run(self, total, gamma, beta, -1, epsilon)
        return y, mean, inv_std, total.astype(x.dtype)

    def output_shapes(self, key, attrs):
        x = key.shapes[0]
        stat = tuple(x[:-1]) + (1,)
        return [x, stat, stat, x]


@register_kernel
class SimplifiedLayerNormalization(ContribKernel):
    """RMS normalization as onnxruntime registers it in ONNX's own domain (LLM exports of
    onnxruntime-genai write it next to the com.microsoft ops): RMSNormalization's maths,
    with the inverse RMS as a second output."""

    op_type = "SimplifiedLayerNormalization"
    ops_per_element = 5

    def _run(self, x, scale, axis=-1, epsilon=1e-5, stash_type=1):
        y = RMSNormalization._run(self, x, scale, axis, epsilon)[0]
        axes = tuple(range(int(axis) % x.ndim, x.ndim))
        inv_rms = 1.0 / np.sqrt(np.square(x.astype(np.float64)).mean(
            axis=axes, keepdims=True) + epsilon)
        return y, inv_rms.astype(np.float32)

    def output_shapes(self, key, attrs):
        x = key.shapes[0]
        axis = int(attrs.get("axis", -1)) % len(x)
        return [x, tuple(x[:axis]) + (1,) * (len(x) - axis)]


@register_kernel
class SkipSimplifiedLayerNormalization(ContribKernel):
    """RMSNormalization(input + skip + bias) over the last axis (LLM exports); outputs the
    normalized value, the inverse RMS and the sum."""

    op_type = ms("SkipSimplifiedLayerNormalization")
    ops_per_element = 6

    def _run(self, x, skip, gamma, bias=None, epsilon=1e-12):
        total = x + skip if bias is None else x + skip + bias
        y = RMSNormalization._run(self, total, gamma, -1, epsilon)[0]
        inv_rms = 1.0 / np.sqrt(np.square(total.astype(np.float64)).mean(
            axis=-1, keepdims=True) + epsilon)
        return y, np.zeros(inv_rms.shape, x.dtype), inv_rms.astype(x.dtype), total.astype(x.dtype)

    def output_shapes(self, key, attrs):
        x = key.shapes[0]
        stat = tuple(x[:-1]) + (1,)
        return [x, stat, stat, x]


@register_kernel
class EmbedLayerNormalization(ContribKernel):
    """LayerNorm(word[ids] + position[position ids] + segment[segment ids]) of BERT's
    embeddings, and the mask index attention takes: each sequence's count of unmasked
    tokens (zeros without a mask)."""

    op_type = ms("EmbedLayerNormalization")
    ops_per_element = 8
    required_inputs = (2, 3, 5, 6)  # the word and position tables, gamma, beta

    def _run(self, input_ids, segment_ids=None, word_embedding=None, position_embedding=None,
             segment_embedding=None, gamma=None, beta=None, mask=None, position_ids=None,
             epsilon=1e-12, mask_index_type=1):
        batch, seq = input_ids.shape
        if position_ids is None:
            position_ids = np.arange(seq).reshape(1, seq)
        total = word_embedding[input_ids] + position_embedding[
            np.broadcast_to(position_ids, (batch, seq))]
        if segment_ids is not None and segment_embedding is not None:
            total = total + segment_embedding[segment_ids]
        y = LayerNormalization._run(self, total, gamma, beta, -1, epsilon)[0]
        if mask is None:
            mask_index = np.zeros(batch, np.int32)
        else:
            mask_index = (np.asarray(mask) != 0).sum(axis=1).astype(np.int32)
        return y, mask_index, total.astype(word_embedding.dtype)

    def _infer(self, inputs, attrs):
        batch, seq = inputs[0].shape
        hidden = inputs[2].shape[1]
        dtype = inputs[2].dtype
        return [((batch, seq, hidden), dtype), ((batch,), "int32"),
                ((batch, seq, hidden), dtype)]

    def output_shapes(self, key, attrs):
        batch, seq = key.shapes[0]
        hidden = next(s[1] for s in key.shapes[1:] if len(s) == 2 and s != (batch, seq))
        return [(batch, seq, hidden), (batch,), (batch, seq, hidden)]


def _key_mask(mask, batch, q_len, kv_len, past):
    """onnxruntime's mask_index forms as a boolean [batch, 1, q_len, kv_len] (True: kept):
    [B] end positions, [2B] end and start positions, [B, T] or [B, S, T] 0/1, and the
    [B, 1, M, M] causal masks of GPT-2 exports (the rows of the queries)."""
    mask = np.asarray(mask)
    cols = np.arange(kv_len)
    if mask.ndim == 1:
        end = mask[:batch].reshape(batch, 1, 1, 1)
        kept = cols.reshape(1, 1, 1, kv_len) < end
        if mask.size == 2 * batch:
            kept = kept & (cols.reshape(1, 1, 1, kv_len) >= mask[batch:].reshape(batch, 1, 1, 1))
        return kept
    if mask.ndim == 2:
        return (mask != 0).reshape(batch, 1, 1, kv_len)
    if mask.ndim == 3:
        return (mask != 0).reshape(batch, 1, q_len, kv_len)
    return mask[:, :, past:past + q_len, :kv_len] != 0


def _masks(batch, q_len, kv_len, past, mask=None, causal=False,
           filter_value=MASK_FILTER_VALUE):
    """The additive bias of a mask_index and causality, as onnxruntime's Attention builds it."""
    kept = np.ones((1, 1, q_len, kv_len), bool)
    if mask is not None:
        kept = kept & _key_mask(mask, batch, q_len, kv_len, past)
    if causal:
        rows = np.arange(q_len).reshape(q_len, 1) + past
        kept = kept & (np.arange(kv_len).reshape(1, kv_len) <= rows)
    return np.where(kept, 0.0, float(filter_value))


@register_kernel
class Attention(ContribKernel):
    """BERT/GPT-2 attention with its input projection: QKV = X W + bias (split by
    qkv_hidden_sizes), a past (2, B, N, P, H) before the new keys and values, present the
    result; mask_index, attention_bias, unidirectional (causal)."""

    op_type = ms("Attention")
    unit = "array"

    def _run(self, x, weights, bias=None, mask_index=None, past=None, attention_bias=None,
             past_sequence_length=None, *, num_heads, qkv_hidden_sizes=None,
             unidirectional=0, scale=0.0, mask_filter_value=MASK_FILTER_VALUE,
             do_rotary=0, past_present_share_buffer=0, rotary_embedding_dim=0):
        if do_rotary or past_present_share_buffer:
            raise KernelError(f"{self.op_type}: do_rotary and past_present_share_buffer are "
                              "not supported")
        qkv = x.astype(np.float64) @ weights.astype(np.float64)
        if bias is not None:
            qkv = qkv + bias
        return self.attend(qkv, x.dtype, mask_index, past, attention_bias, num_heads=num_heads,
                           qkv_hidden_sizes=qkv_hidden_sizes, unidirectional=unidirectional,
                           scale=scale, mask_filter_value=mask_filter_value)

    def attend(self, qkv, dtype, mask_index, past, attention_bias, *, num_heads,
               qkv_hidden_sizes=None, unidirectional=0, scale=0.0,
               mask_filter_value=MASK_FILTER_VALUE):
        """Attention over the projected Q, K and V [B, S, q + k + v] (and the past)."""
        heads = int(num_heads)
        sizes = list(qkv_hidden_sizes or [qkv.shape[-1] // 3] * 3)
        q, k, v = np.split(qkv, np.cumsum(sizes)[:2], axis=-1)
        q, k, v = _heads(q, heads), _heads(k, heads), _heads(v, heads)
        past_len = 0
        if past is not None:
            past_len = past.shape[3]
            k = np.concatenate([past[0], k], axis=2)
            v = np.concatenate([past[1], v], axis=2)
        batch, _, q_len, _ = q.shape
        bias_add = _masks(batch, q_len, k.shape[2], past_len, mask_index, bool(unidirectional),
                          mask_filter_value)
        if attention_bias is not None:
            bias_add = bias_add + attention_bias
        y = scaled_dot_product(q, k, v, bias_add, scale)
        # present is (2, B, N, T, H): only defined when keys and values have one head size.
        present = np.stack([k, v]) if k.shape == v.shape else np.zeros((2,) + k.shape)
        return _merge_heads(y).astype(dtype), present.astype(dtype)

    def projection_precision(self, sku, key) -> str:
        return key.precision

    def _sizes(self, weights, attrs):
        sizes = attrs.get("qkv_hidden_sizes")
        return list(sizes) if sizes else [weights[1] // 3] * 3

    def _infer(self, inputs, attrs):
        for unsupported in ("do_rotary", "past_present_share_buffer"):
            if attrs.get(unsupported):
                raise KernelError(f"{self.op_type}: {unsupported}=1 is not supported")
        batch, seq, _ = inputs[0].shape
        q_size, _, v_size = self._sizes(inputs[1].shape, attrs)
        heads = int(attrs["num_heads"])
        past = shape_of(inputs, 4)
        total = seq + (past[3] if past else 0)
        return [((batch, seq, v_size), inputs[0].dtype),
                ((2, batch, heads, total, q_size // heads), inputs[0].dtype)]

    def output_shapes(self, key, attrs):
        x, w = key.shapes[:2]
        past = next((s for s in key.shapes[2:] if len(s) == 5 and s[0] == 2), None)
        infos = [None] * 5
        infos[0], infos[1] = _Info(x), _Info(w)
        infos[4] = _Info(past) if past else None
        return [s for s, _ in Attention._infer(self, infos, attrs)]

    def cost(self, sku, key, config, attrs):
        x, w = key.shapes[:2]
        batch, seq, hidden_in = x
        out = self.output_shapes(key, attrs)
        heads = int(attrs["num_heads"])
        q_size, _, v_size = self._sizes(w, attrs)
        projection = costs.gemm(sku, self.projection_precision(sku, key), batch * seq, w[1],
                                hidden_in, config=config)
        return projection + attention_cost(sku, key.precision, batch * heads, seq, out[1][3],
                                           q_size // heads, v_size // heads)


class _Info:
    """A shape standing in for a TensorInfo (cost paths have shapes only)."""

    def __init__(self, shape, dtype=None):
        self.shape, self.dtype, self.value = tuple(shape), dtype, None


@register_kernel
class MultiHeadAttention(ContribKernel):
    """Attention on projected inputs: query [B, S, D]; key/value [B, L, D] (with an optional
    past [B, N, P, H] before them), already in heads [B, N, L, H], or packed with the
    query ([B, S, N, 3, H]) or together ([B, L, N, 2, H]); bias for Q, K, V;
    key_padding_mask ([B] lengths or [B, T] 0/1), attention_bias, unidirectional."""

    op_type = ms("MultiHeadAttention")
    unit = "array"

    def _qkv(self, query, key, value, bias, heads):
        if query.ndim == 5:  # packed [B, S, N, 3, H]
            q, k, v = (query[:, :, :, i].transpose(0, 2, 1, 3) for i in range(3))
            return q, k, v, False
        q = query.astype(np.float64)
        d = q.shape[-1]
        if bias is not None:
            q = q + bias[:d]
        q = _heads(q, heads)
        if key.ndim == 5:  # packed [B, L, N, 2, H]
            return q, key[:, :, :, 0].transpose(0, 2, 1, 3), key[:, :, :, 1].transpose(
                0, 2, 1, 3), False
        if key.ndim == 4:  # already [B, N, L, H]: no bias, no past
            return q, key, value, False
        k, v = key.astype(np.float64), value.astype(np.float64)
        if bias is not None:
            k, v = k + bias[d:2 * d], v + bias[2 * d:]
        return q, _heads(k, heads), _heads(v, heads), True

    def _run(self, query, key=None, value=None, bias=None, key_padding_mask=None,
             attention_bias=None, past_key=None, past_value=None, past_sequence_length=None,
             cache_indirection=None, *, num_heads, mask_filter_value=MASK_FILTER_VALUE,
             scale=0.0, unidirectional=0, **_):
        q, k, v, cached = self._qkv(query, key, value, bias, int(num_heads))
        past_len = 0
        if cached and past_key is not None:
            past_len = past_key.shape[2]
            k = np.concatenate([past_key, k], axis=2)
            v = np.concatenate([past_value, v], axis=2)
        batch, _, q_len, _ = q.shape
        bias_add = _masks(batch, q_len, k.shape[2], past_len, key_padding_mask,
                          bool(unidirectional), mask_filter_value)
        if attention_bias is not None:
            bias_add = bias_add + attention_bias
        y = scaled_dot_product(q, k, v, bias_add, scale)
        dtype = query.dtype
        return _merge_heads(y).astype(dtype), k.astype(dtype), v.astype(dtype)

    def _infer(self, inputs, attrs):
        heads = int(attrs["num_heads"])
        query, key, value = (shape_of(inputs, i) for i in range(3))
        dtype = inputs[0].dtype
        batch, seq = query[:2]
        if len(query) == 5:
            head = v_head = query[-1]
            kv_len = seq
        elif len(key) == 5:
            head = v_head = key[-1]
            kv_len = key[1]
        elif len(key) == 4:
            head, v_head, kv_len = key[-1], value[-1], key[2]
        else:
            head, v_head = query[-1] // heads, value[-1] // heads
            past = shape_of(inputs, 6)
            kv_len = key[1] + (past[2] if past else 0)
        return [((batch, seq, heads * v_head), dtype), ((batch, heads, kv_len, head), dtype),
                ((batch, heads, kv_len, v_head), dtype)]

    def output_shapes(self, key, attrs):
        shapes = list(key.shapes)
        infos = [_Info(s) for s in shapes[:3]] + [None] * 7
        pasts = [s for s in shapes[3:] if len(s) == 4 and len(shapes[1]) == 3]
        if len(pasts) >= 2:
            infos[6] = _Info(pasts[-2])
        return [s for s, _ in self._infer(infos, attrs)]

    def cost(self, sku, key, config, attrs):
        out, present_key, present_value = self.output_shapes(key, attrs)
        batch, heads, kv_len, head = present_key
        return attention_cost(sku, key.precision, batch * heads, out[1], kv_len, head,
                              present_value[-1])


def _rotary_positions(position_ids, batch, seq, offset=None):
    """Position of each token [batch, seq]: position_ids [B, S], or [1] a start offset."""
    if position_ids is None:
        start = np.zeros((batch, 1), np.int64) if offset is None else offset.reshape(batch, 1)
        return start + np.arange(seq).reshape(1, seq)
    ids = np.asarray(position_ids, np.int64)
    if ids.size == 1:
        return ids.reshape(1, 1) + np.arange(seq).reshape(1, seq) + np.zeros((batch, 1), int)
    return np.broadcast_to(ids, (batch, seq))


@register_kernel
class RotaryEmbedding(ContribKernel):
    """Rotary position embedding of input [B, S, N*H] or [B, N, S, H] at position_ids, with
    cos/sin caches [max position, rotary_dim / 2]; pairs interleaved or in halves."""

    op_type = ms("RotaryEmbedding")
    ops_per_element = 6

    def _run(self, x, position_ids, cos_cache, sin_cache, *, interleaved=0, num_heads=0,
             rotary_embedding_dim=0, scale=1.0, is_packed_batching=0):
        if x.ndim == 4:
            xh, three_d = x, False
        else:
            head = x.shape[-1] // int(num_heads) if num_heads else 2 * cos_cache.shape[1]
            xh, three_d = _heads(x, x.shape[-1] // head), True
        batch, _, seq, _ = xh.shape
        positions = _rotary_positions(position_ids, batch, seq)
        half = (int(rotary_embedding_dim) // 2) if rotary_embedding_dim else cos_cache.shape[1]
        cos = _cache_rows(cos_cache, positions)[:, None, :, :half]
        sin = _cache_rows(sin_cache, positions)[:, None, :, :half]
        y = rotate(xh, cos, sin, bool(interleaved))
        return ((_merge_heads(y) if three_d else y).astype(x.dtype),)

    def output_shapes(self, key, attrs):
        return [key.shapes[0]]


@register_kernel
class GroupQueryAttention(ContribKernel):
    """LLM attention with num_heads query heads over kv_num_heads KV heads and a KV cache:
    prefill (the first prompt, no past) and decode (new tokens after each sequence's past,
    seqlens_k[b] + 1 tokens in all). New keys/values are written after the past (present
    [B, kv_N, max(P, total), H]); optional rotary on Q and K at the tokens' positions;
    causal, optionally windowed (local_window_size), softcap. Query may pack Q, K and V."""

    op_type = ms("GroupQueryAttention")
    unit = "array"
    required_inputs = (5, 6)  # seqlens_k, total_sequence_length

    def _run(self, query, key=None, value=None, past_key=None, past_value=None,
             seqlens_k=None, total_sequence_length=None, cos_cache=None, sin_cache=None,
             position_ids=None, attention_bias=None, head_sink=None, *, num_heads,
             kv_num_heads, scale=0.0, softcap=0.0, local_window_size=-1, do_rotary=0,
             rotary_interleaved=0, smooth_softmax=0, qk_output=0):
        heads, kv_heads = int(num_heads), int(kv_num_heads)
        if key is None:  # packed [B, S, (N + 2 kv_N) H]
            head = query.shape[-1] // (heads + 2 * kv_heads)
            query, key, value = np.split(query, [heads * head, (heads + kv_heads) * head],
                                         axis=-1)
        q, k, v = _heads(query, heads), _heads(key, kv_heads), _heads(value, kv_heads)
        batch, _, seq, head = q.shape
        total = int(np.asarray(total_sequence_length).reshape(-1)[0])
        lengths = np.asarray(seqlens_k, np.int64).reshape(batch) + 1
        first_prompt = past_key is None or past_key.shape[2] == 0 or seq == total
        past_lens = np.zeros(batch, np.int64) if first_prompt else lengths - seq
        if do_rotary:
            positions = _rotary_positions(position_ids, batch, seq, past_lens)
            half = cos_cache.shape[1]
            cos = _cache_rows(cos_cache, positions)[:, None, :, :half]
            sin = _cache_rows(sin_cache, positions)[:, None, :, :half]
            q = rotate(q, cos, sin, bool(rotary_interleaved))
            k = rotate(k, cos, sin, bool(rotary_interleaved))
        capacity = max(0 if past_key is None else past_key.shape[2], total)
        present_k = np.zeros((batch, kv_heads, capacity, head), query.dtype)
        present_v = np.zeros((batch, kv_heads, capacity, v.shape[-1]), query.dtype)
        out = np.zeros((batch, heads, seq, v.shape[-1]))
        for b in range(batch):
            start = int(past_lens[b])
            if past_key is not None and start:
                present_k[b, :, :start] = past_key[b, :, :start]
                present_v[b, :, :start] = past_value[b, :, :start]
            present_k[b, :, start:start + seq] = k[b]
            present_v[b, :, start:start + seq] = v[b]
            kv_len = start + seq
            rows = np.arange(seq).reshape(seq, 1) + start
            cols = np.arange(kv_len).reshape(1, kv_len)
            kept = (cols <= rows) & (cols < lengths[b])
            if int(local_window_size) >= 0:
                kept = kept & (rows - cols < int(local_window_size))  # the window holds it
            bias = np.where(kept, 0.0, -np.inf)
            if attention_bias is not None:
                bias = bias + np.asarray(attention_bias)[min(b, attention_bias.shape[0] - 1),
                                                         :, :, :kv_len]
            out[b] = scaled_dot_product(q[b:b + 1], present_k[b:b + 1, :, :kv_len],
                                        present_v[b:b + 1, :, :kv_len], bias, scale,
                                        float(softcap), bool(smooth_softmax))[0]
        return _merge_heads(out).astype(query.dtype), present_k, present_v

    def _geometry(self, query, key, past, total, attrs):
        heads, kv_heads = int(attrs["num_heads"]), int(attrs["kv_num_heads"])
        batch, seq, width = query
        head = width // heads if key else width // (heads + 2 * kv_heads)
        if total is None:  # known at run time only: the usual cache grows by the new tokens
            total = (past[2] if past else 0) + seq
        capacity = max(past[2] if past else 0, total)
        return batch, seq, heads, kv_heads, head, capacity

    def _infer(self, inputs, attrs):
        if shape_of(inputs, 11) is not None:
            raise KernelError(f"{self.op_type}: input 11 (head_sink) is not supported")
        total = value_of(inputs, 6)
        total = None if total is None else int(np.asarray(total).reshape(-1)[0])
        batch, seq, heads, kv_heads, head, capacity = self._geometry(
            shape_of(inputs, 0), shape_of(inputs, 1), shape_of(inputs, 3), total, attrs)
        dtype = inputs[0].dtype
        return [((batch, seq, heads * head), dtype),
                ((batch, kv_heads, capacity, head), dtype),
                ((batch, kv_heads, capacity, head), dtype)]

    def output_shapes(self, key, attrs):
        shapes = key.shapes
        keyed = len(shapes) > 1 and len(shapes[1]) == 3
        past = next((s for s in shapes[1:] if len(s) == 4), None)
        return [s for s, _ in self._infer(
            [_Info(shapes[0]), _Info(shapes[1]) if keyed else None, None,
             _Info(past) if past else None], attrs)]

    def cost(self, sku, key, config, attrs):
        out, present, _ = self.output_shapes(key, attrs)
        batch, seq, width = out
        heads = int(attrs["num_heads"])
        return attention_cost(sku, key.precision, batch * heads, seq, present[2],
                              present[3], present[3])


def _centred(q, zero_point, axis=-1):
    """Integer values minus their zero point (per tensor, or along `axis` per channel)."""
    q = np.asarray(q, np.int64)
    if zero_point is None:
        return q
    zero = np.asarray(zero_point, np.int64)
    if zero.size > 1:
        shape = [1] * q.ndim
        shape[axis] = zero.size
        zero = zero.reshape(shape)
    return q - zero


@register_kernel
class QAttention(Attention):
    """Attention of quantize_dynamic's BERTs: the projection of the quantized input by the
    int8 weights is one integer matmul (centred operands, exact accumulation), rescaled by
    input_scale * weight_scale (per column when the weights' scale is) plus the float bias;
    then Attention's."""

    op_type = ms("QAttention")
    precisions = ("fp32",)

    def _run(self, x, weights, bias, input_scale, weight_scale, mask_index=None,
             input_zero_point=None, weight_zero_point=None, past=None, *, num_heads,
             unidirectional=0, scale=0.0, mask_filter_value=MASK_FILTER_VALUE,
             do_rotary=0, past_present_share_buffer=0, **_):
        if do_rotary or past_present_share_buffer:
            raise KernelError(f"{self.op_type}: do_rotary and past_present_share_buffer are "
                              "not supported")
        accumulator = _centred(x, input_zero_point) @ _centred(weights, weight_zero_point)
        qkv = accumulator * (float(np.asarray(input_scale).reshape(-1)[0])
                             * np.asarray(weight_scale, np.float64).reshape(-1))
        qkv = qkv + np.asarray(bias, np.float64)
        return self.attend(qkv, np.asarray(input_scale).dtype, mask_index, past, None,
                           num_heads=num_heads, unidirectional=unidirectional, scale=scale,
                           mask_filter_value=mask_filter_value)

    def _infer(self, inputs, attrs):
        infos = [inputs[0], inputs[1], None, None, inputs[8] if len(inputs) > 8 else None]
        shapes = Attention._infer(self, infos, attrs)
        dtype = inputs[3].dtype
        return [(shape, dtype) for shape, _ in shapes]

    def projection_precision(self, sku, key) -> str:
        return _int8_precision(sku, key.precision)  # the integer projection, on the array

    def _as_attention(self, key):
        """The key Attention's shape and cost rules read: X, W and a past (rank 5) if any."""
        past = tuple(s for s in key.shapes[2:] if len(s) == 5)
        return type(key)(key.op_type, tuple(key.shapes[:2]) + past, key.precision)

    def output_shapes(self, key, attrs):
        return Attention.output_shapes(self, self._as_attention(key), attrs)

    def cost(self, sku, key, config, attrs):
        return Attention.cost(self, sku, self._as_attention(key), config, attrs)


@register_kernel
class QEmbedLayerNormalization(EmbedLayerNormalization):
    """EmbedLayerNormalization of quantize_dynamic's BERTs: the tables, gamma and beta are
    8-bit with a scale and zero point each (inputs 8-12, 13-17), dequantized once."""

    op_type = ms("QEmbedLayerNormalization")
    precisions = ("fp32",)
    required_inputs = (2, 3, 5, 6, 8, 9, 11, 12)

    def _run(self, input_ids, segment_ids=None, word_embedding=None, position_embedding=None,
             segment_embedding=None, gamma=None, beta=None, mask=None, *params, epsilon=1e-12):
        tables = [word_embedding, position_embedding, segment_embedding, gamma, beta]
        scales, zeros = list(params[:5]), list(params[5:10]) + [None] * (10 - len(params))
        real = [None if t is None else ((t.astype(np.float64) - (0.0 if z is None else float(z)))
                                        * float(s)).astype(np.float32)
                for t, s, z in zip(tables, scales, zeros)]
        y, mask_index, _ = EmbedLayerNormalization._run(
            self, input_ids, segment_ids, real[0], real[1], real[2], real[3], real[4], mask,
            epsilon=epsilon)
        return y, mask_index

    def _infer(self, inputs, attrs):
        (out, _), (mask_index, _), _ = EmbedLayerNormalization._infer(self, inputs, attrs)
        return [(out, inputs[8].dtype), (mask_index, "int32")]
