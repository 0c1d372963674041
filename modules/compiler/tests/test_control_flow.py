"""If, Loop and Scan: subgraphs with outer-scope values, nested, run on the engine and costed;
the profile says which branch ran and how many iterations; constant conditions fold."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import npu_compiler
from compiler_models import onnxruntime_outputs

F = TensorProto.FLOAT


def info(name, shape, elem=F):
    return helper.make_tensor_value_info(name, elem, shape)


def model_of(nodes, inputs, outputs, initializers=()):
    graph = helper.make_graph(nodes, "control", inputs, outputs,
                              [numpy_helper.from_array(np.asarray(a), n) for n, a in initializers])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def nested_if_model() -> onnx.ModelProto:
    """sum(x) > 0 ? (max(x) > 1 ? x @ W : relu(x)) : x * 2, then + x; the inner branches read
    x and W from two scopes out."""
    inner_then = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["it"])],
                                   "inner_then", [], [info("it", [2, 4])])
    inner_else = helper.make_graph([helper.make_node("Relu", ["x"], ["ie"])],
                                   "inner_else", [], [info("ie", [2, 4])])
    outer_then = helper.make_graph(
        [helper.make_node("ReduceMax", ["x"], ["mx"], keepdims=0),
         helper.make_node("Greater", ["mx", "one"], ["c2"]),
         helper.make_node("If", ["c2"], ["ot"], then_branch=inner_then,
                          else_branch=inner_else)], "outer_then", [], [info("ot", [2, 4])])
    outer_else = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["oe"])],
                                   "outer_else", [], [info("oe", [2, 4])])
    nodes = [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
             helper.make_node("Greater", ["s", "zero"], ["c"]),
             helper.make_node("If", ["c"], ["y0"], then_branch=outer_then,
                              else_branch=outer_else),
             helper.make_node("Add", ["y0", "x"], ["y"])]
    weights = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)
    return model_of(nodes, [info("x", [2, 4])], [info("y", [2, 4])],
                    [("W", weights), ("zero", np.float32(0)), ("one", np.float32(1)),
                     ("two", np.float32(2))])


def loop_model() -> onnx.ModelProto:
    """h = tanh(h @ W + x) M times; every h is also a scan output."""
    body = helper.make_graph(
        [helper.make_node("MatMul", ["h_in", "W"], ["hw"]),
         helper.make_node("Add", ["hw", "x"], ["pre"]),
         helper.make_node("Tanh", ["pre"], ["h_out"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Identity", ["h_out"], ["scan_h"])],
        "body", [info("i", [], TensorProto.INT64), info("cond_in", [], TensorProto.BOOL),
                 info("h_in", [2, 4])],
        [info("cond_out", [], TensorProto.BOOL), info("h_out", [2, 4]), info("scan_h", [2, 4])])
    weights = np.random.default_rng(1).standard_normal((4, 4)).astype(np.float32) * 0.5
    return model_of([helper.make_node("Loop", ["M", "", "h0"], ["h_final", "hs"], body=body)],
                    [info("x", [2, 4]), info("h0", [2, 4]), info("M", [], TensorProto.INT64)],
                    [info("h_final", [2, 4]), info("hs", None)], [("W", weights)])


def scan_model() -> onnx.ModelProto:
    """A running sum over the rows of x, in reverse, plus a bias from outside."""
    body = helper.make_graph(
        [helper.make_node("Add", ["acc_in", "row"], ["acc_out"]),
         helper.make_node("Add", ["acc_out", "bias"], ["out_row"])],
        "body", [info("acc_in", [3]), info("row", [3])], [info("acc_out", [3]),
                                                          info("out_row", [3])])
    return model_of([helper.make_node("Scan", ["acc0", "x"], ["acc", "ys"], body=body,
                                      num_scan_inputs=1, scan_input_directions=[1])],
                    [info("acc0", [3]), info("x", [5, 3])],
                    [info("acc", [3]), info("ys", [5, 3])], [("bias", np.ones(3, np.float32))])


def run(model, feeds):
    plan = npu_compiler.compile_model(model, "npu-dc")
    outputs, profile = npu_compiler.Engine(plan).run(feeds)
    expected = onnxruntime_outputs(model, feeds)
    for name, array in expected.items():
        np.testing.assert_allclose(outputs[name], array, rtol=1e-4, atol=1e-5)
    return profile, [op for op in profile["ops"] if op["unit"] == "control"]


@pytest.mark.parametrize("x, outer, inner", [
    (np.full((2, 4), 0.5, np.float32) + np.eye(2, 4, dtype=np.float32), "then_branch",
     "then_branch"),
    (np.full((2, 4), 0.25, np.float32), "then_branch", "else_branch"),
    (np.full((2, 4), -1.0, np.float32), "else_branch", None)])
def test_nested_if_matches_onnxruntime_and_names_the_branches(x, outer, inner):
    profile, (step,) = run(nested_if_model(), {"x": x})
    assert step["op_type"] == "If" and step["branch"] == outer and step["iterations"] == 1
    nested = [op for op in step["subgraph_ops"] if op["op_type"] == "If"]
    assert [op["branch"] for op in nested] == ([inner] if inner else [])
    # The branch ran on the NPU: its cycles are part of the run's.
    assert 0 < step["cycles"] < profile["total_cycles"]


def test_loop_matches_onnxruntime_and_counts_iterations():
    rng = np.random.default_rng(2)
    feeds = {"x": rng.standard_normal((2, 4)).astype(np.float32),
             "h0": rng.standard_normal((2, 4)).astype(np.float32), "M": np.array(5)}
    profile, (step,) = run(loop_model(), feeds)
    assert step["op_type"] == "Loop" and step["iterations"] == 5
    assert {"MatMul", "Tanh"} <= {op["op_type"] for op in step["subgraph_ops"]}
    feeds["M"] = np.array(2)
    _, (step,) = run(loop_model(), feeds)
    assert step["iterations"] == 2


def test_scan_matches_onnxruntime():
    feeds = {"acc0": np.zeros(3, np.float32),
             "x": np.arange(15, dtype=np.float32).reshape(5, 3)}
    _, (step,) = run(scan_model(), feeds)
    assert step["op_type"] == "Scan" and step["iterations"] == 5


def test_a_constant_condition_folds_at_compile_time():
    model = nested_if_model()
    graph = model.graph
    # The condition becomes a constant: the outer If is decided when compiling.
    graph.node[1].CopyFrom(helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(
        np.array(False))))
    del graph.node[0]
    plan = npu_compiler.compile_model(model, "npu-dc")
    assert "If" not in {s["op_type"] for s in plan.steps}
    notes = [c for p in plan.pass_log if p["name"] == "fold_control_flow" for c in p["changes"]]
    assert any("else_branch" in note for note in notes)
    x = np.ones((2, 4), np.float32)
    outputs, _ = npu_compiler.Engine(plan).run({"x": x})
    np.testing.assert_allclose(outputs["y"], x * 3)


def test_an_unsupported_operator_inside_a_branch_is_named_at_compile_time():
    model = nested_if_model()
    then = model.graph.node[2].attribute[0].g
    then.node[0].op_type = "NoSuchOp"
    with pytest.raises(npu_compiler.UnsupportedOperator, match="NoSuchOp"):
        npu_compiler.compile_model(model, "npu-dc")


def test_ifs_on_shapes_inside_an_inlined_branch_fold_too():
    """silero-vad's pattern: an If decided at compile time whose branch holds Ifs on a
    dimension of a value the branch computes (squeeze the batch axis when it is 1), nested
    twice: once the branch is inlined and its shapes folded, those conditions are constants
    too, and no If is left for the engine."""
    def squeeze_if(name, source):
        then = helper.make_graph(
            [helper.make_node("Squeeze", [source, "axis0"], [f"{name}_sq"])],
            f"{name}_then", [], [info(f"{name}_sq", None)])
        other = helper.make_graph([helper.make_node("Identity", [source], [f"{name}_id"])],
                                  f"{name}_else", [], [info(f"{name}_id", None)])
        return [helper.make_node("Shape", [source], [f"{name}_shape"]),
                helper.make_node("Gather", [f"{name}_shape", "zero_i"], [f"{name}_d0"]),
                helper.make_node("Equal", [f"{name}_d0", "one_i"], [f"{name}_cond"]),
                helper.make_node("If", [f"{name}_cond"], [f"{name}_out"], then_branch=then,
                                 else_branch=other)]
    inner = squeeze_if("b", "a_out")
    branch = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"]), *squeeze_if("a", "r"), *inner,
         helper.make_node("ReduceMean", ["b_out"], ["m"], keepdims=0)],
        "taken", [], [info("m", None)])
    unused = helper.make_graph([helper.make_node("ReduceMax", ["x"], ["n"], keepdims=0)],
                               "other", [], [info("n", None)])
    nodes = [helper.make_node("Constant", [], ["c"],
                              value=numpy_helper.from_array(np.array(True))),
             helper.make_node("If", ["c"], ["m0"], then_branch=branch, else_branch=unused),
             helper.make_node("Mul", ["m0", "two"], ["y"])]
    model = model_of(nodes, [info("x", [1, 1, 6])], [info("y", None)],
                     [("axis0", np.array([0])), ("zero_i", np.array(0)),
                      ("one_i", np.array(1)), ("two", np.float32(2))])
    plan = npu_compiler.compile_model(model, "npu-dc")
    assert not {"If", "Deferred"} & {s["op_type"] for s in plan.steps}
    notes = [c for p in plan.pass_log if p["name"] == "fold_control_flow" for c in p["changes"]]
    assert any("inlined 3 If" in note for note in notes), notes
    x = np.random.default_rng(3).standard_normal((1, 1, 6)).astype(np.float32)
    outputs, _ = npu_compiler.Engine(plan).run({"x": x})
    np.testing.assert_allclose(outputs["y"], onnxruntime_outputs(model, {"x": x})["y"],
                               rtol=1e-5)
