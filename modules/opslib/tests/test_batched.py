"""A batch runs in cache-sized chunks of images (`nn.CHUNK_BYTES`): batched Conv and MaxPool
must give each image what it gets alone, with the batch-1 shortcuts (Winograd, the bias row in
the matmul) taken at any batch, written into the launch's output in place."""

from __future__ import annotations

import numpy as np
import pytest

import npu_opslib
from npu_opslib import KernelKey
from npu_opslib.ops import nn, winograd

CONVS = {
    "3x3 stride 2, bias (bias row in the matmul)": ((5, 3, 31, 29), (8, 3, 3, 3), True,
                                                    {"strides": [2, 2]}),
    "1x1 pointwise": ((4, 16, 9, 9), (8, 16, 1, 1), True, {}),
    "grouped, dilated, asymmetric pads": ((3, 8, 11, 10), (12, 4, 3, 2), True,
                                          {"group": 2, "dilations": [2, 1],
                                           "pads": [1, 0, 2, 1], "strides": [1, 2]}),
    "no bias": ((3, 4, 12, 12), (6, 4, 3, 3), False, {"pads": [1, 1, 1, 1]}),
}


def arrays(x_shape, w_shape, with_bias, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = (rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))).astype(np.float32)
    return [x, w] + ([rng.standard_normal(w_shape[0]).astype(np.float32)] if with_bias else [])


def per_image(kernel, inputs, attrs, fusion=""):
    x = inputs[0]
    return np.concatenate([kernel.run([x[i:i + 1]] + inputs[1:], attrs, fusion)[0]
                           for i in range(len(x))])


@pytest.mark.parametrize("chunk_bytes", [1, 1 << 12, 1 << 30], ids=["image", "few", "whole"])
@pytest.mark.parametrize("case", list(CONVS))
def test_batched_conv_is_each_image_alone(case, chunk_bytes, monkeypatch):
    monkeypatch.setattr(nn, "CHUNK_BYTES", chunk_bytes)
    x_shape, w_shape, with_bias, attrs = CONVS[case]
    inputs = arrays(x_shape, w_shape, with_bias)
    kernel = nn.Conv()
    expected = per_image(kernel, inputs, attrs, "Relu")
    np.testing.assert_allclose(kernel.run(inputs, attrs, "Relu")[0], expected,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(npu_opslib.run_reference("Conv", inputs, attrs, "Relu")[0],
                               expected, rtol=1e-4, atol=1e-5)
    out = np.full_like(expected, np.nan)  # written in place, every element
    kernel._execute(inputs, attrs, "Relu", "NCHW", "fp32", out)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("operand_shape", [(4, 6, 12, 12), (1, 6, 1, 1), (12,)],
                         ids=["per image", "per channel", "trailing"])
def test_a_chunked_epilogue_takes_its_images_of_the_operand(operand_shape, monkeypatch):
    monkeypatch.setattr(nn, "CHUNK_BYTES", 1)
    inputs = arrays((4, 4, 12, 12), (6, 4, 3, 3), True) + [
        np.random.default_rng(2).standard_normal(operand_shape).astype(np.float32)]
    attrs = {"pads": [1, 1, 1, 1]}
    expected = npu_opslib.run_reference("Conv", inputs, attrs, "Add+Relu")[0]
    out = np.full_like(expected, np.nan)
    nn.Conv()._execute(inputs, attrs, "Add+Relu", "NCHW", "fp32", out)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_winograd_applies_to_a_batch_image_by_image(monkeypatch):
    attrs = {"pads": [1, 1, 1, 1]}
    x, w, b = arrays((3, 64, 14, 15), (16, 64, 3, 3), True)
    kernel = nn.Conv()
    kernel.prepack(KernelKey("Conv", [x.shape, w.shape]), {1: w}, attrs)
    assert winograd.prepacked(w) is not None, \
        "a batch of Winograd-sized images should prepack the filters"
    calls = []
    real_conv = winograd.conv
    monkeypatch.setattr(winograd, "conv", lambda *a: calls.append(a) or real_conv(*a))
    out = np.full((3, 16, 14, 15), np.nan, np.float32)
    kernel._execute([x, w, b], attrs, "", "NCHW", "fp32", out)
    assert len(calls) == 3
    np.testing.assert_allclose(out, npu_opslib.run_reference("Conv", [x, w, b], attrs)[0],
                               rtol=1e-4, atol=1e-5)


POOLS = {
    "3x3 stride 2": ((5, 4, 15, 13), {"kernel_shape": [3, 3], "strides": [2, 2]}),
    "ceil mode, pads": ((3, 2, 10, 9), {"kernel_shape": [3, 2], "strides": [2, 2],
                                        "pads": [1, 0, 1, 1], "ceil_mode": 1}),
}


@pytest.mark.parametrize("chunk_bytes", [1, 1 << 9, 1 << 30], ids=["image", "few", "whole"])
@pytest.mark.parametrize("case", list(POOLS))
def test_batched_maxpool_is_each_image_alone(case, chunk_bytes, monkeypatch):
    monkeypatch.setattr(nn, "CHUNK_BYTES", chunk_bytes)
    x_shape, attrs = POOLS[case]
    x = np.random.default_rng(1).standard_normal(x_shape).astype(np.float32)
    kernel = nn.MaxPool()
    expected = per_image(kernel, [x], attrs)
    np.testing.assert_array_equal(kernel.run([x], attrs)[0], expected)
    np.testing.assert_array_equal(npu_opslib.run_reference("MaxPool", [x], attrs)[0], expected)
    out = np.full_like(expected, np.nan)
    kernel._execute([x], attrs, "Relu", "NCHW", "fp32", out)
    np.testing.assert_array_equal(out, np.maximum(expected, 0))


def test_maxpool_indices_count_over_the_whole_batch(monkeypatch):
    monkeypatch.setattr(nn, "CHUNK_BYTES", 1)
    x = np.random.default_rng(3).standard_normal((3, 2, 6, 6)).astype(np.float32)
    attrs = {"kernel_shape": [2, 2], "strides": [2, 2], "with_indices": 1}
    pooled, indices = nn.MaxPool().run([x], attrs)
    np.testing.assert_array_equal(x.reshape(-1)[indices], pooled)


def test_the_cost_of_a_batch_does_not_depend_on_its_chunks(monkeypatch):
    from npu_driver import load_sku
    sku = load_sku("npu-edge")
    key = KernelKey("Conv", [(16, 64, 14, 14), (16, 64, 3, 3), (16,)])
    kernel, attrs = nn.Conv(), {"pads": [1, 1, 1, 1]}
    config = kernel.configs(key, attrs)[0]
    before = kernel.cost(sku, key, config, attrs)
    monkeypatch.setattr(nn, "CHUNK_BYTES", 1)
    assert kernel.cost(sku, key, config, attrs) == before


@pytest.mark.parametrize("a_shape", [(4, 6, 5), (2, 3, 6, 5), (1, 6, 5)])
def test_a_stack_times_a_weight_is_one_gemm_of_each_matrix(a_shape, monkeypatch):
    from npu_opslib.ops import matrix

    rng = np.random.default_rng(4)
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.standard_normal((5, 7)).astype(np.float32)
    expected = np.stack([m @ b for m in a.reshape(-1, 6, 5)]).reshape(a_shape[:-1] + (7,))
    calls = []
    real = np.matmul
    monkeypatch.setattr(matrix.np, "matmul", lambda x, y, **kw: calls.append(x.shape) or
                        real(x, y, **kw))
    kernel = matrix.MatMul()
    np.testing.assert_allclose(kernel.run([a, b])[0], expected, rtol=1e-5, atol=1e-6)
    out = np.full(expected.shape, np.nan, np.float32)
    assert kernel._execute([a, b], {}, "Relu", "NCHW", "fp32", out)[0] is out
    np.testing.assert_allclose(out, np.maximum(expected, 0), rtol=1e-5, atol=1e-6)
    assert calls == [(int(np.prod(a_shape[:-1])), 5)] * 2  # one GEMM over all the rows
    # Not a stack of one weight (each matrix its own right operand): numpy's own loop.
    stacked_b = rng.standard_normal(a_shape[:-2] + (5, 7)).astype(np.float32)
    np.testing.assert_allclose(kernel.run([a, stacked_b])[0], np.matmul(a, stacked_b),
                               rtol=1e-5, atol=1e-6)
