import importlib.util
import json
import sys
from pathlib import Path

import pytest

from stackci.cli import main

npu_driver = pytest.importorskip("npu_driver")


def run(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_gemm_json_is_the_drivers_answer(capsys):
    code, out, _ = run(capsys, ["cost", "--sku", "npu-edge", "--gemm", "256,128,64", "--mode",
                                "scalesim", "--precision", "int8", "--python", sys.executable,
                                "--json"])
    assert code == 0
    document = json.loads(out)
    expected = npu_driver.perf.gemm_cost(npu_driver.load_sku("npu-edge"), 256, 128, 64,
                                         mode="scalesim", precision="int8")
    assert document["total_cycles"] == expected.total_cycles
    assert document["macs"] == 256 * 128 * 64
    assert document["mode"] == "scalesim" and document["precision"] == "int8"


def test_conv_with_sku_overrides(capsys):
    argv = ["cost", "--sku", "npu-edge", "--conv", "1,64,56,56,64,3,3,1,1", "--python",
            sys.executable, "--json"]
    _, base, _ = run(capsys, argv)
    code, wide, _ = run(capsys, argv + ["--set", "array=64x64", "--set", "dataflow=ws"])
    assert code == 0
    assert json.loads(wide)["compute_cycles"] < json.loads(base)["compute_cycles"]
    assert json.loads(base)["macs"] == 56 * 56 * 64 * 64 * 9


def test_without_python_uses_this_interpreter_when_it_has_the_driver(capsys, monkeypatch):
    calls = []
    real_popen = __import__("subprocess").Popen

    def spy(argv, **kwargs):
        calls.append(argv)
        return real_popen(argv, **kwargs)

    # The runner starts every stack process with Popen (its own process group).
    monkeypatch.setattr("stackci.stack.runner.subprocess.Popen", spy)
    code, out, _ = run(capsys, ["cost", "--sku", "npu-edge", "--gemm", "8,8,8"])
    assert code == 0 and "total_cycles" in out
    assert calls[0][:3] == [sys.executable, "-m", "npu_driver"]


def test_without_the_driver_here_the_combination_is_built(capsys, monkeypatch, tmp_path):
    resolved = []
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr("stackci.stack.interpreter.resolve",
                        lambda ws, name, pins: resolved.append((name, tuple(pins))) or "combo")
    monkeypatch.setattr("stackci.stack.port.ensure_environment",
                        lambda ws, combo, **options: type("Env", (), {
                            "python": Path(sys.executable)})())
    monkeypatch.setenv("STACKCI_HOME", str(tmp_path / "home"))
    code, out, _ = run(capsys, ["cost", "--sku", "npu-edge", "--gemm", "8,8,8", "--json"])
    assert code == 0 and json.loads(out)["macs"] == 512
    assert resolved == [("master", ())]


@pytest.mark.parametrize("argv, message", [
    (["--sku", "npu-nope", "--gemm", "8,8,8"], "unknown SKU 'npu-nope'"),
    (["--sku", "npu-edge", "--gemm", "8,8"], "--gemm expects 3 comma-separated integers"),
    (["--sku", "npu-edge", "--gemm", "8,8,8", "--precision", "fp64"], "'fp64'"),
])
def test_driver_errors_are_relayed_with_their_exit_code(capsys, argv, message):
    code, out, err = run(capsys, ["cost", *argv, "--python", sys.executable])
    lines = err.strip().splitlines()
    assert code == 2 and out == ""
    assert len(lines) == 1 and lines[0].startswith("npu-driver: error: ") and message in lines[0]


def test_needs_exactly_one_shape(capsys):
    code, _, err = run(capsys, ["cost", "--sku", "npu-edge", "--python", sys.executable])
    assert code == 2 and "exactly one of --gemm" in err
