"""What a Dask worker does with one job of a night: rebuild the job's action from its stored
plan entry (the action's name and parameters, as `--resume` does), run it against the worker's
own workspace and cache, and send the outcome back. It never opens the store: the scheduler
side (dask_executor.py) records every result.

The worker's workspace is the scheduler's when they share a machine (a LocalCluster: one cache
of environments, safe across processes by its file locks), else its own: STACKCI_REPO (a clone
of the repository) and STACKCI_HOME of the worker process (`Workspace.discover`). Either way an
environment is assembled once per lock hash and reused (sources/build.py).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from stackci.model import Job, JobContext, Outcome
from stackci.nightly.plan import JobSpec
from stackci.nightly.resources import Resources
from stackci.nightly.stages import ACTIONS
from stackci.sources.combination import Combination
from stackci.workspace import Workspace


@dataclass(frozen=True)
class Task:
    """One job as the scheduler sends it: plain data and the port (StackPort holds no state)."""

    run_id: int
    spec: dict  # JobSpec.to_dict(), as the run's stored plan holds it
    combination: dict | None  # Combination.to_dict()
    timeout_s: float
    port: object
    repo: str | None = None  # None: the worker's own (STACKCI_REPO, STACKCI_HOME)
    home: str | None = None


# One Resources per (workspace, run) in a worker process: each environment, contract set and
# prepared workload is made once there, whichever of its jobs asks first.
_resources: dict[tuple, Resources] = {}
_lock = threading.Lock()


def _no_publish() -> Path:
    raise RuntimeError("the publish job runs on the scheduler side, never on a worker")


def resources_for(task: Task) -> Resources:
    with _lock:
        ws = (Workspace(repo=Path(task.repo), home=Path(task.home)) if task.repo
              else Workspace.discover())
        key = (str(ws.repo), str(ws.home), type(task.port).__name__, task.run_id)
        if key not in _resources:
            _resources[key] = Resources(ws, task.port, _no_publish)
        return _resources[key]


def job_of(task: Task) -> Job:
    spec = JobSpec.from_dict(task.spec)
    combination = Combination.from_dict(task.combination) if task.combination else None
    return Job(spec.key, spec.stage, spec.name, ACTIONS[spec.action](combination, spec.params),
               sku=spec.sku, combination=combination, needs=spec.needs, after=spec.after,
               priority=spec.priority)


def run_task(task: Task) -> tuple[Outcome, float, str]:
    """(outcome, seconds, worker address): the job run here, every failure an outcome."""
    from distributed import get_worker  # only ever called inside a Dask worker

    from stackci.nightly.executor import run_action  # the one place failures become outcomes
    resources = resources_for(task)
    job = job_of(task)
    workdir = (resources.ws.home / "runs" / str(task.run_id) /
               re.sub(r"[^A-Za-z0-9_.-]+", "_", job.key))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    outcome = run_action(job, JobContext(timeout_s=task.timeout_s, workdir=workdir,
                                         resources=resources))
    return outcome, time.monotonic() - started, get_worker().address
