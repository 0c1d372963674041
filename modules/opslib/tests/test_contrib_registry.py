"""Registry keys of custom domains: onnxruntime's contrib kernels live under
`com.microsoft.<Op>` and never stand in for (or are stood in by) ONNX's operators."""

from __future__ import annotations

import numpy as np

import npu_opslib
from npu_opslib import TensorInfo


def test_the_default_domain_keeps_bare_names_other_domains_are_qualified():
    assert npu_opslib.qualified_op_type("", "Gelu") == "Gelu"
    assert npu_opslib.qualified_op_type("ai.onnx", "Gelu") == "Gelu"
    assert npu_opslib.qualified_op_type("com.microsoft", "Gelu") == "com.microsoft.Gelu"


def test_contrib_gelu_and_onnx_gelu_are_two_kernels():
    onnx_gelu = npu_opslib.get_kernel(npu_opslib.resolve_op_type("", "Gelu"))
    contrib = npu_opslib.get_kernel(npu_opslib.resolve_op_type("com.microsoft", "Gelu"))
    assert onnx_gelu is not contrib
    assert contrib.op_type == "com.microsoft.Gelu"
    x = np.linspace(-3, 3, 13, dtype=np.float32)
    np.testing.assert_array_equal(npu_opslib.run_reference("com.microsoft.Gelu", [x])[0],
                                  npu_opslib.run_reference("Gelu", [x])[0])


def test_a_builtin_kernel_never_serves_a_custom_domain():
    # com.microsoft has no Relu: a node of it is unsupported, not ONNX's Relu.
    assert npu_opslib.resolve_op_type("com.microsoft", "Relu") == "com.microsoft.Relu"
    assert not npu_opslib.is_supported("com.microsoft.Relu")


def test_infer_outputs_sees_inputs_by_position_and_constant_values():
    kernel = npu_opslib.get_kernel("com.microsoft.GroupQueryAttention")()
    attrs = {"num_heads": 4, "kv_num_heads": 2}
    query = TensorInfo((1, 3, 64), "float32")
    past = TensorInfo((1, 2, 8, 16), "float32")
    inputs = [query, TensorInfo((1, 3, 32), "float32"), TensorInfo((1, 3, 32), "float32"),
              past, past, TensorInfo((1,), "int32")]
    known = inputs + [TensorInfo((), "int32", np.array(5, np.int32))]
    unknown = inputs + [TensorInfo((), "int32")]
    # A buffer of 8 holds a total of 5; unknown totals grow the cache by the new tokens.
    assert kernel.infer_outputs(known, attrs)[1] == ((1, 2, 8, 16), "float32")
    assert kernel.infer_outputs(unknown, attrs)[1] == ((1, 2, 11, 16), "float32")


def test_integer_contrib_outputs_have_their_own_dtypes():
    embed = npu_opslib.get_kernel("com.microsoft.EmbedLayerNormalization")()
    shapes = [TensorInfo((2, 7), "int32"), None, TensorInfo((30, 16), "float32"),
              TensorInfo((8, 16), "float32"), None, TensorInfo((16,), "float32"),
              TensorInfo((16,), "float32")]
    assert embed.infer_outputs(shapes, {}) == [((2, 7, 16), "float32"), ((2,), "int32"),
                                                ((2, 7, 16), "float32")]
    int16 = npu_opslib.get_kernel("com.microsoft.MatMulInteger16")()
    assert int16.infer_outputs([TensorInfo((3, 5), "int16"), TensorInfo((5, 4), "int16")],
                               {}) == [((3, 4), "int32")]
