"""Winograd F(2x2, 3x3) for prepacked convolution weights: same result as the direct path to
float32 rounding, only where it applies, and only for the weights that were prepacked."""

from __future__ import annotations

import numpy as np
import pytest

import npu_opslib
from npu_opslib import KernelKey
from npu_opslib.ops import nn, winograd

ATTRS = {"pads": [1, 1, 1, 1]}
real_conv = winograd.conv


def conv_case(channels, out_channels, height, width, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, channels, height, width)).astype(np.float32)
    w = (rng.standard_normal((out_channels, channels, 3, 3)) / np.sqrt(9 * channels)).astype(
        np.float32)
    b = rng.standard_normal(out_channels).astype(np.float32)
    return x, w, b


def prepacked(x, w, attrs=ATTRS) -> nn.Conv:
    kernel = nn.Conv()
    kernel.prepack(KernelKey("Conv", [x.shape, w.shape]), {1: w}, attrs)
    return kernel


@pytest.mark.parametrize("height,width", [(14, 14), (15, 17), (28, 20)])
def test_prepacked_conv_matches_the_direct_one(height, width, monkeypatch):
    x, w, b = conv_case(64, 32, height, width)
    kernel = prepacked(x, w)
    calls = []
    monkeypatch.setattr(winograd, "conv", lambda *a: calls.append(a) or real_conv(*a))
    direct = npu_opslib.run_reference("Conv", [x, w, b], ATTRS, "Relu")[0]
    fast = kernel.run([x, w, b], ATTRS, "Relu")[0]
    np.testing.assert_allclose(fast, direct, rtol=1e-4, atol=1e-5)
    out = np.full_like(direct, np.nan)  # written in place too, every element
    kernel._execute([x, w, b], ATTRS, "Relu", "NCHW", "fp32", out)
    np.testing.assert_allclose(out, direct, rtol=1e-4, atol=1e-5)
    assert len(calls) == 2, "a 64-channel 3x3 convolution over 14x14 or more should apply"


def test_other_weights_take_the_direct_path():
    x, w, b = conv_case(64, 16, 14, 14)
    kernel = prepacked(x, w)
    other = w[::-1].copy()  # same shape, other storage and values
    np.testing.assert_array_equal(kernel.run([x, other, b], ATTRS)[0],
                                  npu_opslib.run_reference("Conv", [x, other, b], ATTRS)[0])


@pytest.mark.parametrize("case", [
    dict(channels=32, side=28),  # too few channels: the transforms cost more than they save
    dict(channels=64, side=7),  # too small
    dict(channels=64, side=14, attrs={"pads": [1, 1, 1, 1], "strides": [2, 2]}),
    dict(channels=64, side=14, attrs={"pads": [0, 0, 0, 0]}),
    dict(channels=64, side=14, precision="fp16"),  # the emulated rounding path stays direct
])
def test_prepack_keeps_nothing_where_winograd_does_not_apply(case):
    x, w, _ = conv_case(case["channels"], 8, case["side"], case["side"])
    kernel = nn.Conv()
    kernel.prepack(KernelKey("Conv", [x.shape, w.shape], case.get("precision", "fp32")),
                   {1: w}, case.get("attrs", ATTRS))
    assert winograd.prepacked(w) is None


def test_filter_transform_is_lavin_and_grays():
    w = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    expected = winograd.G @ w[0, 0].astype(np.float64) @ winograd.G.T
    np.testing.assert_allclose(winograd.filters(w).reshape(4, 4), expected)


def test_a_channel_mismatch_is_reported_not_computed():
    x, w, b = conv_case(64, 8, 14, 14)
    kernel = prepacked(x, w)
    wider = np.concatenate([x, x], axis=1)  # 128 channels: Winograd-sized, but not w's
    with pytest.raises(npu_opslib.KernelError, match="channels"):
        kernel.run([wider, w, b], ATTRS)


def test_prepacked_filters_live_as_long_as_the_weights_memory():
    # Shared by the views of one memory (engines sharing a device's weights, at every batch
    # size), gone with it: an address the allocator hands out again finds nothing.
    import gc

    x, w, _ = conv_case(64, 8, 14, 14)
    storage = w.copy()
    prepacked(x, storage[...])
    at_batch_4 = nn.Conv()
    at_batch_4.prepack(KernelKey("Conv", [(4,) + x.shape[1:], w.shape]), {1: storage[...]},
                       ATTRS)
    assert winograd.prepacked(storage[...]) is not None
    assert winograd.prepacked(storage.copy()) is None  # the same values elsewhere: not these
    key = winograd._key(storage)
    assert key in winograd._PREPACKED
    del storage
    gc.collect()
    assert key not in winograd._PREPACKED
