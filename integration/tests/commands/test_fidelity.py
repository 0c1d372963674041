"""`stackci fidelity record`: a run_fidelity.py JSON file becomes a weekly run in the store."""

import json

import pytest

from stackci.cli import main
from stackci.results.store import Store


def layer(name, M, N, K, array, dataflow, ours, theirs):
    """One row as run_fidelity.py writes it (ours/theirs: (compute, total) cycles)."""
    return {"name": name, "M": M, "N": N, "K": K, "array": list(array), "dataflow": dataflow,
            "sram_kb": 64, "bandwidth": 16,
            "ours": {"compute_cycles": ours[0], "stall_cycles": ours[1] - ours[0],
                     "total_cycles": ours[1], "seconds": 0.002},
            "scalesim": {"name": name, "compute_cycles": theirs[0],
                         "stall_cycles": theirs[1] - theirs[0], "total_cycles": theirs[1],
                         "seconds": 41.5},
            "compute_diff": ours[0] - theirs[0],
            "total_diff_percent": 100.0 * (ours[1] - theirs[1]) / theirs[1]}


ROWS = [
    layer("n10", 3136, 64, 64, (32, 32), "os", (213248, 230000), (213248, 229000)),
    layer("n10", 3136, 64, 64, (32, 32), "ws", (203840, 215000), (203840, 215000)),
    # Total cycles 6% over SCALE-Sim's: outside the 5% bound, so this job fails.
    layer("n146", 49, 2048, 512, (128, 128), "is", (52480, 63600), (52480, 60000)),
]


@pytest.fixture
def results_file(tmp_path):
    path = tmp_path / "fidelity.json"
    path.write_text(json.dumps({"summary": {"layers": 3, "compute_exact": 3, "speedup": 2e4},
                                "layers": ROWS}))
    return path


@pytest.fixture
def db(tmp_path):
    return f"sqlite:///{tmp_path / 'results.db'}"


def record(capsys, tmp_path, db, path, *extra):
    code = main(["fidelity", "record", str(path), "--db", db, "--home", str(tmp_path / "home"),
                 *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_weekly_run_with_one_job_per_layer_array_and_dataflow(capsys, tmp_path, db,
                                                               results_file):
    code, out, _ = record(capsys, tmp_path, db, results_file, "--json")
    assert code == 1  # one layer is outside the bound: stored, and the exit says so
    stored = json.loads(out)
    assert stored == {"run_id": stored["run_id"], "jobs": 3, "passed": 2, "failed": 1}
    store = Store(db)
    run = store.run(stored["run_id"])
    assert run["tier"] == "weekly" and run["status"] == "completed"
    assert run["summary"]["speedup"] == 2e4
    assert run["summary"]["by_stage"] == {"fidelity": {"passed": 2, "failed": 1}}
    jobs = {job["key"]: job for job in store.jobs(stored["run_id"])}
    assert set(jobs) == {"fidelity:n10:32x32:os", "fidelity:n10:32x32:ws",
                         "fidelity:n146:128x128:is"}
    failed = jobs["fidelity:n146:128x128:is"]
    assert failed["status"] == "failed" and failed["stage"] == "fidelity"
    assert failed["sku"] == "scalesim-128x128-is"
    assert failed["message"] == "compute exact, total +6.00% (limit 5%)"
    assert failed["details"]["M"] == 49
    assert jobs["fidelity:n10:32x32:os"]["message"] == "compute exact, total +0.44%"
    metrics = {m["name"]: m for m in store.metrics(job_id=failed["id"])}
    assert {name: m["value"] for name, m in metrics.items()} == {
        "ours_compute_cycles": 52480, "scalesim_compute_cycles": 52480,
        "compute_cycles_diff": 0, "ours_total_cycles": 63600, "scalesim_total_cycles": 60000,
        "total_cycles_diff": 3600, "total_cycles_diff_percent": pytest.approx(6.0)}
    assert metrics["total_cycles_diff"]["workload"] == "n146"
    assert metrics["total_cycles_diff"]["sku"] == "scalesim-128x128-is"
    store.close()


def test_all_within_bounds_exits_zero_with_a_summary_line(capsys, tmp_path, db):
    path = tmp_path / "good.json"
    path.write_text(json.dumps({"summary": {}, "layers": ROWS[:2]}))
    code, out, _ = record(capsys, tmp_path, db, path)
    assert code == 0
    assert out.strip().endswith("(weekly): 2 jobs, 2 passed, 0 failed")
    store = Store(db)
    assert [run["counts"] for run in store.runs()] == [{"passed": 2}]
    series = store.metric_series("compute_cycles_diff")
    assert [(p["workload"], p["sku"], p["value"]) for p in series] == [
        ("n10", "scalesim-32x32-os", 0), ("n10", "scalesim-32x32-ws", 0)]
    store.close()


@pytest.mark.parametrize("document, message", [
    ("{not json", "is not JSON"),
    ('{"summary": {}}', "the document has no field 'layers'"),
    ('{"layers": []}', "'layers' is empty"),
    (json.dumps({"layers": [{**ROWS[0], "dataflow": "xs"}]}),
     "layers[0].dataflow is 'xs', expected one of os, ws, is"),
    (json.dumps({"layers": [{**ROWS[0], "ours": {"compute_cycles": 5, "total_cycles": -1}}]}),
     "layers[0].ours.total_cycles is -1, expected a non-negative integer"),
    (json.dumps({"layers": [{**ROWS[0], "array": [32]}]}),
     "layers[0].array is [32], expected [rows, cols]"),
    (json.dumps({"layers": [ROWS[0], ROWS[0]]}), "layers[1] repeats layer n10 on 32x32 os"),
])
def test_bad_files_are_one_line_errors_and_store_nothing(capsys, tmp_path, db, document,
                                                         message):
    path = tmp_path / "bad.json"
    path.write_text(document)
    code, out, err = record(capsys, tmp_path, db, path)
    assert code == 2 and out == ""
    assert err.startswith("stackci: error: ") and message in err
    assert str(path) in err and len(err.strip().splitlines()) == 1
    store = Store(db)
    assert store.runs() == []
    store.close()


def test_a_missing_file_names_it(capsys, tmp_path, db):
    code, _, err = record(capsys, tmp_path, db, tmp_path / "absent.json")
    assert code == 2
    assert err.strip() == (f"stackci: error: cannot read fidelity results "
                           f"{tmp_path / 'absent.json'}: No such file or directory")


def test_a_checkpoint_of_an_unfinished_run_is_not_recorded(capsys, tmp_path, db):
    path = tmp_path / "fidelity.partial.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    code, out, err = record(capsys, tmp_path, db, path)
    assert code == 2 and out == ""
    assert err.strip() == (f"stackci: error: {path} is run_fidelity.py's checkpoint of an "
                           "unfinished run; rerun the same run_fidelity.py command to finish "
                           "it, then record its --json")
    store = Store(db)
    assert store.runs() == []
    store.close()
