"""The nightly's vocabulary, defined once: job statuses, why a job was not run, the stages,
failure classes, metric names, and the value types Outcome and Job.

Everything else imports these names; nothing spells a status or a metric name as a literal
of its own (docs/design.md, "Harness internals").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

# -- job statuses -------------------------------------------------------------------------------

PASSED, FAILED, ERROR, TIMEOUT, NOT_RUN, RUNNING = (
    "passed", "failed", "error", "timeout", "not_run", "running")
JOB_STATUSES = (PASSED, FAILED, ERROR, TIMEOUT, NOT_RUN, RUNNING)
# The order tables and the dashboard show outcomes in.
OUTCOMES = (PASSED, FAILED, ERROR, TIMEOUT, NOT_RUN)
FINISHED_STATUSES = (PASSED, FAILED, ERROR, TIMEOUT)
BAD_STATUSES = (FAILED, ERROR, TIMEOUT)
# Jobs that ran their full course: the evidence for estimates (a crash ends early).
RAN_THROUGH_STATUSES = (PASSED, FAILED, TIMEOUT)
UNFINISHED_RUN_STATUSES = ("running", "interrupted")

# -- why a job was not run (JobRecord.reason) ---------------------------------------------------

BUDGET, DEPENDENCY, NOT_APPLICABLE, INTERRUPTED = (
    "budget", "dependency", "not-applicable", "interrupted")
# Why a job is `error` without its own fault: the nightly running it was killed or crashed
# (nightly/lease.py); a resume runs it again.
RUNNER_LOST = "runner-lost"
# Why a job is `error` after the results database failed mid-run (nightly/recording.py): its
# error may be the database's, so a resume runs it again too.
STORE_FAILED = "store-failed"
RERUN_REASONS = (RUNNER_LOST, STORE_FAILED)
# Why a job may be not run without anything having gone wrong.
NOT_FAILURES = (BUDGET, NOT_APPLICABLE)
# Why a passed job did not run tonight: its inputs are those of a stored passing result,
# which it repeats (details["reused_from"] names the run and job; nightly/reuse.py).
REUSED = "reused"
OUT_OF_BUDGET = "out of budget"

# -- stages, in the order a night runs them -----------------------------------------------------

STAGES = ("build", "contracts", "tests", "workloads", "conformance", "regressions",
          "analysis", "bisect", "publish")

# The combinations a default plan gates on; the rest of it is pairwise coverage (the
# planner's priority; the dashboard's trends draw every recent point of these only).
GATING_COMBINATIONS = ("master", "release:latest")

# How the ONNX node suite classifies a failing case (npu_compiler.conformance).
FAILURE_CLASSES = ("unsupported_operator", "unsupported_type", "wrong_result", "crash")

# -- metric names -------------------------------------------------------------------------------

TOTAL_CYCLES = "total_cycles"
LATENCY_US = "latency_us"
SPEED_RATIO = "speed_ratio"
PEAK_DEVICE_BYTES = "peak_device_bytes"
MAX_ABS_ERROR = "max_abs_error"
COMPILE_S = "compile_s"
CONFORMANCE_PASSED = "conformance_passed"
CONFORMANCE_TOTAL = "conformance_total"
LIBRARY_METRICS = ("opslib_kernels", "opslib_variants", "opslib_configs")
TEST_COUNTS = ("passed", "failed", "skipped")  # tests_<kind>


def conformance_metric(failure_class: str) -> str:
    return f"conformance_{failure_class}"


def tests_metric(kind: str) -> str:
    return f"tests_{kind}"


# -- values -------------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What a stage's action returns; the executor alone stores it.

    `skus` (the driver's SKU descriptions) and `lock` (a built environment's lock, with its
    hash) are evidence a build job found, `regressions` what a regressions or bisect job
    concluded; the executor records them with the job."""

    status: str  # one of FINISHED_STATUSES or NOT_RUN
    message: str = ""
    metrics: list[dict] = field(default_factory=list)
    ops: list[dict] = field(default_factory=list)
    details: dict = field(default_factory=dict)
    skus: list[dict] = field(default_factory=list)
    lock: tuple[str, dict] | None = None  # (lock hash, lock)
    # Regressions found, moved or searched (results/regressions.py: record_regression_changes)
    regressions: dict | None = None
    # An analysis job's document, design sweep or advice (results/analysis.py:
    # record_analysis_outcome)
    analysis: dict | None = None


@dataclass
class JobContext:
    """What an action gets: its time limit, a private directory, and the run's resources
    (a nightly.resources.Resources: environments, contracts, prepared workloads, the port)."""

    timeout_s: float
    workdir: Path
    resources: Any


@dataclass
class Job:
    key: str
    stage: str
    name: str
    action: Callable[[JobContext], Outcome]
    sku: str | None = None
    combination: Any = None  # a sources.combination.Combination
    needs: tuple[str, ...] = ()  # jobs that must pass first
    after: tuple[str, ...] = ()  # jobs that must have ended first, whatever their outcome
    priority: int = 0
    combination_id: int | None = None

    @property
    def order(self) -> tuple:
        """Which ready job starts first: the best priority (nightly/planner.py), then the
        earlier stage."""
        return (self.priority, STAGES.index(self.stage), self.key)
