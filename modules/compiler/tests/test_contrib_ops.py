"""onnxruntime's contrib operators (domain com.microsoft) through the compiler and engine:
each one-node model matches onnxruntime (integer outputs exactly), and its launch is costed
on the unit that does its work (the array for matmul-like ops, the vector unit otherwise)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from npu_compiler import Engine, compile_model

import contrib_cases

CASES = contrib_cases.cases()


def reference(case):
    model = case.model()
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return model, session.run(None, case.feeds)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.op}-{c.id}" if c.id else c.op
                                             for c in CASES])
def test_matches_onnxruntime_and_is_costed_on_its_unit(case):
    model, expected = reference(case)
    plan = compile_model(model, "npu-dc")
    outputs, profile = Engine(plan).run(case.feeds)
    for index, want in enumerate(expected):
        got = outputs[f"out{index}"]
        assert got.shape == want.shape, f"output {index}"
        assert got.dtype == want.dtype, f"output {index}"
        if case.exact or not np.issubdtype(want.dtype, np.floating):
            np.testing.assert_array_equal(got, want, err_msg=f"output {index}")
        else:
            np.testing.assert_allclose(got, want, atol=case.atol, rtol=case.rtol,
                                       err_msg=f"output {index}")
    op_type = f"{case.domain}.{case.op}" if case.domain else case.op
    ops = [op for op in profile["ops"] if op["op_type"] == op_type]
    assert len(ops) == 1 and ops[0]["cycles"] > 0
    assert ops[0]["unit"] == case.unit


def test_a_contrib_op_opslib_lacks_is_named_with_its_domain():
    # com.microsoft has no Relu: ONNX's Relu kernel must not stand in for it.
    from npu_compiler.errors import UnsupportedOperator

    x = contrib_cases.f32(2, 3)
    case = contrib_cases.Case("Relu", [(x, contrib_cases.FEED)])
    with pytest.raises(UnsupportedOperator, match=r"com\.microsoft\.Relu") as info:
        compile_model(case.model(), "npu-dc")
    assert "\n" not in str(info.value)


BAD = [
    (contrib_cases.Case("Attention", [(contrib_cases.f32(1, 4, 8), contrib_cases.FEED),
                                      (contrib_cases.f32(8, 24), contrib_cases.CONST)]),
     r"com\.microsoft\.Attention node 'node': attribute 'num_heads' is required"),
    (contrib_cases.Case("GroupQueryAttention",
                        [(contrib_cases.f32(1, 2, 64), contrib_cases.FEED)],
                        {"num_heads": 4, "kv_num_heads": 2}),
     r"input 5 \(seqlens_k\) is required"),
    (contrib_cases.Case("MatMulNBits", [(contrib_cases.f32(3, 64), contrib_cases.FEED)]
                        + contrib_cases._nbits(16, 64, 4, 16),
                        {"K": 64, "N": 16, "bits": 4, "block_size": 32}),
     r"do not fit K=64, N=16: expected A \[\.\.\., 64\] and B \[16, 2, 16\]"),
]


@pytest.mark.parametrize("case,message", BAD, ids=["no-num_heads", "no-seqlens", "bad-blocks"])
def test_a_malformed_contrib_node_is_a_one_line_compile_error(case, message):
    from npu_compiler.errors import CompileError

    with pytest.raises(CompileError, match=message) as info:
        compile_model(case.model(), "npu-dc")
    assert "\n" not in str(info.value)
