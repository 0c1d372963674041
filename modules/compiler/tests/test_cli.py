"""`python -m npu_compiler`: the JSON the harness reads, its files, errors and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import yaml
from onnx import helper

from npu_compiler.cli import main
from npu_driver import load_sku
from compiler_models import conv_block_model, onnxruntime_outputs


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "block.onnx"
    onnx.save(conv_block_model(), str(path))
    return path


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_run_json_document_and_files(capsys, tmp_path, model_path):
    feeds = {"x": np.random.default_rng(3).standard_normal((1, 4, 6, 6)).astype(np.float32)}
    np.savez(tmp_path / "in.npz", **feeds)
    code, out, err = run_cli(capsys, "run", model_path, "--sku", "npu-edge", "--inputs",
                             tmp_path / "in.npz", "--save-outputs", tmp_path / "out.npz",
                             "--trace", tmp_path / "trace.json", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert {"model", "sku", "precision", "compile_s", "run_s", "warm_run_s", "outputs",
            "simulated", "passes"} <= set(doc)
    assert 0 < doc["warm_run_s"]
    assert doc["outputs"] == [{"name": "y", "shape": [1, 10], "dtype": "float32"}]
    simulated = doc["simulated"]
    assert simulated["total_cycles"] > 0 and simulated["clock_ghz"] == 0.8
    assert simulated["latency_us"] == pytest.approx(simulated["total_cycles"] / 800)
    assert [op["op_type"] for op in simulated["ops"]] == ["Conv", "Conv", "Reshape", "Gemm"]
    with np.load(tmp_path / "out.npz") as saved:
        expected = onnxruntime_outputs(conv_block_model(), feeds)
        np.testing.assert_allclose(saved["y"], expected["y"], rtol=1e-4, atol=1e-5)
    trace = json.loads((tmp_path / "trace.json").read_text())
    assert any(e.get("ph") == "X" for e in trace["traceEvents"])


def test_seeded_random_inputs_are_reproducible(capsys, tmp_path, model_path):
    outputs = []
    for seed in (5, 5, 6):
        path = tmp_path / f"out{len(outputs)}.npz"
        code, _, err = run_cli(capsys, "run", model_path, "--sku", "npu-edge", "--seed", seed,
                               "--save-outputs", path, "--json")
        assert code == 0, err
        with np.load(path) as saved:
            outputs.append(saved["y"])
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert not np.array_equal(outputs[0], outputs[2])


def error_of(capsys, expected_code, *argv):
    code, out, err = run_cli(capsys, *argv, "--json")
    assert code == expected_code, err
    assert err.startswith("npu-compiler: error: ") and err.count("\n") == 1
    doc = json.loads(out)
    assert doc["error"] in err
    return doc


def test_bad_files_exit_2(capsys, tmp_path, model_path):
    doc = error_of(capsys, 2, "run", tmp_path / "missing.onnx", "--sku", "npu-edge")
    assert "missing.onnx" in doc["error"] and doc["kind"] == "bad_input"
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage")
    assert "corrupt.onnx" in error_of(capsys, 2, "run", corrupt, "--sku", "npu-edge")["error"]
    assert "npu-nope" in error_of(capsys, 2, "run", model_path, "--sku", "npu-nope")["error"]
    assert error_of(capsys, 2, "run", model_path)["kind"] == "usage"


def test_wrong_inputs_file_exit_2(capsys, tmp_path, model_path):
    np.savez(tmp_path / "extra.npz", x=np.zeros((1, 4, 6, 6), np.float32), z=np.zeros(2))
    doc = error_of(capsys, 2, "run", model_path, "--sku", "npu-edge", "--inputs",
                   tmp_path / "extra.npz")
    assert "unexpected input(s) z" in doc["error"]
    np.savez(tmp_path / "none.npz", q=np.zeros(2))
    doc = error_of(capsys, 2, "run", model_path, "--sku", "npu-edge", "--inputs",
                   tmp_path / "none.npz")
    assert "missing input(s) x" in doc["error"]


def test_unsupported_operator_exit_3(capsys, tmp_path):
    model = conv_block_model()
    model.graph.node.append(helper.make_node("NoSuchOp", ["y", "y"], ["e"],
                                             name="my_op"))
    path = tmp_path / "einsum.onnx"
    onnx.save(model, str(path))
    doc = error_of(capsys, 3, "run", path, "--sku", "npu-edge")
    assert doc["kind"] == "unsupported_operator"
    assert "NoSuchOp" in doc["error"] and "my_op" in doc["error"]


def test_out_of_device_memory_exit_4(capsys, tmp_path, model_path):
    sku = load_sku("npu-edge").to_dict()
    sku.update(name="npu-tiny", device_memory_bytes=4096)
    sku_file = tmp_path / "tiny.yaml"
    sku_file.write_text(yaml.safe_dump(sku))
    doc = error_of(capsys, 4, "run", model_path, "--sku", sku_file)
    assert doc["kind"] == "out_of_memory" and "npu-tiny" in doc["error"]


def test_compile_saves_a_plan(capsys, tmp_path, model_path):
    code, out, err = run_cli(capsys, "compile", model_path, "--sku", "npu-edge", "--out",
                             tmp_path / "plan")
    assert code == 0, err
    assert json.loads((tmp_path / "plan" / "plan.json").read_text())["format"] == "npu-plan/1"
    assert (tmp_path / "plan" / "constants.npz").is_file()


def test_module_entry_point(model_path):
    result = subprocess.run([sys.executable, "-m", "npu_compiler", "run", str(model_path),
                             "--sku", "npu-dc", "--json"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sku"] == "npu-dc"


def test_precision_explain_and_plan_cache(capsys, tmp_path, model_path, monkeypatch):
    monkeypatch.setenv("NPU_PLAN_CACHE", str(tmp_path / "cache"))
    np.savez(tmp_path / "cal.npz", x=np.random.default_rng(0).standard_normal((4, 1, 4, 6, 6)))
    argv = ["run", model_path, "--sku", "npu-edge", "--precision", "int8", "--calibration",
            tmp_path / "cal.npz", "--json"]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["precision"] == "int8" and doc["plan_cache"] == "miss"
    assert {op["precision"] for op in doc["simulated"]["ops"]} == {"int8", "fp32"}
    assert doc["memory"]["arena_bytes"] < doc["memory"]["unplanned_bytes"]
    passes = {entry["name"]: entry for entry in doc["passes"]}
    assert passes["fuse_epilogues"]["facts"]["fusions"] == {"Conv+Add+Relu": 1, "Gemm+Relu": 1}
    assert json.loads(run_cli(capsys, *argv)[1])["plan_cache"] == "hit"
    assert json.loads(run_cli(capsys, *argv, "--no-cache")[1])["plan_cache"] == "off"
    code, out, _ = run_cli(capsys, "run", model_path, "--sku", "npu-edge", "--explain")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("fold_batchnorm"))
    assert "->" in row and "folded 1 BatchNormalization into Conv" in row


def test_missing_calibration_file_is_bad_input(capsys, model_path, tmp_path):
    doc = error_of(capsys, 2, "run", model_path, "--sku", "npu-edge", "--precision", "int8",
                   "--calibration", tmp_path / "nope.npz", "--no-cache")
    assert doc["kind"] == "bad_input" and "nope.npz" in doc["error"]
