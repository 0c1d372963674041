"""A run is owned (nightly/lease.py): a live owner is never taken over, a lost one's in-flight
jobs are recorded as lost, then run again."""

import os
import socket
import subprocess
import sys
from datetime import timedelta

import pytest

from fakes import FakePort
from stackci.errors import StackciError
from stackci.nightly import lease as leases
from stackci.nightly.plan import NightlyOptions
from stackci.nightly.run import Nightly
from stackci.results.schema import JobRow, utcnow


def night(ws, store, port):
    nightly = Nightly(ws, store, port=port, suite=port.suite_path(),
                      dashboard_dir=ws.home / "site")
    return nightly.start(NightlyOptions(tier="smoke", no_tests=True), [port.combination()])


def left_running(store, run_id, key):
    """What a killed runner leaves: the run and one job `running`."""
    with store._sessions.begin() as session:
        row = session.query(JobRow).filter_by(run_id=run_id, key=key).one()
        row.status, row.message, row.details = "running", "", {}
    store.update_run(run_id, status="running")


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def hold(store, run_id, *, pid, host=None, heartbeat_age_s=0.0):
    store.take_lease(run_id, owner=f"tester@{host or socket.gethostname()}:{pid}",
                     host=host or socket.gethostname(), pid=pid,
                     pid_started=leases.process_started(pid), ttl_s=60.0)
    if heartbeat_age_s:
        store.beat(run_id, f"tester@{host or socket.gethostname()}:{pid}", [],
                   at=utcnow() - timedelta(seconds=heartbeat_age_s))


def test_a_finished_night_leaves_no_lease(ws, store, tmp_path):
    result = night(ws, store, FakePort(tmp_path, workloads=("resnet",)))
    assert store.lease(result.run_id) is None


def test_resume_refuses_a_run_whose_owner_is_alive(ws, store, tmp_path):
    port = FakePort(tmp_path, workloads=("resnet",))
    run_id = night(ws, store, port).run_id
    key = next(job.key for job in store.jobs(run_id) if job.stage == "workloads")
    left_running(store, run_id, key)
    hold(store, run_id, pid=os.getpid())
    port.calls.clear()
    with pytest.raises(StackciError, match=rf"run {run_id} is still running, owned by "
                       rf"tester@{socket.gethostname()}:{os.getpid()} \(pid"):
        Nightly(ws, store, port=port, suite=port.suite_path()).resume()
    assert port.calls == []
    assert {job.key: job.status for job in store.jobs(run_id)}[key] == "running"


def test_a_lost_owner_s_in_flight_jobs_are_recorded_then_run_again(ws, store, tmp_path):
    port = FakePort(tmp_path, workloads=("resnet",))
    run_id = night(ws, store, port).run_id
    key = next(job.key for job in store.jobs(run_id) if job.stage == "workloads")
    left_running(store, run_id, key)
    hold(store, run_id, pid=dead_pid())
    lost_at = store.lease(run_id)["heartbeat_at"]
    result = Nightly(ws, store, port=port, suite=port.suite_path(),
                     dashboard_dir=ws.home / "site").resume()
    assert result.ok and store.run(run_id).status == "completed"
    job = {job.key: job for job in store.jobs(run_id)}[key]
    assert job.status == "passed"
    [attempt] = job.details["attempts"]
    assert attempt["status"] == "error" and attempt["reason"] == "runner-lost"
    assert attempt["message"] == (f"runner lost (killed or crashed) at "
                                  f"{lost_at:%Y-%m-%d %H:%M:%S} UTC")
    assert store.lease(run_id) is None


def test_another_host_s_lease_lives_as_long_as_its_heartbeat(store, ws, tmp_path):
    run_id = night(ws, store, FakePort(tmp_path, workloads=("resnet",))).run_id
    hold(store, run_id, pid=1, host="elsewhere", heartbeat_age_s=5)
    assert leases.alive(store.lease(run_id))
    store.beat(run_id, "tester@elsewhere:1", [], at=utcnow() - timedelta(seconds=61))
    assert not leases.alive(store.lease(run_id))


def test_a_lease_taken_over_twice_goes_to_one_resumer(store, ws, tmp_path):
    run_id = night(ws, store, FakePort(tmp_path, workloads=("resnet",))).run_id
    hold(store, run_id, pid=dead_pid())
    seen = store.lease(run_id)
    first = leases.Lease(store, run_id)
    first.take(replacing=seen)
    try:
        with pytest.raises(StackciError, match="owned by"):
            leases.Lease(store, run_id).take(replacing=seen)
    finally:
        first.release()
