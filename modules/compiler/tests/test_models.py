"""The smoke models end to end against onnxruntime: the onnx package's light SqueezeNet,
AlexNet and ResNet-50 with seeded random weights (and their logits, which a saturated
softmax would hide)."""

from __future__ import annotations

import numpy as np
import pytest

import npu_compiler
from compiler_models import (light_model, onnxruntime_outputs, random_feeds, randomize_weights,
                    with_logits)


@pytest.mark.parametrize("name, sku", [("squeezenet", "npu-edge"), ("bvlc_alexnet", "npu-dc"),
                                       ("resnet50", "npu-dc")])
def test_light_model_matches_onnxruntime(name, sku):
    model = with_logits(randomize_weights(light_model(name), seed=0))
    feeds = random_feeds(model, seed=1)
    plan = npu_compiler.compile_model(model, sku)
    outputs, profile = npu_compiler.Engine(plan).run(feeds)
    expected = onnxruntime_outputs(model, feeds)
    assert set(outputs) == set(expected)
    for output_name, value in expected.items():
        assert np.std(value) > 0, "random weights should make outputs vary"
        scale = float(np.abs(value).max())
        np.testing.assert_allclose(outputs[output_name], value, rtol=1e-3, atol=1e-5 * scale)
    assert profile["total_cycles"] > 0
    assert len(profile["ops"]) == len(plan.steps)
    assert {op["unit"] for op in profile["ops"]} >= {"array", "vector"}
    assert sum(op["macs"] for op in profile["ops"]) > 10**8
