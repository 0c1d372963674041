"""onnxruntime's quantized contrib kernels (`com.microsoft`), as its quantization tools write
them: dynamic quantization of activations (DynamicQuantizeMatMul, DynamicQuantizeLSTM), the
QLinear elementwise ops of static quantization, int16 matmul, and 2/4/8-bit block-quantized
weights (MatMulNBits). Products run as the array does: integer operands centred on their zero
points, exact integer accumulation, one rescale at the end (the maths of MatMulInteger and
DynamicQuantizeLinear, reused). The elementwise requantizations compute in float32 and round
half to even, as onnxruntime's MLAS does; a function of one 8-bit input is a 256-entry table."""

from __future__ import annotations

import numpy as np

from npu_opslib import costs
from npu_opslib.errors import KernelError
from npu_opslib.kernel import KernelKey, register_kernel
from npu_opslib.ops.contrib import ContribKernel, ms
from npu_opslib.ops.matrix import MatMul, matmul_shape
from npu_opslib.ops.nn import AveragePool
from npu_opslib.ops.quant import DequantizeLinear as OnnxDequantizeLinear
from npu_opslib.ops.quant import (DynamicQuantizeLinear, MatMulInteger, _int8_precision,
                                  _saturate)
from npu_opslib.ops.quant import QuantizeLinear as OnnxQuantizeLinear
from npu_opslib.ops.recurrent import LSTM

F32 = np.float32


def dynamic_quantized(x):
    """`x` as DynamicQuantizeLinear stores it (uint8, scale, zero point): what onnxruntime's
    dynamic quantization computes for an activation before each integer matmul."""
    return DynamicQuantizeLinear._run(None, np.asarray(x, F32))


def dequantized(q, scale, zero_point=None, axis=None):
    """(q - zero_point) * scale in float64 (exact for 8-bit values); a vector scale or zero
    point applies along `axis`."""
    def along(p):
        p = np.asarray(p, np.float64)
        if p.size > 1 and axis is not None:
            shape = [1] * q.ndim
            shape[axis] = p.size
            return p.reshape(shape)
        return p.reshape(()) if p.size == 1 else p

    zero = 0.0 if zero_point is None else along(zero_point)
    return (q.astype(np.float64) - zero) * along(scale)


def _zero(zero_point, like):
    return np.zeros((), like.dtype) if zero_point is None else np.asarray(zero_point)


class IntegerMatMul(MatMul, ContribKernel):
    """Matrix contrib kernels: the array at int8 where the SKU has it."""

    fusions = ("",)
    precisions = ("fp32",)

    def _run_into(self, out, *inputs, **attrs):
        return self._run(*inputs, **attrs)

    def cost(self, sku, key, config, attrs):
        return MatMulInteger.cost(self, sku, key, config, attrs)


@register_kernel
class DynamicQuantizeMatMul(IntegerMatMul):
    """A quantized on the fly to uint8 (DynamicQuantizeLinear), times the int8/uint8 weight B
    (MatMulInteger: int32 accumulation), scaled by a_scale * b_scale, plus bias."""

    op_type = ms("DynamicQuantizeMatMul")

    def _run(self, a, b, b_scale, b_zero_point=None, bias=None):
        a_q, a_scale, a_zero = dynamic_quantized(a)
        accumulator = MatMulInteger._run(self, a_q, b, a_zero, b_zero_point)[0]
        scale = np.asarray(b_scale, F32) * a_scale  # per column when b_scale is
        y = accumulator.astype(F32) * scale
        if bias is not None:
            y = y + np.asarray(bias, F32)
        return (y.astype(F32),)


@register_kernel
class MatMulInteger16(IntegerMatMul):
    """int16 x int16 -> int32 (no zero points)."""

    op_type = ms("MatMulInteger16")

    def _run(self, a, b):
        return MatMulInteger._run(self, a, b)

    def _infer(self, inputs, attrs):
        return [(matmul_shape(inputs[0].shape, inputs[1].shape), "int32")]


class QLinearElementwise(ContribKernel):
    """Quantized elementwise ops on the vector unit: integer in, integer out."""

    precisions = ("fp32",)
    ops_per_element = 4

    def output_shapes(self, key, attrs):
        return [tuple(np.broadcast_shapes(key.shapes[0], key.shapes[3]))]


@register_kernel
class QLinearAdd(QLinearElementwise):
    """C = (A - za) * sa / sc + (B - zb) * sb / sc + zc, rounded and saturated."""

    op_type = ms("QLinearAdd")

    def _run(self, a, a_scale, a_zero_point, b, b_scale, b_zero_point, c_scale,
             c_zero_point=None):
        c_zero = _zero(c_zero_point, a)
        ratio_a = F32(a_scale) / F32(c_scale)
        ratio_b = F32(b_scale) / F32(c_scale)
        value = (ratio_a * (a.astype(np.int32) - np.int32(a_zero_point)).astype(F32)
                 + ratio_b * (b.astype(np.int32) - np.int32(b_zero_point)).astype(F32)
                 + F32(c_zero))
        return (_saturate(value, c_zero.dtype),)


@register_kernel
class QLinearMul(QLinearElementwise):
    """C = (A - za)(B - zb) * sa sb / sc + zc, the product exact in int32."""

    op_type = ms("QLinearMul")

    def _run(self, a, a_scale, a_zero_point, b, b_scale, b_zero_point, c_scale,
             c_zero_point=None):
        c_zero = _zero(c_zero_point, a)
        product = (a.astype(np.int32) - np.int32(a_zero_point)) * (
            b.astype(np.int32) - np.int32(b_zero_point))
        multiplier = F32(a_scale) * F32(b_scale) / F32(c_scale)
        return (_saturate(product.astype(F32) * multiplier + F32(c_zero), c_zero.dtype),)


def lookup_table(fn, x_dtype, x_scale, x_zero, y_scale, y_zero):
    """The 256 outputs of y = quantize(fn(dequantize(x))) over every 8-bit x, in x's order:
    an 8-bit unary op is one table lookup per element."""
    info = np.iinfo(x_dtype)
    codes = np.arange(info.min, info.max + 1)
    real = F32(x_scale) * (codes - int(x_zero)).astype(F32)
    y = np.rint(fn(real).astype(F32) / F32(y_scale)) + F32(y_zero)
    return _saturate(y, np.asarray(y_zero).dtype), info.min


def _table_lookup(x, table, low):
    return table[x.astype(np.int32) - low]


@register_kernel
class QLinearSigmoid(QLinearElementwise):
    op_type = ms("QLinearSigmoid")

    def _run(self, x, x_scale, x_zero_point, y_scale, y_zero_point=None):
        y_zero = _zero(y_zero_point, x)
        x_zero = _zero(x_zero_point, x)
        table, low = lookup_table(lambda v: 1.0 / (1.0 + np.exp(-v.astype(np.float64))),
                                  x.dtype, x_scale, x_zero, y_scale, y_zero)
        return (_table_lookup(x, table, low),)

    def output_shapes(self, key, attrs):
        return [key.shapes[0]]


@register_kernel
class QLinearGlobalAveragePool(QLinearElementwise):
    """The int32 sum over the spatial axes, requantized once: (sum - zx n) * sx / (sy n) + zy
    (n the pixels per channel); NCHW, or NHWC with channels_last."""

    op_type = ms("QLinearGlobalAveragePool")

    def _run(self, x, x_scale, x_zero_point, y_scale, y_zero_point=None, channels_last=0):
        y_zero = _zero(y_zero_point, x)
        axes = tuple(range(1, x.ndim - 1)) if channels_last else tuple(range(2, x.ndim))
        pixels = int(np.prod([x.shape[a] for a in axes]))
        total = x.astype(np.int32).sum(axis=axes, keepdims=True, dtype=np.int32)
        total = total - np.int32(_zero(x_zero_point, x)) * np.int32(pixels)
        scale = F32(x_scale) / (F32(y_scale) * F32(pixels))
        return (_saturate(total.astype(F32) * scale + F32(y_zero), y_zero.dtype),)

    def output_shapes(self, key, attrs):
        x = key.shapes[0]
        if attrs.get("channels_last"):
            return [(x[0],) + (1,) * (len(x) - 2) + (x[-1],)]
        return [tuple(x[:2]) + (1,) * (len(x) - 2)]

    def cost(self, sku, key, config, attrs):
        elements = int(np.prod(key.shapes[0]))
        return ContribKernel.cost(self, sku, key, config, attrs) + costs.vector(
            sku, key.precision, elements, 1, bytes_read=0, bytes_written=0)


@register_kernel
class QLinearConcat(QLinearElementwise):
    """Inputs (Y_scale, Y_zero_point, then X, X_scale, X_zero_point per tensor): each tensor
    requantized to Y's scale (a table per input) and concatenated along `axis`."""

    op_type = ms("QLinearConcat")

    def _run(self, y_scale, y_zero_point, *tensors, axis):
        if len(tensors) % 3:
            raise KernelError(f"{self.op_type}: inputs after Y_scale, Y_zero_point come in "
                              f"(X, X_scale, X_zero_point) triples, got {len(tensors)}")
        y_zero = np.asarray(y_zero_point)
        parts = []
        for x, x_scale, x_zero in zip(tensors[::3], tensors[1::3], tensors[2::3]):
            if F32(x_scale) == F32(y_scale) and int(x_zero) == int(y_zero):
                parts.append(x.astype(y_zero.dtype))
                continue
            table, low = lookup_table(lambda v: v, x.dtype, x_scale, x_zero, y_scale, y_zero)
            parts.append(_table_lookup(x, table, low))
        return (np.concatenate(parts, axis=int(axis)),)

    def _infer(self, inputs, attrs):
        shapes = [i.shape for i in inputs[2::3]]
        axis = int(attrs["axis"]) % len(shapes[0])
        shape = list(shapes[0])
        shape[axis] = sum(s[axis] for s in shapes)
        return [(tuple(shape), inputs[1].dtype)]

    def output_shapes(self, key, attrs):
        shapes = key.shapes[2::3]
        axis = int(attrs["axis"]) % len(shapes[0])
        return [tuple(sum(s[axis] for s in shapes) if i == axis else d
                      for i, d in enumerate(shapes[0]))]


def _lstm_weights(q, scale, zero_point):
    """An onnxruntime quantized LSTM weight [dirs, in, gates*hidden] (scale, zero point per
    direction or per direction and column) as ONNX LSTM's [dirs, gates*hidden, in]."""
    scale = np.asarray(scale, np.float64)
    zero = np.zeros_like(scale) if zero_point is None else np.asarray(zero_point, np.float64)
    per_column = scale.ndim == 2
    scale = scale.reshape(q.shape[0], 1, -1 if per_column else 1)
    zero = zero.reshape(q.shape[0], 1, -1 if per_column else 1)
    return np.swapaxes((q.astype(np.float64) - zero) * scale, 1, 2)


@register_kernel
class DynamicQuantizeLSTM(LSTM, ContribKernel):
    """ONNX's LSTM with int8/uint8 weights W [dirs, in, 4h] and R [dirs, h, 4h] (transposed
    against ONNX's), each with a per-direction or per-column scale and zero point. As
    onnxruntime runs it, X (the whole sequence, for the input projection) and the hidden
    state (at every step and per sequence, for the recurrence) are quantized dynamically to
    uint8, so every product is an integer one; the gates are float."""

    op_type = ms("DynamicQuantizeLSTM")
    precisions = ("fp32",)
    required_inputs = (8, 10)  # W_scale, R_scale

    def _run(self, x, w, r, b=None, sequence_lens=None, initial_h=None, initial_c=None,
             p=None, w_scale=None, w_zero_point=None, r_scale=None, r_zero_point=None,
             **attrs):
        x_q, x_scale, x_zero = dynamic_quantized(x)
        x_real = dequantized(x_q, x_scale, x_zero).astype(x.dtype)
        return LSTM._run(self, x_real, _lstm_weights(w, w_scale, w_zero_point),
                         _lstm_weights(r, r_scale, r_zero_point), b, sequence_lens,
                         initial_h, initial_c, p, **attrs)

    def step(self, xw, state, r, rb, peephole, functions, clip, hidden, options):
        h, c = state
        # Each sequence's hidden state has its own scale and zero point (onnxruntime's
        # recurrence multiplies one batch row at a time).
        h = np.stack([dequantized(*dynamic_quantized(row)) for row in h])
        return LSTM.step(self, xw, [h, c], r, rb, peephole, functions, clip, hidden, options)

    def _as_onnx(self, key):
        x, w, r = key.shapes[:3]
        return type(key)(key.op_type, (x, (w[0], w[2], w[1]), (r[0], r[2], r[1])),
                         key.precision, key.layout)

    def output_shapes(self, key, attrs):
        return LSTM.output_shapes(self, self._as_onnx(key), attrs)

    def cost(self, sku, key, config, attrs):
        key = self._as_onnx(key)
        return LSTM.cost(self, sku, type(key)(key.op_type, key.shapes,
                                              _int8_precision(sku, key.precision),
                                              key.layout), config, attrs)


INT8_ACCURACY = 4  # MatMulNBits' accuracy_level for int8 compute


def _int8_blocks_matmul(a, centred, scale, block):
    """A [..., K] times the blocked weight as the array computes it at accuracy level 4: each
    row's blocks of A quantized to int8 with their own scale (max |a| / 127), integer dot
    products per block (exact in int32), each block's sum rescaled by both scales."""
    K = a.shape[-1]
    blocks = -(-K // block)
    rows = np.zeros((int(np.prod(a.shape[:-1])), blocks * block), F32)
    rows[:, :K] = a.reshape(-1, K)
    rows = rows.reshape(-1, blocks, block)
    a_scale = np.abs(rows).max(axis=-1, keepdims=True) / F32(127)
    inverse = np.divide(F32(1), a_scale, out=np.zeros_like(a_scale), where=a_scale > 0)
    a_q = np.rint(rows * inverse).astype(np.int64)
    n = centred.shape[0]
    w_q = np.zeros((n, blocks * block), np.int64)
    w_q[:, :K] = centred
    w_scale = scale[:, ::block]  # [N, K] per value -> [N, blocks]
    sums = np.einsum("mbk,nbk->mnb", a_q, w_q.reshape(n, blocks, block))
    y = (sums * a_scale.astype(np.float64).reshape(-1, 1, blocks) * w_scale[None]).sum(-1)
    return y.reshape(a.shape[:-1] + (n,))


def unpack_bits(packed, bits: int, count: int):
    """`count` unsigned `bits`-bit values per row from bytes packed low bits first."""
    packed = np.asarray(packed, np.uint8)
    per_byte = 8 // bits
    shifts = (np.arange(per_byte, dtype=np.uint8) * bits)
    values = (packed[..., None] >> shifts) & np.uint8((1 << bits) - 1)
    return values.reshape(packed.shape[:-1] + (-1,))[..., :count]


@register_kernel
class MatMulNBits(MatMul, ContribKernel):
    """A [..., K] times B^T, B [N, K] stored in blocks of `block_size` along K with `bits`
    (2, 4 or 8) per value, low bits first: w = (q - zero) * scale per (row, block), the zero
    point 2^(bits-1) unless given (packed like B, or as floats). The weights are expanded
    block by block in SRAM and the products accumulate on the array: in float, or with
    accuracy_level=4 as int8 x intN blocks (A quantized per block of each row, see
    `_int8_blocks_matmul`), costed at int8."""

    op_type = ms("MatMulNBits")
    fusions = ("",)
    precisions = ("fp32", "fp16", "bf16")

    def weight_blocks(self, b, scales, zero_points, g_idx, K, N, bits, block_size):
        """The weight's values centred on their zero points [N, K] and the scale of each
        value's block [N, K]."""
        if bits not in (2, 4, 8):
            raise KernelError(f"{self.op_type}: bits={bits} is not 2, 4 or 8")
        blocks = -(-K // block_size)
        q = unpack_bits(np.asarray(b).reshape(N, blocks, -1), bits, block_size)
        q = q.reshape(N, blocks * block_size)[:, :K].astype(np.float64)
        scale = np.asarray(scales, np.float64).reshape(N, blocks)
        if zero_points is None:
            zero = np.full((N, blocks), float(1 << (bits - 1)))
        elif np.issubdtype(np.asarray(zero_points).dtype, np.floating):
            zero = np.asarray(zero_points, np.float64).reshape(N, blocks)  # not packed
        else:
            zero = unpack_bits(np.asarray(zero_points).reshape(N, -1), bits,
                               blocks).astype(np.float64)
        block_of = (np.arange(K) // block_size if g_idx is None
                    else np.asarray(g_idx, np.int64).reshape(-1)[:K])
        return q - zero[:, block_of], scale[:, block_of]

    def _run(self, a, b, scales, zero_points=None, g_idx=None, bias=None, *, K, N, bits=4,
             block_size, accuracy_level=0):
        K, N, block_size = int(K), int(N), int(block_size)
        centred, scale = self.weight_blocks(b, scales, zero_points, g_idx, K, N, int(bits),
                                            block_size)
        if int(accuracy_level) == INT8_ACCURACY and g_idx is None:
            y = _int8_blocks_matmul(a, centred, scale, block_size)
        else:
            y = a.astype(np.float64) @ (centred * scale).T
        if bias is not None:
            y = y + np.asarray(bias, np.float64)
        return (y.astype(a.dtype),)

    def _run_into(self, out, *inputs, **attrs):
        return self._run(*inputs, **attrs)

    def _infer(self, inputs, attrs):
        bits, k, n, block = (int(attrs.get(name, 4)) for name in ("bits", "K", "N",
                                                                    "block_size"))
        blob = (n, -(-k // block), block * bits // 8) if bits in (2, 4, 8) else None
        if blob is None or block < 16 or block & (block - 1):
            raise KernelError(f"{self.op_type}: bits={bits}, block_size={block}: expected "
                              "bits 2, 4 or 8 and a power-of-two block_size >= 16")
        if tuple(inputs[1].shape) != blob or tuple(inputs[0].shape[-1:]) != (k,):
            raise KernelError(f"{self.op_type}: A {list(inputs[0].shape)} and B "
                              f"{list(inputs[1].shape)} do not fit K={k}, N={n}: expected "
                              f"A [..., {k}] and B {list(blob)}")
        return ContribKernel._infer(self, inputs, attrs)

    def output_shapes(self, key, attrs):
        return [tuple(key.shapes[0][:-1]) + (int(attrs["N"]),)]

    def _bmnk(self, key, attrs=None):
        a = key.shapes[0]
        n = int(attrs["N"]) if attrs else int(key.shapes[1][0])
        return 1, int(np.prod(a[:-1])), n, int(a[-1])

    def configs(self, key, attrs):
        from npu_opslib.ops.matrix import tile_configs

        _, M, N, K = self._bmnk(key, attrs)
        return tile_configs(M, N, K)

    def cost(self, sku, key, config, attrs):
        _, M, N, K = self._bmnk(key, attrs)
        precision = key.precision
        if int(attrs.get("accuracy_level", 0)) == INT8_ACCURACY:
            precision = _int8_precision(sku, precision)
        return costs.gemm(sku, precision, M, N, K, config=config)


@register_kernel
class QGemm(IntegerMatMul):
    """Gemm of quantized A and B (transA, transB): the int32 accumulator of the centred
    operands plus C (int32, at scale alpha * sa * sb), times alpha * sa * sb; requantized to
    y_scale and y_zero_point when given, float otherwise."""

    op_type = ms("QGemm")

    def _run(self, a, a_scale, a_zero_point, b, b_scale, b_zero_point, c=None, y_scale=None,
             y_zero_point=None, *, alpha=1.0, transA=0, transB=0):
        a = a.T if transA else a
        b = b.T if transB else b
        accumulator = MatMulInteger._run(self, a, b, a_zero_point, b_zero_point)[0]
        if c is not None:
            accumulator = accumulator + np.asarray(c, np.int32)
        scale = F32(alpha) * F32(a_scale) * np.asarray(b_scale, F32).reshape(-1)
        y = accumulator.astype(F32) * (scale if scale.size > 1 else scale.reshape(()))
        if y_scale is None:
            return (y.astype(F32),)
        zero = _zero(y_zero_point, a)
        return (_saturate(y / F32(y_scale) + F32(zero), zero.dtype),)

    def _operands(self, key, attrs):
        a, b = key.shapes[0], key.shapes[3]
        a = a[::-1] if attrs.get("transA") else a
        b = b[::-1] if attrs.get("transB") else b
        return type(key)(key.op_type, (a, b), key.precision, key.layout)

    def _infer(self, inputs, attrs):
        shape = self.output_shapes(KernelKey(self.op_type, tuple(
            i.shape for i in inputs[:4])), attrs)[0]
        quantized = len(inputs) > 8 and inputs[8] is not None
        return [(shape, inputs[8].dtype if quantized else "float32")]

    def output_shapes(self, key, attrs):
        return MatMul.output_shapes(self, self._operands(key, attrs), attrs)

    def configs(self, key, attrs):
        return MatMul.configs(self, self._operands(key, attrs), attrs)

    def cost(self, sku, key, config, attrs):
        return IntegerMatMul.cost(self, sku, self._operands(key, attrs), config, attrs)


@register_kernel
class QLinearLeakyRelu(QLinearElementwise):
    op_type = ms("QLinearLeakyRelu")

    def _run(self, x, x_scale, x_zero_point, y_scale, y_zero_point=None, alpha=0.01):
        y_zero = _zero(y_zero_point, x)
        table, low = lookup_table(lambda v: np.where(v >= 0, v, v * F32(alpha)), x.dtype,
                                  x_scale, _zero(x_zero_point, x), y_scale, y_zero)
        return (_table_lookup(x, table, low),)

    def output_shapes(self, key, attrs):
        return [key.shapes[0]]


@register_kernel
class QuantizeLinear(OnnxQuantizeLinear, ContribKernel):
    """onnxruntime's QuantizeLinear (its QDQ format with 16-bit or contrib ops): ONNX's."""

    op_type = ms("QuantizeLinear")

    def _infer(self, inputs, attrs):
        zero = inputs[2] if len(inputs) > 2 else None
        return [(tuple(inputs[0].shape), zero.dtype if zero is not None else "uint8")]


@register_kernel
class DequantizeLinear(OnnxDequantizeLinear, ContribKernel):
    op_type = ms("DequantizeLinear")

    def _infer(self, inputs, attrs):
        return [(tuple(inputs[0].shape), inputs[1].dtype)]


@register_kernel
class QLinearAveragePool(AveragePool, ContribKernel):
    """AveragePool of the dequantized values in float32 (as onnxruntime), quantized to
    y_scale and y_zero_point; NCHW, or NHWC with channels_last."""

    op_type = ms("QLinearAveragePool")
    layouts = ("any",)
    precisions = ("fp32",)

    def _run(self, x, x_scale, x_zero_point, y_scale, y_zero_point=None, *, channels_last=0,
             **attrs):
        y_zero = _zero(y_zero_point, x)
        real = F32(x_scale) * (x.astype(np.int32) - np.int32(_zero(x_zero_point, x))).astype(F32)
        if channels_last:
            real = np.moveaxis(real, -1, 1)
        mean = AveragePool._run(self, real, **attrs)[0]
        if channels_last:
            mean = np.moveaxis(mean, 1, -1)
        return (_saturate(mean / F32(y_scale) + F32(y_zero), y_zero.dtype),)

    def _as_nchw(self, key, attrs):
        x = key.shapes[0]
        if attrs.get("channels_last"):
            x = (x[0], x[-1]) + tuple(x[1:-1])
        return type(key)(key.op_type, (x,), key.precision, "NCHW")

    def output_shapes(self, key, attrs):
        shape = AveragePool.output_shapes(self, self._as_nchw(key, attrs), attrs)[0]
        if attrs.get("channels_last"):
            shape = (shape[0],) + tuple(shape[2:]) + (shape[1],)
        return [shape]

    def cost(self, sku, key, config, attrs):
        return AveragePool.cost(self, sku, self._as_nchw(key, attrs), config, attrs)


SOFTMAX_RESERVED_BITS = 5  # onnxruntime's headroom below float32's maximum for the sum


def softmax_table(x_scale, reduce_len: int):
    """onnxruntime's exponentials of the 256 codes as float32, shifted up by as many x_scale
    steps as keep a sum of `reduce_len` of them finite: exp((i - 255 + shift) * x_scale)."""
    headroom = np.log(np.finfo(F32).max / reduce_len)
    shift = max(0.0, headroom - SOFTMAX_RESERVED_BITS) / float(F32(x_scale))
    codes = np.arange(256, dtype=np.float64)
    return np.exp((codes - 255 + shift) * float(F32(x_scale))).astype(F32)


@register_kernel
class QLinearSoftmax(QLinearElementwise):
    """Softmax of 8-bit codes, as onnxruntime computes it: a table of exponentials indexed by
    the code's distance from the row's maximum (so no float input is formed), the row's sum
    accumulated in float32 in order, y = round(e * floor(1 / y_scale) / sum) + y_zero,
    saturated (onnxruntime wraps an int8 result of 128 to -128; this kernel saturates). At
    opset < 13 the softmax runs over the input flattened from `axis`, at 13 along it."""

    op_type = ms("QLinearSoftmax")

    def _run(self, x, x_scale, x_zero_point, y_scale, y_zero_point=None, *, opset,
             axis=None):
        y_zero = _zero(y_zero_point, x)
        axis = (1 if int(opset) < 13 else -1) if axis is None else int(axis)
        axis %= x.ndim
        if int(opset) < 13:
            rows = x.reshape(int(np.prod(x.shape[:axis], dtype=np.int64)), -1)
        else:
            rows = np.moveaxis(x, axis, -1)
        length = rows.shape[-1]
        table = softmax_table(x_scale, length)
        codes = rows.astype(np.int32)
        if x.dtype == np.int8:  # codes shifted so the maximum sits at 127, then as uint8
            index = (codes + 127 - codes.max(axis=-1, keepdims=True)) % 256
            index = np.where(index < 128, index + 128, index - 128)  # the table's int8 order
        else:
            index = codes + 255 - codes.max(axis=-1, keepdims=True)
        exps = table[index]
        total = np.cumsum(exps, axis=-1, dtype=F32)[..., -1:]  # in order, as a loop adds
        scale = F32(np.floor(F32(1) / F32(y_scale)))
        y = np.rint((exps * scale) / total).astype(np.float64) + float(y_zero)
        y = _saturate(y, y_zero.dtype)
        if int(opset) < 13:
            return (y.reshape(x.shape),)
        return (np.moveaxis(y, -1, axis),)

    def output_shapes(self, key, attrs):
        return [key.shapes[0]]


@register_kernel
class QLinearWhere(QLinearElementwise):
    """Where(condition, X, Y) of 8-bit codes: each of X and Y requantized to Z's scale and
    zero point (a table per input, unchanged when they already share them), then chosen."""

    op_type = ms("QLinearWhere")

    def _run(self, condition, x, x_scale, x_zero_point, y, y_scale, y_zero_point, z_scale,
             z_zero_point):
        z_zero = np.asarray(z_zero_point)
        chosen = []
        for v, scale, zero in ((x, x_scale, x_zero_point), (y, y_scale, y_zero_point)):
            if F32(scale) == F32(z_scale) and int(zero) == int(z_zero):
                chosen.append(v.astype(z_zero.dtype))
                continue
            table, low = lookup_table(lambda r: r, v.dtype, scale, zero, z_scale, z_zero)
            chosen.append(_table_lookup(v, table, low))
        return (np.where(condition, *chosen),)

    def _infer(self, inputs, attrs):
        shape = np.broadcast_shapes(inputs[0].shape, inputs[1].shape, inputs[4].shape)
        return [(tuple(shape), inputs[8].dtype)]

    def output_shapes(self, key, attrs):
        return [tuple(np.broadcast_shapes(key.shapes[0], key.shapes[1], key.shapes[4]))]
