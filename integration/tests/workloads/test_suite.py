import textwrap
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from stackci.compat.contracts import unmet_requirements
from stackci.workloads import reference
from stackci.workloads.generators.weights import randomize_weights
from stackci.workloads.prepare import prepare
from stackci.workloads.sources import light_model_path, source_path
from stackci.workloads.suite import load_suite
from stackci.errors import UsageError
from stackci.workspace import find_repo_root

LIGHT = ["squeezenet", "resnet50", "alexnet", "vgg19", "densenet121", "inception_v1",
         "inception_v2", "shufflenet", "zfnet512"]


# --- the manifest -------------------------------------------------------------------------------

def test_the_repository_suite_has_the_nine_light_models_in_nested_tiers():
    suite = load_suite(find_repo_root() / "workloads" / "suite.yaml")
    fp32 = [w for w in suite.workloads if w.precision == "fp32"]
    light = [w.name for w in fp32 if w.source.startswith("onnx-light:")]
    assert sorted(light) == sorted(LIGHT)
    assert [w.name for w in suite.select("smoke") if w.precision == "fp32"] == [
        "squeezenet", "resnet50", "alexnet", "bert_smoke", "gpt_smoke"]
    assert {w.name for w in fp32 if w.source.startswith("builtin:")} == {
        "bert_smoke", "gpt_smoke", "bert_base", "bert_base_b8", "gpt_base", "gpt_base_b8"}
    assert suite.get("bert_base_b8").batch == 8
    assert suite.get("squeezenet-int8").min_cosine == 0.99
    assert len(suite.select("nightly")) == len(suite.select("weekly")) == len(suite.workloads)
    alexnet = suite.get("alexnet")
    assert alexnet.source == "onnx-light:bvlc_alexnet"
    assert alexnet.skus == ("npu-edge", "npu-dc") and alexnet.precision == "fp32"
    assert alexnet.batch == 1 and alexnet.seed == 0
    for workload in light and [w for w in suite.workloads if w.source.startswith("onnx-")]:
        assert source_path(workload).is_file()  # resolves in the installed onnx


def test_precisions_expand_to_variants_with_their_tolerances(tmp_path):
    path = write_suite(tmp_path, """
        defaults:
          tolerance: {atol: 1.0e-5, rtol: 1.0e-3, fp16: {atol: 0.05, rtol: 0.05}}
        workloads:
          - name: m
            source: onnx-light:squeezenet
            tiers: [smoke]
            precisions: [fp32, fp16, int8]
            tolerance: {int8: {cosine: 0.98}}
    """)
    suite = load_suite(path)
    assert suite.names() == ["m", "m-fp16", "m-int8"]
    m, fp16, int8 = suite.workloads
    assert (m.precision, m.atol, m.min_cosine) == ("fp32", 1e-5, None)
    assert (fp16.precision, fp16.atol, fp16.rtol) == ("fp16", 0.05, 0.05)
    assert (int8.precision, int8.min_cosine, int8.model) == ("int8", 0.98, "m")
    assert int8.to_dict()["tolerance"]["cosine"] == 0.98


def test_bad_precisions_and_builtin_sources_are_named(tmp_path):
    for body, message in [
            ("precisions: [fp32, fp8]", r"precisions: unknown precision 'fp8'"),
            ("precisions: []", "non-empty list of distinct precisions"),
            ("tolerance: {int8: {cos: 1}}", r"tolerance.int8.cos: unknown key"),
    ]:
        path = write_suite(tmp_path, f"""
            workloads:
              - name: m
                source: onnx-light:squeezenet
                tiers: [smoke]
                {body}
        """)
        with pytest.raises(UsageError, match=message):
            load_suite(path)
    path = write_suite(tmp_path, """
        workloads:
          - name: t
            source: builtin:bert-encoder?layer=2
            tiers: [smoke]
    """)
    with pytest.raises(UsageError, match=r"unknown parameter 'layer'"):
        load_suite(path)


def test_builtin_transformer_is_prepared_with_onnxruntime_outputs(tmp_path):
    from stackci.workspace import Workspace

    path = write_suite(tmp_path, """
        workloads:
          - name: tiny_gpt
            source: builtin:gpt-decoder?layers=1&hidden=64&heads=4&ffn=128&seq=16&vocab=100
            tiers: [smoke]
            batch: 2
    """)
    workload = load_suite(path).get("tiny_gpt")
    prepared = prepare(Workspace.discover(tmp_path / "home"), workload)
    assert prepared.inputs()["input_ids"].shape == (2, 16)
    logits = prepared.expected()["logits"]
    assert logits.shape == (2, 16, 100) and np.std(logits) > 0


def write_suite(tmp_path, body):
    path = tmp_path / "suite.yaml"
    path.write_text(textwrap.dedent(body))
    return path


VALID = """\
    defaults: {seed: 7, tolerance: {atol: 1.0e-5, rtol: 1.0e-3}}
    workloads:
      - {name: a, source: "onnx-light:squeezenet", tiers: [smoke]}
      - {name: b, source: "file:b.onnx", tiers: [weekly], tolerance: {atol: 0.5}, skus: [npu-dc]}
"""


def test_defaults_and_overrides_are_merged(tmp_path):
    suite = load_suite(write_suite(tmp_path, VALID))
    a, b = suite.workloads
    assert (a.seed, a.atol, a.rtol, a.skus) == (7, 1e-5, 1e-3, ("npu-edge", "npu-dc"))
    assert (b.atol, b.rtol, b.skus) == (0.5, 1e-3, ("npu-dc",))
    assert suite.select("nightly") == [a] and suite.select("weekly") == [a, b]
    assert suite.select(None, ["b"]) == [b]
    with pytest.raises(UsageError, match="no workload named 'zz'.*known: a, b"):
        suite.select(None, ["zz"])
    with pytest.raises(UsageError, match="unknown tier 'daily'"):
        suite.select("daily")


def test_latency_bounds_per_model_reach_every_precision(tmp_path):
    suite = load_suite(write_suite(tmp_path, """\
        defaults: {latency_bound_ms: 50}
        workloads:
          - {name: m, source: "onnx-light:squeezenet", tiers: [smoke], precisions: [fp32, int8],
             latency_bound_ms: 7.5}
          - {name: n, source: "onnx-light:resnet50", tiers: [smoke]}
    """))
    assert [w.latency_bound_ms for w in suite.workloads] == [7.5, 7.5, 50.0]
    assert suite.workloads[1].to_dict()["latency_bound_ms"] == 7.5
    real = load_suite()
    smoke = real.select("smoke")
    assert smoke and all(w.latency_bound_ms for w in smoke)  # the analysis stage needs them


def test_expected_failures_per_sku(tmp_path):
    suite = load_suite(write_suite(tmp_path, """\
        workloads:
          - {name: big, source: "onnx-light:vgg19", tiers: [nightly],
             expect: {npu-edge: out-of-memory}}
    """))
    big = suite.workloads[0]
    assert big.expected_failure("npu-edge") == "out-of-memory"
    assert big.expected_failure("npu-dc") is None
    real = load_suite()
    assert real.get("vgg19").expected_failure("npu-edge") == "out-of-memory"


def test_requirements_decide_where_a_workload_applies(tmp_path):
    suite = load_suite(write_suite(tmp_path, """\
        defaults:
          precision_requires: {int8: {compiler-api: ">=1.1"}}
        workloads:
          - {name: m, source: "onnx-light:squeezenet", tiers: [smoke], precisions: [fp32, int8],
             requires: {opslib-api: ">=1.1"}}
    """))
    fp32, int8 = suite.workloads
    assert fp32.requires == (("opslib-api", ">=1.1"),)
    assert int8.requires == (("compiler-api", ">=1.1"), ("opslib-api", ">=1.1"))
    new = {"compiler-api": "1.1", "opslib-api": "1.1"}
    old = {"compiler-api": "1.0", "opslib-api": "1.1"}
    assert unmet_requirements(int8.requires, new) == [] and unmet_requirements(fp32.requires, old) == []
    assert unmet_requirements(int8.requires, old) == [
        "needs compiler-api >=1.1; the combination provides 1.0"]
    assert unmet_requirements(int8.requires, {"compiler-api": "1.1"}) == [
        "needs opslib-api >=1.1; the combination does not provide it"]


@pytest.mark.parametrize("body, message", [
    ("workloads: [{name: a, source: 'onnx-light:x', tiers: [smoke], requires: {opslib-api: '>=3,<'}}]",
     r"requires.opslib-api: '>=3,<' is not a PEP 440 specifier"),
    ("workloads: [{name: a, source: 'onnx-light:x', tiers: [smoke], expect: {npu-x: out-of-memory}}]",
     r"expect: SKU 'npu-x' is not among the workload's skus"),
    ("workloads: [{name: a, source: 'onnx-light:x', tiers: [smoke], expect: {npu-dc: slow}}]",
     r"expect.npu-dc: unknown failure kind 'slow'"),
    ("defaults: {seeds: 1}\nworkloads: [{name: a, source: 'onnx-light:x', tiers: [smoke]}]",
     r"suite.yaml: defaults.seeds: unknown key"),
    ("workloads: [{name: a, source: 'onnx-light:x', tiers: [smoke], colour: red}]",
     r"suite.yaml: workloads\[0\] \(a\).colour: unknown key"),
    ("workloads: [{name: a, source: 'onnx-light:x', tiers: [daily]}]",
     r"suite.yaml: workloads\[0\] \(a\).tiers: unknown tier 'daily'"),
    ("workloads: [{name: a, tiers: [smoke]}]",
     r"suite.yaml: workloads\[0\] \(a\).source: missing"),
    ("workloads: [{name: a, source: 'http://x', tiers: [smoke]}]",
     r"suite.yaml: workloads\[0\] \(a\).source: unknown source 'http://x'"),
    ("workloads: [{name: a, source: 'onnx-light:x', tiers: [smoke], tolerance: {atol: -1}}]",
     r"suite.yaml: workloads\[0\] \(a\).tolerance.atol: must be >= 0"),
    ("workloads: [{name: a, source: 'onnx-light:x', tiers: [smoke], batch: two}]",
     r"suite.yaml: workloads\[0\] \(a\).batch: expected an integer"),
    ("workloads: [{name: a, source: 'onnx-light:x', tiers: [smoke]},"
     " {name: a, source: 'onnx-light:y', tiers: [smoke]}]",
     r"suite.yaml: workloads\[1\].name: duplicate workload 'a'"),
    ("workloads: [", r"suite.yaml: not valid YAML"),
    ("workloads: [{name: a, source: 'onnx-light:x', tiers: [smoke], latency_bound_ms: 0}]",
     r"suite.yaml: workloads\[0\] \(a\).latency_bound_ms: expected a positive number of "
     r"milliseconds, got 0"),
    ("workloads: [{name: a, source: 'onnx-light:x', tiers: [smoke], latency_bound_ms: 5ms}]",
     r"\(a\).latency_bound_ms: expected a positive number of milliseconds, got '5ms'"),
])
def test_manifest_problems_name_the_file_and_field(tmp_path, body, message):
    with pytest.raises(UsageError, match=message):
        load_suite(write_suite(tmp_path, body))


def test_missing_manifest_and_unknown_light_model(tmp_path):
    with pytest.raises(UsageError, match="suite manifest not found: .*nope.yaml"):
        load_suite(tmp_path / "nope.yaml")
    with pytest.raises(UsageError, match="onnx-light:resnet51: no such model.*resnet50"):
        light_model_path("resnet51")


# --- the weight randomizer ----------------------------------------------------------------------

def constant_of_shape(name, shape):
    shape_name = f"{name}__SHAPE"
    node = helper.make_node("ConstantOfShape", [shape_name], [name],
                            value=numpy_helper.from_array(np.array([0.02], np.float32)))
    return node, numpy_helper.from_array(np.array(shape, np.int64), shape_name)


def synthetic_light_model():
    """Like the light models: IR 3, weights as ConstantOfShape(0.02), initializers also inputs,
    a BatchNormalization decomposed into BN + Unsqueeze/Mul + Unsqueeze/Add."""
    weights = {"w": [8, 3, 3, 3], "bn_scale": [8], "bn_bias": [8], "bn_mean": [8],
               "bn_var": [8], "sc_w": [8], "sc_b": [8], "fc_w": [10, 8], "fc_b": [10]}
    nodes, inits = [], []
    for name, shape in weights.items():
        node, init = constant_of_shape(name, shape)
        nodes.append(node)
        inits.append(init)
    flatten_shape = numpy_helper.from_array(np.array([1, -1], np.int64), "flat_shape")
    nodes += [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "bn_scale", "bn_bias", "bn_mean", "bn_var"],
                         ["n"]),
        helper.make_node("Unsqueeze", ["sc_w"], ["sc_w3"], axes=[1, 2]),
        helper.make_node("Mul", ["n", "sc_w3"], ["m"]),
        helper.make_node("Unsqueeze", ["sc_b"], ["sc_b3"], axes=[1, 2]),
        helper.make_node("Add", ["m", "sc_b3"], ["a"]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Reshape", ["p", "flat_shape"], ["f"]),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["prob"]),
    ]
    inits.append(flatten_shape)
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])]
    inputs += [helper.make_tensor_value_info(i.name, i.data_type, list(i.dims)) for i in inits]
    graph = helper.make_graph(nodes, "synthetic", inputs,
                              [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, 10])],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    model.ir_version = 3
    return model


def arrays(model):
    return {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}


def test_randomizer_replaces_constant_weights_by_role():
    model = synthetic_light_model()
    assert randomize_weights(model, seed=1) == 9
    values = arrays(model)
    assert not [n for n in model.graph.node if n.op_type == "ConstantOfShape"]
    assert not any(name.endswith("__SHAPE") for name in values)  # shapes no longer used
    assert "flat_shape" in values  # still used by Reshape
    assert [i.name for i in model.graph.input] == ["x"]
    assert model.ir_version >= 4
    assert values["w"].shape == (8, 3, 3, 3) and values["w"].dtype == np.float32
    # He scaling: std sqrt(2 / fan_in) with fan_in 27 (216 samples, so loosely)
    assert 0.6 * np.sqrt(2 / 27) < values["w"].std() < 1.4 * np.sqrt(2 / 27)
    for name in ("bn_scale", "bn_var", "sc_w"):  # followed through Unsqueeze -> Mul for sc_w
        assert values[name].min() >= 0.5 and values[name].max() <= 1.5, name
    for name in ("bn_bias", "bn_mean", "sc_b"):
        assert np.abs(values[name]).max() < 0.5 and values[name].std() > 0, name
    onnx.checker.check_model(model)


def test_randomizer_is_seeded_per_tensor():
    first, again, other = synthetic_light_model(), synthetic_light_model(), synthetic_light_model()
    randomize_weights(first, seed=1)
    randomize_weights(again, seed=1)
    randomize_weights(other, seed=2)
    np.testing.assert_array_equal(arrays(first)["w"], arrays(again)["w"])
    assert not np.array_equal(arrays(first)["w"], arrays(other)["w"])


# --- preparation ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def squeezenet(tmp_path_factory):
    ws = SimpleNamespace(cache=tmp_path_factory.mktemp("cache"))
    suite = load_suite(find_repo_root() / "workloads" / "suite.yaml")
    return ws, suite.get("squeezenet"), prepare(ws, suite.get("squeezenet"))


def test_prepared_squeezenet_has_random_weights_and_informative_outputs(squeezenet):
    ws, workload, prepared = squeezenet
    assert prepared.model_path.parent == ws.cache / "models"
    assert prepared.model_path.name.startswith("squeezenet-0-")
    model = onnx.load(str(prepared.model_path))
    assert not [n for n in model.graph.node if n.op_type == "ConstantOfShape"]
    assert [i.name for i in model.graph.input] == ["data_0"]
    inputs, expected = prepared.inputs(), prepared.expected()
    assert inputs["data_0"].shape == (1, 3, 224, 224)
    probabilities = expected["softmaxout_1"].ravel()
    assert probabilities.shape == (1000,)
    assert probabilities.sum() == pytest.approx(1.0, rel=1e-4)
    # Not the shipped constant answer, and not one-hot: wrong arithmetic would show.
    assert 0.01 < probabilities.max() < 0.9
    assert probabilities.std() > 1e-4 and (probabilities > 1e-4).sum() > 50
    # The original (untouched) weights give an output that does not depend on the input.
    shipped = onnx.load(str(light_model_path("squeezenet")))
    assert len([n for n in shipped.graph.node if n.op_type == "ConstantOfShape"]) == 39


def test_second_prepare_does_no_work(squeezenet, monkeypatch):
    ws, workload, prepared = squeezenet
    stamps = [p.stat().st_mtime_ns for p in (prepared.model_path, prepared.inputs_path,
                                            prepared.expected_path)]
    monkeypatch.setattr("stackci.workloads.prepare.randomize_weights", lambda *a: pytest.fail("re-randomized"))
    monkeypatch.setattr(reference, "reference_outputs",
                        lambda *a: pytest.fail("re-ran onnxruntime"))
    again = prepare(ws, workload)
    assert again.model_path == prepared.model_path
    assert stamps == [p.stat().st_mtime_ns for p in (again.model_path, again.inputs_path,
                                                    again.expected_path)]
    assert not list((ws.cache / "models").glob(".*.tmp"))


def test_another_seed_is_another_cache_entry(squeezenet):
    ws, workload, prepared = squeezenet
    from dataclasses import replace

    other = prepare(ws, replace(workload, seed=5))
    assert other.model_path.name.startswith("squeezenet-5-")
    assert not np.array_equal(other.inputs()["data_0"], prepared.inputs()["data_0"])


def test_prepare_of_a_missing_file_source_names_it(tmp_path):
    suite = load_suite(write_suite(tmp_path, VALID))
    ws = SimpleNamespace(cache=tmp_path / "cache")
    with pytest.raises(UsageError, match=r"workload b: source model not found: .*b.onnx"):
        prepare(ws, suite.get("b"))
