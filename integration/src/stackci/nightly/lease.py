"""A run is owned: the nightly running it holds a lease in the store (owner, host, pid,
heartbeat), refreshed by a thread. `--resume` refuses a run whose owner is alive and takes
over one whose owner is lost: on the owner's host a lease is alive while its process is
(same pid, same start time), elsewhere while its heartbeat is younger than its time to live.
"""

from __future__ import annotations

import getpass
import os
import socket
import sys
import threading
from datetime import datetime

from stackci.errors import StackciError
from stackci.results.schema import utcnow
from stackci.stack import runner

HEARTBEAT_S = 5.0
TTL_S = 60.0  # a lease from another host without a heartbeat for this long is lost


def process_started(pid: int) -> str:
    """The start time of process `pid` in clock ticks since boot ("" when unknown): with the
    pid it names one process, even after the pid is reused."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def pid_alive(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not started or process_started(pid) in ("", started)


def alive(lease: dict, now: datetime | None = None) -> bool:
    if lease["host"] == socket.gethostname():
        return pid_alive(lease["pid"], lease["pid_started"])
    age = ((now or utcnow()) - lease["heartbeat_at"]).total_seconds()
    return age < lease["ttl_s"]


def describe(lease: dict) -> str:
    age = (utcnow() - lease["heartbeat_at"]).total_seconds()
    return (f"{lease['owner']} (pid {lease['pid']} on {lease['host']}, last heartbeat "
            f"{age:.0f}s ago)")


def reap(lease: dict) -> None:
    """Kill the process groups a lost owner on this host left running (each recorded with
    its leader's start time, so a reused pid is never hit)."""
    if lease["host"] != socket.gethostname():
        return
    for pgid, started in lease.get("processes") or []:
        if pid_alive(pgid, started):
            runner.kill_group(pgid)


class Lease:
    """This process's lease on a run, with its heartbeat thread (a context manager)."""

    def __init__(self, store, run_id: int, *, heartbeat_s: float = HEARTBEAT_S,
                 ttl_s: float = TTL_S):
        self.store, self.run_id = store, run_id
        self.heartbeat_s, self.ttl_s = heartbeat_s, ttl_s
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.owner = f"{_user()}@{self.host}:{self.pid}"
        self._stop = threading.Event()
        self._wake = threading.Event()  # a process group started or ended: beat now
        self._thread: threading.Thread | None = None

    def take(self, replacing: dict | None = None) -> None:
        """Own the run (taking `replacing`, a lost owner's lease, over) or say who does."""
        taken = self.store.take_lease(self.run_id, owner=self.owner, host=self.host,
                                      pid=self.pid, pid_started=process_started(self.pid),
                                      ttl_s=self.ttl_s, replacing=replacing)
        if not taken:
            current = self.store.lease(self.run_id)
            who = describe(current) if current else "another process"
            raise StackciError(f"run {self.run_id} is owned by {who}; not resuming it")
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name=f"lease of run {self.run_id}")
        self._thread.start()
        runner.WATCHERS.append(self._wake.set)

    def _beat(self) -> None:
        warned = False
        while True:
            self._wake.wait(self.heartbeat_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            processes = [[pgid, process_started(pgid)] for pgid in runner.live_groups()]
            try:
                self.store.beat(self.run_id, self.owner, processes)
            except Exception as exc:  # a failing store must not end the run (journal.py)
                if not warned:
                    print(f"stackci: lease heartbeat of run {self.run_id} failed: "
                          f"{' '.join(str(exc).split())[:200]}", file=sys.stderr)
                    warned = True

    def release(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._wake.set in runner.WATCHERS:
            runner.WATCHERS.remove(self._wake.set)
        try:
            self.store.release_lease(self.run_id, self.owner)
        except Exception:  # the lease dies with the process anyway (pid check)
            pass


def lost_at(lease: dict | None) -> datetime:
    """When a lost runner was last seen: its last heartbeat (now when it left no lease)."""
    return lease["heartbeat_at"] if lease else utcnow()


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"

