"""The real port against a stand-in interpreter (fakecompiler.fake_python): what each module
CLI's answer becomes, and the one environment every stack process gets."""

import json
import os
import sys

import pytest

from fakecompiler import fake_python
from stackci.errors import StackError
from stackci.stack.port import StackPort, parse_json
from stackci.stack.runner import last_line, run_in_env, stack_environment


def test_skus_come_from_the_driver_cli(tmp_path):
    skus = StackPort().skus(fake_python(tmp_path), 30)
    assert [sku["name"] for sku in skus] == ["npu-edge"]


def test_a_failing_module_cli_is_one_line_naming_the_command(tmp_path):
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\necho 'Traceback (most recent call last):' >&2\n"
                      "echo 'KeyError: kernels' >&2\nexit 3\n")
    python.chmod(0o755)
    with pytest.raises(StackError, match=r"^python -m npu_opslib stats --json exited 3: "
                                         r"KeyError: kernels$") as raised:
        StackPort().opslib_stats(python, 30)
    assert raised.value.kind == "crash"


def test_stack_processes_never_see_the_harness_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    env = stack_environment(sys.executable, {"NPU_BACKEND_SKU": "npu-dc"})
    assert "PYTHONPATH" not in env and env["NPU_BACKEND_SKU"] == "npu-dc"
    done = run_in_env(sys.executable, ["-c", "import os; print(os.environ.get('PYTHONPATH'))"])
    assert done.stdout.strip() == "None"


def test_a_venv_interpreter_sets_virtual_env(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    assert stack_environment(venv / "bin" / "python")["VIRTUAL_ENV"] == str(venv)
    assert stack_environment("/usr/bin/python3").get("VIRTUAL_ENV") == os.environ.get(
        "VIRTUAL_ENV")


def test_json_after_progress_lines_is_found():
    assert parse_json('compiling...\n{"a": 1}\n') == {"a": 1}
    assert parse_json(json.dumps({"b": 2}, indent=2)) == {"b": 2}
    assert parse_json("no json here") is None
    assert last_line("first\n\n  second   line \n") == "second line"
