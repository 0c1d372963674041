import json
import subprocess
import sys

import pytest

from npu_driver.cli import main


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_skus_json_lists_fields_and_peaks(capsys):
    status, out, _ = run(capsys, "skus", "--json")
    assert status == 0
    skus = {s["name"]: s for s in json.loads(out)}
    edge = skus["npu-edge"]
    assert edge["array_rows"] == 32 and edge["dataflow"] == "os" and edge["dram_gbps"] == 25.6
    assert edge["peak_tops"]["int8"] == pytest.approx(4 * edge["peak_tops"]["fp32"], rel=1e-3)
    assert "npu-dc" in skus


def test_skus_table(capsys):
    status, out, _ = run(capsys, "skus")
    lines = out.splitlines()
    assert status == 0 and lines[0].startswith("name")
    assert any(line.startswith("npu-edge") and "32x32" in line for line in lines)


def test_cost_json_with_overrides(capsys):
    status, out, _ = run(capsys, "cost", "--sku", "npu-edge", "--set", "array=16x16",
                         "--set", "dataflow=ws", "--gemm", "64,64,64", "--mode", "scalesim", "--json")
    cost = json.loads(out)
    assert status == 0
    # SCALE-Sim WS on 16x16: 16 folds of (64 + 2*16 + 16 - 2) cycles, minus one.
    assert cost["compute_cycles"] == 16 * 110 - 1
    assert cost["total_cycles"] == cost["compute_cycles"] + cost["stall_cycles"]
    assert cost["macs"] == 64 ** 3


def test_cost_conv(capsys):
    status, out, _ = run(capsys, "cost", "--sku", "npu-dc", "--conv", "1,3,224,224,64,7,7,2,3",
                         "--precision", "int8", "--json")
    cost = json.loads(out)
    assert status == 0 and cost["macs"] == 112 * 112 * 64 * 3 * 49 and cost["precision"] == "int8"


@pytest.mark.parametrize("argv, needle", [
    (["--set", "turbo=1", "--gemm", "1,2,3"], "unknown field 'turbo'"),
    (["--set", "cores=x", "--gemm", "1,2,3"], "field 'cores' must be a positive integer"),
    (["--set", "array=big", "--gemm", "1,2,3"], "array expects ROWSxCOLS"),
    (["--gemm", "1,2"], "--gemm expects 3"),
    (["--gemm", "1,2,3", "--precision", "fp64"], "'fp64'"),
    (["--gemm", "1,2,3", "--mode", "fast"], "invalid choice"),
    (["--conv", "1,3,8,8,4,3"], "--conv expects 7 or 8 or 9"),
])
def test_bad_input_is_one_line_exit_2(capsys, argv, needle):
    status, out, err = run(capsys, "cost", "--sku", "npu-edge", *argv)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("npu-driver: error:") and needle in err


def test_unknown_sku_exit_2(capsys):
    status, _, err = run(capsys, "cost", "--sku", "npu-moon", "--gemm", "1,1,1")
    assert status == 2 and "unknown SKU 'npu-moon'" in err


def test_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "npu_driver", "skus", "--json"],
                            capture_output=True, text=True, check=True)
    assert {s["name"] for s in json.loads(result.stdout)} >= {"npu-edge", "npu-dc"}
