"""The fault suite's stack: a fake stack repository (tests/fakestack.py) with a two-workload
suite of tiny real models, its modules built for real, run through fakecompiler's stand-in
for the compiler-api CLI (outputs from onnxruntime: seconds, not minutes, per night), nights of it started as real `stackci nightly` subprocesses
(faultnight.py), and what a test looks at afterwards: the store, read with sqlite3 directly,
and the stack processes still alive."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import yaml

from fakecompiler import fake_python, tiny_conv_model
from fakestack import commit, make_stack

HERE = Path(__file__).parent
REPO = HERE.parents[2]
ROWS: list[tuple[str, str, str, str]] = []
SKU = "npu-edge"
WORKLOADS = ("alpha", "beta")  # alpha runs first (suite order), beta is where faults land


def record(fault: str, cause: str, kept: str, resumed: str) -> None:
    ROWS.append((fault, " ".join(cause.split()), kept, resumed))


class FaultRepo:
    """A fault repository and one STACKCI_HOME beside it (the build cache shared)."""

    def __init__(self, tmp_path: Path, cache: Path):
        self.tmp = tmp_path
        self.path = make_stack(tmp_path)
        suite = self.path / "workloads"
        suite.mkdir()
        for name in WORKLOADS:
            tiny_conv_model(suite / f"{name}.onnx")
        self.suite = suite / "suite.yaml"
        self.suite.write_text(yaml.safe_dump({
            "defaults": {"skus": [SKU], "tolerance": {"atol": 1e-3, "rtol": 1e-3}},
            "workloads": [{"name": name, "source": f"file:{name}.onnx", "tiers": ["smoke"]}
                          for name in WORKLOADS]}, sort_keys=False))
        shutil.copytree(REPO / "dashboards", self.path / "dashboards")  # the site's templates
        commit(self.path, "suite")
        self.home = tmp_path / "home"
        self.home.mkdir()
        (self.home / "cache").symlink_to(cache, target_is_directory=True)
        self.db = self.home / "results.db"
        self.config = tmp_path / "faults.json"
        self.rules: list[dict] = []
        self.python = tmp_path / "bin" / "python"
        self.python.parent.mkdir()
        self.stack = fake_python(tmp_path / "bin")  # the compiler-api CLI, on onnxruntime
        self.python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{HERE / "inject.py"}" "$@"\n')
        self.python.chmod(0o755)

    # -- faults -------------------------------------------------------------------------------

    def inject(self, match: str, do: str, *, once: bool = False, **options) -> Path | None:
        """A fault for the stack commands whose line contains `match`; with `once`, the
        marker file it writes (holding the pid of the faulty process)."""
        marker = self.tmp / f"once-{len(self.rules)}" if once else None
        self.rules.append({"match": match, "do": do, **options,
                           **({"once": str(marker)} if marker else {})})
        self.config.write_text(json.dumps(self.rules))
        return marker

    # -- nights -------------------------------------------------------------------------------

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STACKCI_")}
        return {**env, "STACKCI_REPO": str(self.path), "STACKCI_HOME": str(self.home),
                "FAULTS_CONFIG": str(self.config), "FAULTS_PYTHON": str(self.python),
                "FAULTS_STACK": str(self.stack)}

    def argv(self, *args: str, night: bool = True) -> list[str]:
        # No analysis stage: the compiler-api stand-in has no `analyze` or `explore`.
        base = ["nightly", "--combination", "master", "--no-tests", "--no-analysis",
                "--workers", "1", "--job-timeout", "2m"] if night else []
        return [sys.executable, str(HERE / "faultnight.py"), *base, *args]

    def start(self, *args: str, night: bool = True) -> subprocess.Popen:
        return subprocess.Popen(self.argv(*args, night=night), env=self.environ(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=self.tmp)

    def run(self, *args: str, night: bool = True, timeout: float = 300
            ) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args, night=night), env=self.environ(),
                              capture_output=True, text=True, timeout=timeout, cwd=self.tmp)

    # -- what is stored -----------------------------------------------------------------------

    def query(self, sql: str, *params) -> list[tuple]:
        if not self.db.exists():
            return []
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30) as db:
            return db.execute(sql, params).fetchall()

    def jobs(self, run_id: int = 1) -> dict[str, dict]:
        """name -> {status, message, details, finished_at} of the run's jobs (name: the
        workload's for workload jobs, the stage's for the others)."""
        rows = self.query("SELECT stage, name, status, message, details, finished_at FROM jobs "
                          "WHERE run_id = ?", run_id)
        return {(name if stage == "workloads" else stage): {
            "status": status, "message": message, "details": json.loads(details or "{}"),
            "finished_at": finished} for stage, name, status, message, details, finished in rows}

    def run_status(self, run_id: int = 1) -> str | None:
        found = self.query("SELECT status FROM runs WHERE id = ?", run_id)
        return found[0][0] if found else None

    def metrics(self, run_id: int = 1) -> list[tuple]:
        return self.query("SELECT job_id, name, value FROM metrics WHERE run_id = ? "
                          "ORDER BY id", run_id)

    def wait_running(self, name: str, night: subprocess.Popen, timeout: float = 180) -> None:
        """Until job `name` is running (and the marker of its fault, if any, is written)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if night.poll() is not None:
                raise AssertionError(f"the night ended first: {night.communicate()}")
            try:
                if self.jobs().get(name, {}).get("status") == "running" and \
                        self._fault_started():
                    return
            except sqlite3.OperationalError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"job {name} never ran")

    def _fault_started(self) -> bool:
        return all(Path(rule["once"]).exists() for rule in self.rules
                   if "once" in rule and rule["do"] == "hang")

    def stack_processes(self) -> list[int]:
        """Live processes of this test's stack: npu_compiler on a command line that names
        this test's directory (another test's or helper's processes never match)."""
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if "npu_compiler" in cmdline and str(self.tmp) in cmdline and state not in "ZX":
                found.append(int(proc.name))
        return found

    def wait_no_stack_processes(self, within_s: float = 10.0) -> list[int]:
        deadline = time.monotonic() + within_s
        while (left := self.stack_processes()) and time.monotonic() < deadline:
            time.sleep(0.1)
        return left

    def kill_left(self) -> None:
        for pid in self.stack_processes():
            os.kill(pid, signal.SIGKILL)


def one_line_error(stderr: str) -> str:
    """The error line of a CLI that failed cleanly (asserts there is no traceback)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("stackci: error:")]
    assert len(lines) == 1, stderr
    return lines[0]
