"""The night on Dask (nightly/dask_executor.py): a LocalCluster of two worker processes runs
the same DAG with the same figures as the thread executor, and a worker killed mid-job costs
that job one attempt, recorded, while the night completes."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fakes import FakePort
from stackci import cli
from stackci.nightly.dask_executor import DaskCluster, _last_worker
from stackci.nightly.plan import NightlyOptions
from stackci.nightly.run import Nightly
from stackci.results.store import Store

pytest.importorskip("distributed")


def options(**fields):
    return NightlyOptions(tier="smoke", no_tests=True, bisect_probes=0, **fields)


def night(ws, store, port, executor=None, **fields):
    nightly = Nightly(ws, store, port=port, suite=port.suite_path(),
                      dashboard_dir=ws.home / "site", executor=executor)
    return nightly.start(options(**fields), [port.combination()])


def figures(store, run_id):
    """(job key, metric, value) of every simulated figure of the run (cycles, latency...:
    deterministic; wall-clock seconds are not)."""
    keys = {job.id: job.key for job in store.jobs(run_id)}
    return sorted((keys[m["job_id"]], m["name"], m["value"])
                  for m in store.metrics(run_id=run_id) if m["unit"] in ("cycles", "us", "bytes"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def real_cluster(home):
    """`dask scheduler` and two `dask worker` processes on loopback, as docs/cluster.md runs
    them (each worker its own STACKCI_HOME; the tests' fakes importable)."""
    bin_dir = Path(sys.executable).parent
    address = f"tcp://127.0.0.1:{free_port()}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    started = [subprocess.Popen([bin_dir / "dask", "scheduler", "--host", "127.0.0.1",
                                 "--port", address.rsplit(":", 1)[1], "--dashboard-address",
                                 ":0"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)]
    try:
        for index in range(2):
            started.append(subprocess.Popen(
                [bin_dir / "dask", "worker", address, "--nthreads", "1", "--nworkers", "1",
                 "--no-nanny", "--host", "127.0.0.1"],
                env={**env, "STACKCI_HOME": str(home / f"worker{index}")},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with DaskCluster(scheduler=address) as found:
            found.client.wait_for_workers(2, timeout=120)
            yield found
    finally:
        for process in reversed(started):
            process.kill()
            process.wait()


@pytest.fixture(scope="module", params=["local", "tcp"])
def cluster(request, tmp_path_factory):
    """A LocalCluster of two processes, and a real scheduler with two workers on a port."""
    if request.param == "local":
        with DaskCluster(workers=2) as found:
            yield found
    else:
        with real_cluster(tmp_path_factory.mktemp("dask")) as found:
            yield found


def test_a_local_cluster_runs_the_night_with_the_thread_executors_figures(ws, store, tmp_path,
                                                                         cluster):
    port = FakePort(tmp_path)
    local = night(ws, store, port)
    # no_reuse: the Dask night measures everything itself (a reused job copies its figures).
    on_dask = night(ws, store, port, executor=cluster.executor, no_reuse=True)
    assert local.ok and on_dask.ok
    assert {k: v[0] for k, v in on_dask.ended.items()} == {k: v[0] for k, v in
                                                           local.ended.items()}
    assert figures(store, on_dask.run_id) == figures(store, local.run_id)
    assert {name for _, name, _ in figures(store, local.run_id)} >= {"total_cycles"}
    jobs = store.jobs(on_dask.run_id)
    workers = {job.details.get("worker") for job in jobs if job.stage == "workloads"}
    assert workers and all(w.startswith("tcp://") for w in workers)
    # Store-reading jobs stay on this side; publish, as ever, after the summary.
    assert "worker" not in next(j for j in jobs if j.stage == "regressions").details
    assert store.run(on_dask.run_id).status == "completed"
    assert "completed" in (ws.home / "site" / "index.html").read_text()

    # A second Dask night with nothing changed reuses what it can, as the thread executor does.
    port.calls.clear()
    again = night(ws, store, port, executor=cluster.executor)
    assert again.ok and again.summary["reused"]["count"] > 0
    sample = set(store.run(again.run_id).plan["remeasure"])
    assert {job.key for job in store.jobs(again.run_id) if job.stage == "workloads"
            and job.reason != "reused"} == sample


def running_on(cluster, prefix: str, timeout_s: float = 240) -> str:
    """The address of the worker that is running the task whose key starts with `prefix`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for worker, keys in cluster.client.processing().items():
            if any(str(key).startswith(prefix) for key in keys):
                return worker
        time.sleep(0.1)
    raise AssertionError(f"no worker ran {prefix} within {timeout_s}s")


def test_a_worker_killed_mid_job_is_recorded_and_the_job_retried_elsewhere(ws, tmp_path,
                                                                          cluster):
    port = FakePort(tmp_path, workloads=("resnet",))
    port.behaviour[("resnet", "edge")] = "slow:8"
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    found = {}
    thread = threading.Thread(target=lambda: found.update(
        result=night(ws, store, port, executor=cluster.executor)))
    thread.start()
    victim = running_on(cluster, "workloads:resnet:edge@")
    [pid] = cluster.client.run(os.getpid, workers=[victim]).values()
    os.kill(pid, signal.SIGKILL)
    thread.join(timeout=300)
    result = found["result"]
    job = next(j for j in store.jobs(result.run_id) if j.key.startswith("workloads:resnet:edge"))
    # Retried once on another worker (the budget allowed it), so it passed; the lost attempt
    # and its worker are on record.
    assert job.status == "passed"
    assert job.details["attempts"] == [{"status": "error", "message": "worker lost",
                                        "worker": victim}]
    assert job.details["worker"] != victim
    assert store.run(result.run_id).status == "completed"
    assert {j.status for j in store.jobs(result.run_id)} == {"passed"}
    store.close()


def test_the_worker_named_by_killed_worker():
    message = ("Attempted to run task 'x' on 1 different workers, but all those workers died "
               "while running it. The last worker that attempt to run the task was "
               "tcp://127.0.0.1:40123. Inspecting worker logs is often a good next step.")
    assert _last_worker(message) == "tcp://127.0.0.1:40123"


def test_scheduler_without_dask_and_an_unreachable_scheduler_are_one_line_errors(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STACKCI_HOME", str(tmp_path / "home"))
    assert cli.main(["nightly", "--scheduler", "tcp://127.0.0.1:1"]) == 2
    assert "--scheduler tcp://127.0.0.1:1: only with --executor dask" in capsys.readouterr().err
    assert cli.main(["nightly", "--executor", "dask", "--scheduler", "tcp://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot reach the Dask scheduler" in err and len(err.splitlines()) == 1
