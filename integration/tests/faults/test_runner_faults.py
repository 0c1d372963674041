"""Faults of the runner and its jobs, on real nights in subprocesses: the runner killed
(SIGKILL, SIGTERM) mid-job then resumed, a resume while the owner is alive, a job's child
killed, a job that hangs. Each asserts the recorded cause, that every finished result is
kept as it was, and that no stack process is left behind."""

import os
import signal

from faultstack import one_line_error, record


def kept(repo, before: dict, metrics_before: list) -> str:
    """Every job finished before the fault is stored exactly as it was."""
    after = repo.jobs()
    for name, job in before.items():
        assert after[name]["status"] == job["status"], (name, after[name], job)
        assert after[name]["finished_at"] == job["finished_at"], name
    assert repo.metrics()[:len(metrics_before)] == metrics_before
    return f"{len(before)}/{len(before)}"


def finished(repo) -> dict:
    return {name: job for name, job in repo.jobs().items()
            if job["status"] in ("passed", "failed", "error", "timeout")}


def test_sigkill_of_the_runner_mid_job_then_resume(repo):
    repo.inject("beta", "hang", once=True)
    night = repo.start()
    repo.wait_running("beta", night)
    before, metrics = finished(repo), repo.metrics()
    assert before["alpha"]["status"] == "passed"
    night.kill()
    night.wait()
    assert repo.run_status() == "running"  # what a kill leaves; the lease says it is lost
    again = repo.run("--resume")
    assert again.returncode == 0, again.stderr
    beta = repo.jobs()["beta"]
    assert beta["status"] == "passed"
    [attempt] = beta["details"]["attempts"]
    assert attempt["status"] == "error"
    assert attempt["message"].startswith("runner lost (killed or crashed) at ")
    assert repo.run_status() == "completed"
    assert repo.wait_no_stack_processes() == []  # the resume reaped what the lost one left
    record("SIGKILL of the runner mid-job", f"beta: {attempt['message']}",
           kept(repo, before, metrics), "yes, completed")


def test_sigterm_of_the_runner_mid_job_then_resume(repo):
    repo.inject("beta", "hang", once=True)
    night = repo.start()
    repo.wait_running("beta", night)
    before, metrics = finished(repo), repo.metrics()
    night.send_signal(signal.SIGTERM)
    _, stderr = night.communicate(timeout=60)
    assert night.returncode == 128 + signal.SIGTERM, stderr
    assert "interrupted (SIGTERM)" in stderr and "Traceback" not in stderr
    assert repo.wait_no_stack_processes(5) == []  # killed with the run, not orphaned
    assert repo.run_status() == "interrupted"
    beta = repo.jobs()["beta"]
    assert (beta["status"], beta["message"]) == ("not_run", "interrupted (SIGTERM)")
    again = repo.run("--resume")
    assert again.returncode == 0, again.stderr
    assert repo.jobs()["beta"]["status"] == "passed" and repo.run_status() == "completed"
    record("SIGTERM of the runner mid-job", f"run interrupted; beta: {beta['message']}",
           kept(repo, before, metrics), "yes, completed")


def test_sighup_ends_the_run_like_sigint(repo):
    repo.inject("beta", "hang", once=True)
    night = repo.start()
    repo.wait_running("beta", night)
    night.send_signal(signal.SIGHUP)
    _, stderr = night.communicate(timeout=60)
    assert night.returncode == 128 + signal.SIGHUP, stderr
    assert repo.run_status() == "interrupted"
    assert repo.jobs()["beta"]["message"] == "interrupted (SIGHUP)"
    assert repo.wait_no_stack_processes(5) == []


def test_resume_while_the_owner_is_alive_is_refused(repo):
    marker = repo.inject("beta", "hang", once=True)
    night = repo.start()
    try:
        repo.wait_running("beta", night)
        before, metrics = finished(repo), repo.metrics()
        refused = repo.run("--resume")
        assert refused.returncode == 1
        line = one_line_error(refused.stderr)
        assert f":{night.pid} (pid {night.pid} on " in line and "still running" in line
        assert repo.jobs()["beta"]["status"] == "running"  # nothing was taken over
    finally:
        night.send_signal(signal.SIGTERM)
        night.communicate(timeout=60)
    assert marker.exists()
    again = repo.run("--resume")
    assert again.returncode == 0, again.stderr
    record("resume while the owner is alive", line.removeprefix("stackci: error: "),
           kept(repo, before, metrics), "refused; later yes")


def test_a_job_s_child_killed(repo):
    marker = repo.inject("beta", "hang", once=True)
    night = repo.start()
    repo.wait_running("beta", night)
    before, metrics = finished(repo), repo.metrics()
    os.kill(int(marker.read_text()), signal.SIGKILL)
    _, stderr = night.communicate(timeout=120)
    assert night.returncode == 1, stderr
    beta = repo.jobs()["beta"]
    assert beta["status"] == "error"
    assert "killed by signal 9" in beta["message"], beta
    assert repo.wait_no_stack_processes(5) == []  # its own child went with its group
    assert repo.run_status() == "completed"
    record("a job's child killed (SIGKILL)", f"beta: {beta['message']}",
           kept(repo, before, metrics), "not needed (run completed)")


def test_a_job_that_hangs_times_out(repo):
    repo.inject("beta", "hang")
    night = repo.start("--job-timeout", "3s")
    repo.wait_running("beta", night)
    before, metrics = finished(repo), repo.metrics()
    _, stderr = night.communicate(timeout=120)
    assert night.returncode == 1, stderr
    beta = repo.jobs()["beta"]
    assert beta["status"] == "timeout", beta
    assert repo.wait_no_stack_processes(5) == []
    record("a job that hangs (--job-timeout 3s)", f"beta: {beta['message']}",
           kept(repo, before, metrics), "not needed (run completed)")
