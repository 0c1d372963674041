"""The interface version the package reports is the one its contract.yaml declares."""

from pathlib import Path

import yaml

import npu_compiler

CONTRACT = Path(__file__).resolve().parents[1] / "contract.yaml"


def test_the_reported_interface_version_is_the_declared_one():
    declared = yaml.safe_load(CONTRACT.read_text())["provides"]["compiler-api"]
    assert npu_compiler.COMPILER_API_VERSION == str(declared)
