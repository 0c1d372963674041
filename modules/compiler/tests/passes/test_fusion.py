"""Relu moves below MaxPool (pass sink_relu), through a Concat of Relus too, so it runs on the
pooled tensor as the MaxPool's epilogue; every test fails if the pass is taken out of
DEFAULT_PIPELINE."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import npu_compiler
from compiler_models import make_model, onnxruntime_outputs, random_feeds

SKU = "npu-edge"
WITHOUT = [p for p in npu_compiler.DEFAULT_PIPELINE if p != "sink_relu"]


def pooled_model(seed: int = 0):
    """conv+relu -> maxpool; a fire-like Concat of two conv+relu -> maxpool; and a relu read
    by a maxpool and by a graph output (which must stay where it is)."""
    rng = np.random.default_rng(seed)

    def weights(name, out_c, in_c, k):
        return [(f"{name}_w", rng.normal(0, 0.4, (out_c, in_c, k, k)).astype(np.float32)),
                (f"{name}_b", rng.normal(0, 0.3, out_c).astype(np.float32))]

    def conv_relu(name, source, pad=0):
        return [helper.make_node("Conv", [source, f"{name}_w", f"{name}_b"], [f"{name}_c"],
                                 pads=[pad] * 4, name=name),
                helper.make_node("Relu", [f"{name}_c"], [name], name=f"{name}_relu")]

    def maxpool(source, out, k, s):
        return helper.make_node("MaxPool", [source], [out], kernel_shape=[k, k],
                                strides=[s, s], name=f"{out}_pool")

    inits = weights("c1", 6, 3, 3) + weights("e1", 4, 6, 1) + weights("e3", 4, 6, 3) + \
        weights("c2", 5, 8, 1)
    nodes = (conv_relu("c1", "x", pad=1) + [maxpool("c1", "p1", 3, 2)] +
             conv_relu("e1", "p1") + conv_relu("e3", "p1", pad=1) +
             [helper.make_node("Concat", ["e1", "e3"], ["fire"], axis=1, name="cat"),
              maxpool("fire", "p2", 2, 2)] +
             conv_relu("c2", "p2") + [maxpool("c2", "y", 2, 2)])
    return make_model(nodes, [("x", [1, 3, 17, 17])], [("y", [1, 5, 2, 2]),
                                                       ("c2", [1, 5, 4, 4])], inits)


@pytest.fixture(scope="module")
def pooled():
    model = pooled_model()
    feeds = random_feeds(model)
    return model, feeds, onnxruntime_outputs(model, feeds)


def fused_ops(plan):
    return [(s["name"], s["op_type"], s["fusion"]) for s in plan.steps]


def test_relus_run_after_the_pools_with_the_same_outputs(pooled):
    model, feeds, expected = pooled
    sunk = npu_compiler.compile_model(model, SKU)
    kept = npu_compiler.compile_model(model, SKU, pipeline=WITHOUT)
    pools = [(op, fusion) for _, op, fusion in fused_ops(sunk) if op == "MaxPool"]
    assert pools == [("MaxPool", "Relu"), ("MaxPool", "Relu"), ("MaxPool", "")]
    assert [fusion for _, op, fusion in fused_ops(kept) if op == "MaxPool"] == ["", "", ""]
    facts = next(e for e in sunk.pass_log if e["name"] == "sink_relu")["facts"]
    assert facts == {"relus_sunk": 3}  # c1's, and e1's and e3's through the Concat
    for plan in (sunk, kept):
        outputs, _ = npu_compiler.Engine(plan).run(feeds)
        for name, value in expected.items():
            np.testing.assert_allclose(outputs[name], value, rtol=1e-5, atol=1e-6)


def test_the_pooled_relu_costs_fewer_modelled_cycles(pooled):
    model, feeds, _ = pooled
    cycles = [npu_compiler.Engine(npu_compiler.compile_model(model, SKU, pipeline=pipeline)).run(
        feeds)[1]["total_cycles"] for pipeline in (None, WITHOUT)]
    assert cycles[0] < cycles[1]
