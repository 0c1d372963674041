"""`stackci workloads list` and `stackci workloads prepare` (commands/workloads.py)."""

from clihelpers import expect_one_line_error, run_json
from stackci.cli import main


def test_workloads_list(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("STACKCI_HOME", str(tmp_path / "home"))
    code, listed = run_json(capsys, ["workloads", "list", "--tier", "smoke", "--json"])
    names = [w["name"] for w in listed]
    assert code == 0 and names[0] == "squeezenet"
    assert {"squeezenet", "resnet50", "alexnet", "squeezenet-int8", "bert_smoke"} <= set(names)
    assert "vgg19" not in names
    assert listed[0]["tolerance"] == {"atol": 1e-5, "rtol": 1e-3}
    suite = tmp_path / "suite.yaml"
    suite.write_text("workloads: [{name: a, source: 'onnx-light:x', tiers: [monthly]}]\n")
    expect_one_line_error(capsys, ["workloads", "list", "--suite", str(suite)], 2,
                          f"{suite}: workloads[0] (a).tiers: unknown tier 'monthly'")


def test_workloads_prepare_by_name(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("STACKCI_HOME", str(tmp_path / "home"))
    assert main(["workloads", "prepare", "squeezenet"]) == 0
    assert "squeezenet: " in capsys.readouterr().out
    prepared = sorted(p.name for p in (tmp_path / "home" / "cache" / "models").iterdir())
    assert len(prepared) == 3 and all(p.startswith("squeezenet-0-") for p in prepared)
    expect_one_line_error(capsys, ["workloads", "prepare", "resnet51"], 2,
                          "no workload named 'resnet51'")
