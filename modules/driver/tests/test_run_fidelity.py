"""run_fidelity.py's checkpoint and --jobs, against a fake SCALE-Sim worker (no SCALE-Sim needed).

The fake stands in for SCALE-Sim's interpreter: it logs every layer it is asked for, answers
with cycles derived from the GEMM, and fails the layers named in FAKE_FAIL.
"""

import fcntl
import importlib.util
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

FIDELITY = Path(__file__).resolve().parents[1] / "fidelity"  # modules/driver/fidelity

FAKE_WORKER = """\
import json, os, sys, time, uuid
from pathlib import Path

job = json.load(sys.stdin)
peers = os.environ.get("FAKE_PEERS")
saw_peer = None
if peers:  # wait (up to 10 s) until another worker has started: proof that two run at once
    Path(peers, uuid.uuid4().hex).touch()
    deadline = time.monotonic() + 10
    while len(os.listdir(peers)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    saw_peer = len(os.listdir(peers)) >= 2
for layer in job["layers"]:
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(json.dumps({"name": layer["name"], "array": job["array"],
                              "dataflow": job["dataflow"], "sram_kb": job["sram_kb"][0],
                              "bandwidth": job["bandwidth"], "saw_peer": saw_peer,
                              "pid": os.getpid()}) + "\\n")
    if layer["name"] == os.environ.get("FAKE_HANG"):
        time.sleep(120)
    if layer["name"] in os.environ.get("FAKE_FAIL", "").split(","):
        sys.exit(3)
    M, N, K = layer["M"], layer["N"], layer["K"]
    compute = M * N * K // (job["array"][0] * job["array"][1]) + M + N + K
    stall = 7 * job["bandwidth"] if job["dataflow"] == "ws" else 0
    print(json.dumps({"name": layer["name"], "M": M, "N": N, "K": K, "compute_cycles": compute,
                      "stall_cycles": stall, "total_cycles": compute + stall,
                      "seconds": 0.25, "peak_rss_mb": 50}), flush=True)
"""

GEMMS = "64,64,64;128,32,16;1,100,200"  # gemm0, gemm1, gemm2
PLAN = [(f"gemm{i}", dataflow) for dataflow in ("os", "ws") for i in range(3)]


@pytest.fixture(scope="module")
def run_fidelity():
    spec = importlib.util.spec_from_file_location("run_fidelity", FIDELITY / "run_fidelity.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """The fake worker's interpreter, and its log of the layers it was asked for."""
    script = tmp_path / "fake-scalesim-python"
    script.write_text(f"#!{sys.executable}\n{FAKE_WORKER}")
    script.chmod(0o755)
    log = tmp_path / "fake.log"
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.delenv("FAKE_FAIL", raising=False)
    monkeypatch.delenv("FAKE_PEERS", raising=False)
    monkeypatch.delenv("FAKE_HANG", raising=False)
    return script, log


def simulated(log: Path) -> list[tuple]:
    """What the fake simulated since the last call, as (layer, dataflow, sram_kb), sorted."""
    if not log.exists():
        return []
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    log.unlink()
    return sorted((c["name"], c["dataflow"], c["sram_kb"]) for c in calls)


def run(run_fidelity, capsys, fake, results: Path, *extra: str):
    """(exit code, stdout, stderr) of one run_fidelity.py run on the 8x8 array."""
    argv = ["--scalesim-python", str(fake[0]), "--gemms", GEMMS, "--array", "8x8",
            "--dataflow", "os", "--dataflow", "ws", "--json", str(results), *extra]
    try:
        code = run_fidelity.main(argv)
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def checkpoint_rows(path: Path) -> list[tuple]:
    return [(row["name"], row["dataflow"])
            for row in map(json.loads, path.read_text().splitlines())]


def table_rows(results: Path) -> list[tuple]:
    return [(row["name"], row["dataflow"]) for row in json.loads(results.read_text())["layers"]]


def test_a_failed_run_keeps_its_rows_and_the_rerun_simulates_only_the_rest(
        run_fidelity, capsys, fake, tmp_path, monkeypatch):
    results, checkpoint = tmp_path / "fid.json", tmp_path / "fid.partial.jsonl"
    monkeypatch.setenv("FAKE_FAIL", "gemm1")
    code, out, err = run(run_fidelity, capsys, fake, results)
    assert code == 2 and not results.exists()
    assert err.startswith("run_fidelity: error: 2 layer run(s) failed (gemm1 8x8 os: SCALE-Sim "
                          "worker") and "exited with status 3" in err
    assert f"the 4 finished are kept in {checkpoint}: rerun the same command to resume" in err
    assert len(err.strip().splitlines()) == 1
    assert sorted(checkpoint_rows(checkpoint)) == sorted(p for p in PLAN if p[0] != "gemm1")
    first = {(r["name"], r["dataflow"]): r["scalesim"]
             for r in map(json.loads, checkpoint.read_text().splitlines())}
    assert len(simulated(fake[1])) == 6
    progress = [line for line in out.splitlines() if line.startswith("[")]
    assert len(progress) == 6
    assert re.fullmatch(r"\[1/6\] gemm0 8x8 os +compute diff [+-]\d+, total [+-]\d+\.\d\d% "
                        r"\(SCALE-Sim 0\.2 s\) \| elapsed \d:\d\d:\d\d, ETA \d:\d\d:\d\d",
                        progress[0])
    assert any(re.match(r"\[\d/6\] gemm1 8x8 ws +FAILED: .*exited with status 3", line)
               for line in progress)

    monkeypatch.delenv("FAKE_FAIL")
    code, out, err = run(run_fidelity, capsys, fake, results)
    assert code in (0, 1) and err == ""
    assert simulated(fake[1]) == [("gemm1", "os", 64), ("gemm1", "ws", 64)]
    assert out.startswith(f"6 layer runs: 4 already in checkpoint {checkpoint}, 2 to simulate")
    assert "[5/6] gemm1 8x8 os" in out and "[6/6] gemm1 8x8 ws" in out
    assert table_rows(results) == PLAN
    document = json.loads(results.read_text())
    for row in document["layers"]:
        if row["name"] != "gemm1":
            assert row["scalesim"] == first[row["name"], row["dataflow"]]
    assert document["summary"]["layers"] == 6
    assert "summary: 6 layer runs" in out
    assert not checkpoint.exists()  # all of it is in the results file now


def test_a_torn_last_line_is_dropped_and_cut_before_new_rows(run_fidelity, capsys, fake,
                                                             tmp_path, monkeypatch):
    results, checkpoint = tmp_path / "fid.json", tmp_path / "fid.partial.jsonl"
    monkeypatch.setenv("FAKE_FAIL", "gemm1,gemm2")
    assert run(run_fidelity, capsys, fake, results)[0] == 2
    simulated(fake[1])
    with open(checkpoint, "a") as file:  # killed in the middle of writing a row
        file.write('{"name": "gemm1", "M": 128, "N": 32, "K"')

    monkeypatch.setenv("FAKE_FAIL", "gemm2")
    code, out, _ = run(run_fidelity, capsys, fake, results)
    assert code == 2 and "dropped a torn last line" in out
    assert simulated(fake[1]) == [("gemm1", "os", 64), ("gemm1", "ws", 64),
                                  ("gemm2", "os", 64), ("gemm2", "ws", 64)]
    assert sorted(checkpoint_rows(checkpoint)) == sorted(p for p in PLAN if p[0] != "gemm2")

    monkeypatch.delenv("FAKE_FAIL")
    code, out, _ = run(run_fidelity, capsys, fake, results)
    assert code in (0, 1) and "dropped a torn" not in out
    assert simulated(fake[1]) == [("gemm2", "os", 64), ("gemm2", "ws", 64)]
    assert table_rows(results) == PLAN


@pytest.mark.parametrize("first, second", [
    (["--sram-kb", "32"], ["--sram-kb", "64"]),
    (["--bandwidth", "8"], ["--bandwidth", "16"]),
    (["--gemms", "64,64,32;128,32,16;1,100,100"], []),  # same names, other shapes
], ids=["sram", "bandwidth", "shapes"])
def test_rows_of_other_settings_are_never_reused(run_fidelity, capsys, fake, tmp_path,
                                                monkeypatch, first, second):
    results, checkpoint = tmp_path / "fid.json", tmp_path / "fid.partial.jsonl"
    monkeypatch.setenv("FAKE_FAIL", "gemm1")
    assert run(run_fidelity, capsys, fake, results, *first)[0] == 2
    simulated(fake[1])

    monkeypatch.delenv("FAKE_FAIL")
    code, out, _ = run(run_fidelity, capsys, fake, results, *second)
    assert code in (0, 1)
    assert len(simulated(fake[1])) == 6
    assert "0 already in checkpoint" in out
    assert "ignored 4 checkpoint row(s) of other settings" in out
    document = json.loads(results.read_text())
    assert table_rows(results) == PLAN
    assert {row["sram_kb"] for row in document["layers"]} == {64}
    assert {row["bandwidth"] for row in document["layers"]} == {16}
    assert {(row["name"], row["K"]) for row in document["layers"]} == {
        ("gemm0", 64), ("gemm1", 16), ("gemm2", 200)}


def without_seconds(text: str) -> list[str]:
    """The tables and summary of a run, minus the wall times (which differ run to run)."""
    tables = text[text.index("\n\n"):text.index("\nsummary:")]
    return [line.rsplit("|", 1)[0] for line in tables.splitlines()]


def test_two_jobs_run_at_once_and_give_the_same_table_as_one(run_fidelity, capsys, fake,
                                                            tmp_path, monkeypatch):
    code_1, out_1, _ = run(run_fidelity, capsys, fake, tmp_path / "one.json", "--jobs", "1")
    peers = tmp_path / "peers"
    peers.mkdir()
    monkeypatch.setenv("FAKE_PEERS", str(peers))
    code_2, out_2, _ = run(run_fidelity, capsys, fake, tmp_path / "two.json", "--jobs", "2")
    calls = [json.loads(line) for line in fake[1].read_text().splitlines()]
    assert all(call["saw_peer"] for call in calls if call["saw_peer"] is not None)
    assert sum(call["saw_peer"] is not None for call in calls) == 6
    assert code_1 == code_2
    assert without_seconds(out_1) == without_seconds(out_2)

    def figures(path):
        return [{k: v for k, v in row.items() if k not in ("ours", "scalesim")} | {
            "ours": row["ours"]["total_cycles"], "scalesim": row["scalesim"]["total_cycles"]}
            for row in json.loads(path.read_text())["layers"]]

    assert figures(tmp_path / "one.json") == figures(tmp_path / "two.json")
    arrived = [line.split()[1:4] for line in out_2.splitlines() if line.startswith("[")]
    assert sorted(map(tuple, arrived)) == sorted((n, "8x8", d) for n, d in PLAN)


ROW = {"name": "gemm0", "M": 64, "N": 64, "K": 64, "array": [8, 8], "dataflow": "os",
       "sram_kb": 64, "bandwidth": 16,
       "scalesim": {"compute_cycles": 9, "stall_cycles": 0, "total_cycles": 9}}


@pytest.mark.parametrize("line, problem", [
    ({"name": "gemm0"}, "no field 'M'"),
    ({**ROW, "M": "64"}, "M is '64', expected a non-negative integer"),
    ({**ROW, "name": ["gemm0"]}, "name is ['gemm0'], expected a string"),
    ({**ROW, "array": [8]}, "array is [8], expected [rows, cols]"),
    ({**ROW, "scalesim": {"compute_cycles": 9}},
     "scalesim.stall_cycles is missing or not a non-negative integer"),
])
def test_a_checkpoint_with_a_foreign_line_is_a_one_line_error(run_fidelity, capsys, fake,
                                                              tmp_path, line, problem):
    checkpoint = tmp_path / "mine.jsonl"
    content = json.dumps(line) + "\n" + json.dumps(ROW) + "\n"
    checkpoint.write_text(content)
    code, _, err = run(run_fidelity, capsys, fake, tmp_path / "fid.json",
                       "--checkpoint", str(checkpoint))
    assert code == 2 and simulated(fake[1]) == []
    assert err.strip() == (f"run_fidelity: error: checkpoint {checkpoint} line 1: {problem}; "
                           "it is not a run_fidelity row (fix the line or delete the file)")
    assert checkpoint.read_text() == content  # left as it was, for a person to look at


def test_a_checkpoint_in_use_by_another_run_is_refused(run_fidelity, capsys, fake, tmp_path):
    checkpoint = tmp_path / "fid.partial.jsonl"
    with open(checkpoint, "a") as other_run:
        fcntl.flock(other_run, fcntl.LOCK_EX)
        code, _, err = run(run_fidelity, capsys, fake, tmp_path / "fid.json")
    assert code == 2 and simulated(fake[1]) == []
    assert err.strip() == (f"run_fidelity: error: checkpoint {checkpoint} is in use by another "
                           "run_fidelity run")


def test_jobs_must_be_positive(run_fidelity, capsys, fake, tmp_path):
    code, _, err = run(run_fidelity, capsys, fake, tmp_path / "fid.json", "--jobs", "0")
    assert code == 2 and err.strip() == "run_fidelity: error: --jobs must be at least 1, got 0"


def is_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # exited; waiting for its new parent to reap it


def test_a_killed_run_kills_its_workers_and_resumes(fake, tmp_path, monkeypatch):
    results, checkpoint = tmp_path / "fid.json", tmp_path / "fid.partial.jsonl"
    command = [sys.executable, str(FIDELITY / "run_fidelity.py"), "--scalesim-python",
               str(fake[0]), "--gemms", GEMMS, "--array", "8x8", "--dataflow", "os",
               "--json", str(results)]
    monkeypatch.setenv("FAKE_HANG", "gemm1")
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):  # until the fake is stuck in gemm1 (gemm0 is done by then)
            calls = fake[1].read_text().splitlines() if fake[1].exists() else []
            if len(calls) == 2:
                break
            time.sleep(0.05)
        hung = json.loads(calls[-1])
        assert hung["name"] == "gemm1"
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 130
    assert err.strip() == (f"run_fidelity: stopped; the finished rows are kept in {checkpoint}: "
                           "rerun the same command to resume")
    assert "[1/3] gemm0 8x8 os" in out
    assert checkpoint_rows(checkpoint) == [("gemm0", "os")]
    assert is_gone(hung["pid"])
    simulated(fake[1])

    monkeypatch.delenv("FAKE_HANG")
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert rerun.returncode in (0, 1), rerun.stderr
    assert simulated(fake[1]) == [("gemm1", "os", 64), ("gemm2", "os", 64)]
    assert table_rows(results) == [("gemm0", "os"), ("gemm1", "os"), ("gemm2", "os")]
