"""A custom operator from outside opslib: a package installed with an entry point of group
`npu_opslib.kernels` (no opslib release), used by a model in a custom domain. The compiler
places it (kernel selected, run, matching numpy) and fuses a following Relu into it like a
built-in kernel, when the kernel declares that epilogue."""

from __future__ import annotations

import textwrap

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import npu_opslib
from npu_compiler import Engine, compile_model
from npu_compiler.errors import UnsupportedOperator
from npu_opslib import kernel as opslib_kernel

DOMAIN = "com.example.npu"
PACKAGE = "npu_example_ops"
KERNELS = '''
import numpy as np
from npu_opslib import Kernel, register_kernel


class _AffineTanh(Kernel):
    """y = alpha * tanh(x) + beta (elementwise, on the vector unit)."""

    ops_per_element = 6

    def _run(self, x, alpha=1.0, beta=0.0):
        return ((alpha * np.tanh(x) + beta).astype(x.dtype),)


@register_kernel
class AffineTanh(_AffineTanh):
    op_type = "AffineTanh"
    fusions = ("", "Relu", "Add+Relu")


@register_kernel
class AffineTanhPlain(_AffineTanh):
    op_type = "AffineTanhPlain"  # declares no epilogue: a following Relu stays a node
'''


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """The package as pip would leave it in site-packages: the module and its dist-info."""
    site = tmp_path / "site-packages"
    (site / PACKAGE).mkdir(parents=True)
    (site / PACKAGE / "__init__.py").write_text(textwrap.dedent(KERNELS))
    info = site / f"{PACKAGE}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[npu_opslib.kernels]\nexample = {PACKAGE}\n")
    monkeypatch.syspath_prepend(str(site))
    # As in a fresh process: entry points not read yet, the registry as opslib ships it.
    monkeypatch.setattr(opslib_kernel, "_entry_points_loaded", False)
    monkeypatch.setattr(opslib_kernel, "_REGISTRY", dict(opslib_kernel._REGISTRY))
    monkeypatch.delitem(__import__("sys").modules, PACKAGE, raising=False)
    npu_opslib.clear_cache()
    yield
    npu_opslib.clear_cache()


def model(op_type: str, shape=(2, 8, 64)) -> onnx.ModelProto:
    nodes = [helper.make_node(op_type, ["x"], ["t"], domain=DOMAIN, alpha=2.0, beta=-0.5,
                              name="custom"),
             helper.make_node("Relu", ["t"], ["y"], name="relu")]
    graph = helper.make_graph(nodes, "custom_op",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid(DOMAIN, 1)])


def expected(x: np.ndarray) -> np.ndarray:
    return np.maximum(2.0 * np.tanh(x) - 0.5, 0.0)


def run(plan, x):
    outputs, profile = Engine(plan).run({"x": x})
    return outputs["y"], profile


def test_a_custom_operator_is_placed_and_fused_like_a_built_in(installed):
    plan = compile_model(model("AffineTanh"), "npu-dc")
    assert [(s["op_type"], s["kernel"], s["fusion"]) for s in plan.steps] == [
        ("AffineTanh", "AffineTanh", "Relu")]
    assert plan.values["y"]["shape"] == [2, 8, 64]  # shape from the kernel's output_shapes
    fusion_log = next(p for p in plan.pass_log if p["name"] == "fuse_epilogues")
    assert "AffineTanh+Relu" in str(fusion_log)
    x = np.random.default_rng(0).standard_normal((2, 8, 64)).astype(np.float32)
    y, profile = run(plan, x)
    np.testing.assert_allclose(y, expected(x), rtol=1e-6, atol=1e-6)
    assert [(op["op_type"], op["fusion"]) for op in profile["ops"]] == [("AffineTanh", "Relu")]


def test_without_the_declared_epilogue_the_relu_stays_a_node(installed):
    plan = compile_model(model("AffineTanhPlain"), "npu-dc")
    assert [(s["op_type"], s["fusion"]) for s in plan.steps] == [
        ("AffineTanhPlain", ""), ("Relu", "")]
    x = np.random.default_rng(1).standard_normal((2, 8, 64)).astype(np.float32)
    np.testing.assert_allclose(run(plan, x)[0], expected(x), rtol=1e-6, atol=1e-6)


def test_fusion_saves_the_relu_round_trip(installed):
    fused = compile_model(model("AffineTanh", (64, 1024)), "npu-dc")
    separate = compile_model(model("AffineTanhPlain", (64, 1024)), "npu-dc")
    x = np.zeros((64, 1024), np.float32)
    assert run(fused, x)[1]["total_cycles"] < run(separate, x)[1]["total_cycles"]


def test_an_operator_of_a_custom_domain_nobody_provides_is_named(installed):
    with pytest.raises(UnsupportedOperator, match=rf"{DOMAIN}\.NoSuchOp") as info:
        compile_model(model("NoSuchOp"), "npu-dc")
    assert "\n" not in str(info.value)
