"""stack/runner.py: every stack process in a group of its own, killed with its children."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stackci.stack import runner

SPAWN = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
open(sys.argv[1], "w").write(str(child.pid))
time.sleep(float(sys.argv[2]))
"""


def gone(pid: int) -> bool:
    """Exited (a zombie waiting for a reaper that is not us counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def wait_gone(pid: int, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.05)
    return False


def test_a_child_left_behind_is_killed_when_its_process_ends(tmp_path):
    pidfile = tmp_path / "pid"
    done = runner.run_in_env(sys.executable, ["-c", SPAWN, str(pidfile), "0"])
    assert done.returncode == 0
    assert wait_gone(int(pidfile.read_text()))
    assert runner.live_groups() == []


def test_a_timeout_kills_the_whole_group(tmp_path):
    pidfile = tmp_path / "pid"
    with pytest.raises(subprocess.TimeoutExpired):
        runner.run_in_env(sys.executable, ["-c", SPAWN, str(pidfile), "60"], timeout_s=2)
    assert wait_gone(int(pidfile.read_text()))
    assert runner.live_groups() == []


def test_each_process_has_a_group_of_its_own():
    done = runner.run_in_env(sys.executable, ["-c", "import os; print(os.getpgrp())"])
    assert int(done.stdout) != os.getpgrp()


def test_kill_groups_kills_only_the_named_thread_s_processes(tmp_path):
    import threading

    pidfile = tmp_path / "pid"
    ended = {}

    def job():
        ended["code"] = runner.run_in_env(sys.executable,
                                          ["-c", SPAWN, str(pidfile), "60"]).returncode

    thread = threading.Thread(target=job, name="job x")
    thread.start()
    while not pidfile.exists() or not pidfile.read_text():
        time.sleep(0.05)
    assert runner.kill_groups("job y") == []
    assert len(runner.kill_groups("job x")) == 1
    thread.join(10)
    assert ended["code"] == -9 and wait_gone(int(pidfile.read_text()))
