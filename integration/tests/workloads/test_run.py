import subprocess
import sys

import numpy as np
import pytest

from fakecompiler import fake_python, tiny_conv_model
from stackci.workloads import reference
from stackci.errors import StackError, UsageError
from stackci.workloads.run import run_model


@pytest.fixture
def stack(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_STACK_MODE", "ok")
    return fake_python(tmp_path), tiny_conv_model(tmp_path / "tiny.onnx")


def test_matching_run_carries_the_stack_document_and_the_comparison(stack, tmp_path):
    python, model = stack
    saved = tmp_path / "out" / "saved.npz"
    document = run_model(python, model, "npu-edge", seed=2, atol=1e-5, rtol=1e-4,
                         save_outputs=saved)
    assert document["match"] is True
    assert document["model"] == str(model) and document["sku"] == "npu-edge"
    assert document["tolerance"] == {"atol": 1e-5, "rtol": 1e-4}
    assert document["simulated"]["total_cycles"] == 1234 and document["passes"]
    [output] = document["outputs"]
    assert output["name"] == "y" and output["shape"] == [1, 4, 8, 8] and output["match"]
    assert output["max_abs_error"] == 0.0
    with np.load(saved) as data:
        want = reference.reference_outputs(model, reference.random_inputs(model, 2))["y"]
        np.testing.assert_array_equal(data["y"], want)


def test_wrong_outputs_are_a_mismatch_not_an_error(stack, monkeypatch):
    python, model = stack
    monkeypatch.setenv("FAKE_STACK_MODE", "wrong")
    document = run_model(python, model, "npu-edge")
    assert document["match"] is False
    assert document["outputs"][0]["max_abs_error"] == pytest.approx(0.01, rel=1e-3)


def test_given_inputs_and_expected_files_are_used(stack, tmp_path):
    python, model = stack
    feeds = reference.random_inputs(model, seed=9)
    np.savez(tmp_path / "in.npz", **feeds)
    expected = reference.reference_outputs(model, feeds)
    expected["y"] = expected["y"] + np.float32(1.0)  # so a pass would prove it was not used
    np.savez(tmp_path / "expected.npz", **expected)
    document = run_model(python, model, "npu-edge", inputs=tmp_path / "in.npz",
                         expected=tmp_path / "expected.npz")
    assert document["match"] is False
    assert document["outputs"][0]["max_abs_error"] == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("mode, kind, code, text", [
    ("unsupported", "unsupported-operator", 3, "unsupported operator LRN"),
    ("oom", "out-of-memory", 4, "device out of memory on npu-edge"),
    ("crash", "error", 1, "ZeroDivisionError: division by zero"),
    ("noop", "no-outputs", 1, "wrote no outputs file"),
])
def test_stack_failures_become_one_line_stack_errors(stack, monkeypatch, mode, kind, code, text):
    python, model = stack
    monkeypatch.setenv("FAKE_STACK_MODE", mode)
    with pytest.raises(StackError) as raised:
        run_model(python, model, "npu-edge")
    assert raised.value.kind == kind and raised.value.exit_code == code
    assert text in str(raised.value) and "\n" not in str(raised.value)


def test_timeout_is_its_own_kind(stack, monkeypatch):
    python, model = stack
    monkeypatch.setenv("FAKE_STACK_MODE", "sleep")
    with pytest.raises(StackError, match="timed out after 0.5 s") as raised:
        run_model(python, model, "npu-edge", timeout=0.5)
    assert raised.value.kind == "timeout"


def test_bad_inputs_are_usage_errors(stack, tmp_path):
    python, model = stack
    with pytest.raises(UsageError, match=r"^model not found: .*absent.onnx$"):
        run_model(python, tmp_path / "absent.onnx", "npu-edge")
    np.savez(tmp_path / "wrong.npz", image=np.zeros((1, 3, 8, 8), np.float32))
    with pytest.raises(UsageError, match=r"wrong.npz for model .*: missing input 'x'"):
        run_model(python, model, "npu-edge", inputs=tmp_path / "wrong.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(UsageError, match=r"cannot read .*junk.npz: not a valid .npz"):
        run_model(python, model, "npu-edge", inputs=tmp_path / "junk.npz")
    with pytest.raises(UsageError, match="cannot run the stack with .*no-python"):
        run_model(tmp_path / "no-python", model, "npu-edge")


def real_compiler_available() -> bool:
    done = subprocess.run([sys.executable, "-m", "npu_compiler", "run", "--help"],
                          capture_output=True, text=True)
    return done.returncode == 0


@pytest.mark.skipif(not real_compiler_available(), reason="npu_compiler's CLI is not there yet")
def test_real_compiler_runs_a_small_model(tmp_path):
    model = tiny_conv_model(tmp_path / "tiny.onnx")
    document = run_model(sys.executable, model, "npu-edge", timeout=120)
    assert document["match"] is True, document["outputs"]
    assert document["simulated"]["total_cycles"] > 0


def test_reference_time_is_measured_unless_turned_off(stack):
    python, model = stack
    document = run_model(python, model, "npu-edge")
    assert isinstance(document["reference_s"], float) and document["reference_s"] > 0
    assert "reference_s" not in run_model(python, model, "npu-edge", time_reference=False)
