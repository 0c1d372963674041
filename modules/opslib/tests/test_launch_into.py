"""Launching writes kernels and epilogues straight into the output storage: the bits must be
those of `run` (temporaries, then a copy), whatever the geometry, fusion or aliasing."""

from __future__ import annotations

import numpy as np
import pytest

import npu_opslib
from npu_driver import load_sku
from npu_opslib import KernelKey
from npu_opslib.ops import windows
from npu_runtime import Context

SKU = load_sku("npu-edge")

CASES = {
    "conv 3x3 padded, bias, relu": (
        "Conv", [(1, 8, 12, 12), (16, 8, 3, 3), (16,)], {"pads": [1, 1, 1, 1]}, "Relu"),
    "conv 1x1 is a matmul": ("Conv", [(2, 16, 7, 7), (8, 16, 1, 1), (8,)], {}, ""),
    "conv 1x1 stride 2": ("Conv", [(1, 16, 9, 9), (8, 16, 1, 1)], {"strides": [2, 2]}, ""),
    "conv grouped, dilated, asymmetric pads": (
        "Conv", [(2, 8, 11, 10), (12, 4, 3, 2), (12,)],
        {"group": 2, "dilations": [2, 1], "pads": [1, 0, 2, 1], "strides": [1, 2]}, ""),
    "conv 1d": ("Conv", [(1, 4, 20), (6, 4, 5)], {"pads": [2, 2], "strides": [3]}, ""),
    "conv with residual add and relu": (
        "Conv", [(1, 8, 10, 10), (8, 8, 3, 3), (8,), (1, 8, 10, 10)], {"pads": [1, 1, 1, 1]},
        "Add+Relu"),
    "conv with a broadcast mul then add": (
        "Conv", [(1, 4, 6, 6), (4, 4, 1, 1), (1, 4, 1, 1), (6,)], {}, "Mul+Add"),
    "conv with clip": ("Conv", [(1, 3, 8, 8), (4, 3, 3, 3)], {"strides": [2, 2]}, "Clip"),
    "conv with gelu (no in-place form)": ("Conv", [(1, 3, 6, 6), (4, 3, 3, 3)], {}, "Gelu"),
    "gemm transposed, alpha, beta, bias": (
        "Gemm", [(9, 5), (7, 9), (7,)], {"transA": 1, "transB": 1, "alpha": 0.5, "beta": 2.0},
        "Tanh"),
    "gemm with leaky relu": ("Gemm", [(4, 6), (6, 3)], {}, "LeakyRelu"),
    "matmul batched and broadcast": ("MatMul", [(2, 1, 4, 5), (3, 5, 6)], {}, "Relu"),
    "matmul vector": ("MatMul", [(5,), (5, 3)], {}, ""),
    "add broadcast, relu": ("Add", [(2, 3, 4), (4,)], {}, "Relu"),
    "maxpool ceil mode, pads": (
        "MaxPool", [(1, 3, 11, 11)],
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 0, 0], "ceil_mode": 1}, ""),
    "maxpool dilated, stride beyond kernel": (
        "MaxPool", [(2, 2, 13, 9)],
        {"kernel_shape": [2, 3], "strides": [3, 4], "dilations": [2, 1]}, "Relu"),
    "maxpool 1d and 3d": ("MaxPool", [(1, 2, 3, 7, 8)],
                          {"kernel_shape": [1, 3, 2], "strides": [1, 1, 2]}, ""),
    "batchnorm with relu": ("BatchNormalization", [(1, 4, 5, 5), (4,), (4,), (4,), (4,)], {},
                            "Relu"),
}


def arrays_for(shapes, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    if len(shapes) >= 5:  # batchnorm: a positive variance
        arrays[4] = np.abs(arrays[4]) + 0.1
    return arrays


def launched(op_type, arrays, attrs, fusion, *, alias_input=None):
    """The op launched on a context: its output, read back. `alias_input` launches in place,
    writing into that input's storage."""
    ctx = Context(SKU)
    inputs = [ctx.to_device(a) for a in arrays]
    key = KernelKey(op_type, tuple(a.shape for a in arrays), fusion=fusion)
    selection = npu_opslib.select(SKU, key, attrs)
    shape = selection.kernel.output_shapes(key, attrs)[0]
    output = inputs[alias_input] if alias_input is not None else ctx.alloc(shape, np.float32)
    npu_opslib.launch(ctx, selection, inputs, [output], attrs)
    return ctx.to_host(output)


@pytest.mark.parametrize("case", sorted(CASES))
def test_launch_gives_the_bits_of_run(case):
    op_type, shapes, attrs, fusion = CASES[case]
    arrays = arrays_for(shapes)
    (expected,) = npu_opslib.run_reference(op_type, arrays, attrs, fusion)[:1]
    np.testing.assert_array_equal(launched(op_type, arrays, attrs, fusion), expected)


@pytest.mark.parametrize("case", ["conv 3x3 padded, bias, relu", "conv with residual add and relu",
                                  "maxpool ceil mode, pads",
                                  "gemm transposed, alpha, beta, bias"])
def test_the_output_storage_is_written_without_a_temporary_copy(case):
    op_type, shapes, attrs, fusion = CASES[case]
    arrays = arrays_for(shapes)
    kernel = npu_opslib.get_kernel(op_type)()
    key = KernelKey(op_type, tuple(a.shape for a in arrays), fusion=fusion)
    out = np.empty(kernel.output_shapes(key, attrs)[0], np.float32)
    (result,) = kernel._execute(arrays, attrs, fusion, "NCHW", "fp32", out)
    assert result is out  # the launch then has nothing to copy
    np.testing.assert_array_equal(out, npu_opslib.run_reference(op_type, arrays, attrs,
                                                                fusion)[0])


def test_in_place_launch_reads_its_inputs_before_writing():
    arrays = arrays_for([(1, 8, 6, 6), (8, 8, 1, 1), (8,), (1, 8, 6, 6)])
    (expected,) = npu_opslib.run_reference("Conv", arrays, {}, "Add+Relu")
    for alias in (0, 3):  # the activation, and the residual the epilogue adds
        np.testing.assert_array_equal(
            launched("Conv", arrays, {}, "Add+Relu", alias_input=alias), expected)


def test_an_epilogue_operand_that_broadcasts_past_the_output_is_a_shape_error():
    arrays = arrays_for([(1, 2, 4, 4), (2, 2, 1, 1), (3, 2, 4, 4)])
    ctx = Context(SKU)
    inputs = [ctx.to_device(a) for a in arrays]
    key = KernelKey("Conv", ((1, 2, 4, 4), (2, 2, 1, 1), (1, 2, 4, 4)), fusion="Add")
    selection = npu_opslib.select(SKU, key, {})
    output = ctx.alloc((1, 2, 4, 4), np.float32, name="y")
    with pytest.raises(npu_opslib.KernelError, match=r"output y is \(1, 2, 4, 4\) but the "
                                                     r"kernel produced \(3, 2, 4, 4\)"):
        npu_opslib.launch(ctx, selection, inputs, [output], {})


@pytest.mark.parametrize("seed", range(6))
def test_max_windows_is_reduce_windows(seed):
    rng = np.random.default_rng(seed)
    spatial = int(rng.integers(1, 4))
    kernel = [int(k) for k in rng.integers(1, 4, spatial)]
    strides = [int(s) for s in rng.integers(1, 4, spatial)]
    dilations = [int(d) for d in rng.integers(1, 3, spatial)]
    out = [int(o) for o in rng.integers(1, 5, spatial)]
    extent = [(o - 1) * s + (k - 1) * d + 1 + int(extra) for o, s, k, d, extra in
              zip(out, strides, kernel, dilations, rng.integers(0, 3, spatial))]
    xp = rng.standard_normal((2, 3, *extent)).astype(np.float32)
    xp.reshape(-1)[rng.integers(0, xp.size)] = np.nan  # NaN wins its windows in both
    expected = windows.reduce_windows(xp, out, kernel, strides, dilations, np.maximum)
    np.testing.assert_array_equal(windows.max_windows(xp, out, kernel, strides, dilations),
                                  expected)
    into = np.empty_like(expected)
    assert windows.max_windows(xp, out, kernel, strides, dilations, into) is into
    np.testing.assert_array_equal(into, expected)


def test_max_windows_refuses_windows_past_the_input():
    with pytest.raises(npu_opslib.KernelError, match="axis 1 need 7 elements, the padded "
                                                     "input has 6"):
        windows.max_windows(np.zeros((1, 1, 6, 6), np.float32), [2, 3], [3, 3], [2, 2], [1, 1])


def test_a_subclass_that_overrides_run_alone_is_launched_through_its_own_run():
    # MatMulInteger is a MatMul whose _run takes zero points: MatMul's _run_into would compute
    # something else (and did, with a TypeError, when launches first wrote in place).
    assert npu_opslib.get_kernel("MatMul")._writes_into()
    assert not npu_opslib.get_kernel("MatMulInteger")._writes_into()
    a = np.arange(6, dtype=np.uint8).reshape(2, 3)
    b = np.arange(12, dtype=np.uint8).reshape(3, 4)
    ctx = Context(SKU)
    inputs = [ctx.to_device(a), ctx.to_device(b)]
    key = KernelKey("MatMulInteger", (a.shape, b.shape))
    selection = npu_opslib.select(SKU, key, {})
    output = ctx.alloc((2, 4), np.int32)
    npu_opslib.launch(ctx, selection, inputs, [output], {})
    np.testing.assert_array_equal(ctx.to_host(output), a.astype(np.int32) @ b.astype(np.int32))
