import numpy as np
import pytest

from fakecompiler import fake_python, tiny_conv_model
from clihelpers import expect_one_line_error, run_json
from stackci.cli import main


@pytest.fixture
def stack(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_STACK_MODE", "ok")
    monkeypatch.setenv("STACKCI_HOME", str(tmp_path / "home"))
    return str(fake_python(tmp_path)), str(tiny_conv_model(tmp_path / "tiny.onnx"))


def test_run_model_json_document_and_exit_code(stack, capsys, monkeypatch):
    python, model = stack
    code, document = run_json(capsys, ["run-model", model, "--sku", "npu-edge", "--python",
                                       python, "--json"])
    assert code == 0 and document["match"] is True and document["sku"] == "npu-edge"
    monkeypatch.setenv("FAKE_STACK_MODE", "wrong")
    code, document = run_json(capsys, ["run-model", model, "--sku", "npu-edge", "--python",
                                       python, "--json"])
    assert code == 1 and document["match"] is False


def test_run_model_table_shows_outputs_and_top_ops(stack, capsys):
    python, model = stack
    assert main(["run-model", model, "--sku", "npu-edge", "--python", python]) == 0
    text = capsys.readouterr().out
    assert "match" in text and "conv_1" in text and "1234 cycles" in text


def test_run_model_errors(stack, capsys, tmp_path, monkeypatch):
    python, model = stack
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07not an onnx model\xff")
    expect_one_line_error(capsys, ["run-model", str(corrupt), "--sku", "npu-edge", "--python",
                                   python], 2, "corrupt.onnx")
    expect_one_line_error(capsys, ["run-model", str(tmp_path / "gone.onnx"), "--sku",
                                   "npu-edge", "--python", python], 2,
                          f"model not found: {tmp_path / 'gone.onnx'}")
    np.savez(tmp_path / "bad.npz", x=np.zeros((1, 3, 8, 8), np.float32),
             extra=np.zeros(1, np.float32))
    expect_one_line_error(capsys, ["run-model", model, "--sku", "npu-edge", "--python", python,
                                   "--inputs", str(tmp_path / "bad.npz")], 2,
                          "unknown input 'extra'")
    monkeypatch.setenv("FAKE_STACK_MODE", "unsupported")
    expect_one_line_error(capsys, ["run-model", model, "--sku", "npu-edge", "--python", python],
                          3, "unsupported operator LRN")


def test_skus_from_the_stack(stack, capsys):
    python, _ = stack
    code, skus = run_json(capsys, ["skus", "--python", python, "--json"])
    assert code == 0 and [s["name"] for s in skus] == ["npu-edge"]
    assert main(["skus", "--python", python]) == 0
    assert "npu-edge" in capsys.readouterr().out
