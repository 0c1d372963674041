"""The one typed seam between the harness and a stack environment.

Everything the harness asks of the stack under test is a method of `StackPort`: assemble the
environment of a combination, list its SKUs, run a model, run the ONNX node suite, report the
kernel library's size, run pytest, price a layer. Each is a module CLI in a subprocess of the
assembled environment (stack/runner.py); the harness never imports module code. Tests replace
this one class (tests/fakes.py) and nothing else.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from stackci.errors import StackError, UsageError
from stackci.sources.build import Environment, ensure_environment
from stackci.sources.combination import Combination
from stackci.stack.runner import last_line, one_line, run_in_env
from stackci.workspace import Workspace

# The stack's exit codes (compiler-api CLI) and what kind of failure each one is.
EXIT_KINDS = {1: "error", 2: "bad-input", 3: "unsupported-operator", 4: "out-of-memory"}


@dataclass(frozen=True)
class ModelRun:
    """One `python -m npu_compiler run` request: the model, where its inputs are and where its
    outputs go, and the options the compiler-api CLI takes."""

    model: Path
    sku: str
    inputs: Path
    outputs: Path
    precision: str = "fp32"
    batch: int | None = None
    plan_cache: Path | None = None  # a plan cache of the run's own (every compile measured)
    timeout_s: float | None = None
    cwd: Path | None = None


class StackPort:
    """The real stack: module CLIs in subprocesses of assembled environments."""

    def environment(self, ws: Workspace, combination: Combination, *, progress=None,
                    python: str | None = None) -> Environment:
        """The built environment of `combination` (made once, then reused by lock hash)."""
        return ensure_environment(ws, combination, progress=progress, python=python)

    def skus(self, python, timeout_s: float | None = None) -> list[dict]:
        """The SKUs the environment's driver knows (`python -m npu_driver skus --json`)."""
        args = ["-m", "npu_driver", "skus", "--json"]
        done = run_in_env(python, args, timeout_s)
        if done.returncode != 0:
            raise StackError(f"python {' '.join(args)} exited {done.returncode}: "
                             f"{last_line(done.stderr)}",
                             exit_code=done.returncode if done.returncode > 0 else 1)
        try:
            found = json.loads(done.stdout)
        except json.JSONDecodeError as exc:
            raise StackError(f"python {' '.join(args)} printed no JSON: {exc}",
                             kind="protocol") from exc
        return found if isinstance(found, list) else found.get("skus", [])

    def run_model(self, python, request: ModelRun) -> dict:
        """The stack's JSON document for one model run (its outputs written to
        `request.outputs`), or a StackError that says in one line what went wrong."""
        argv = ["run", str(request.model), "--sku", request.sku,
                "--precision", request.precision, "--inputs", str(request.inputs),
                "--save-outputs", str(request.outputs), "--json"]
        if request.batch is not None:
            argv += ["--batch", str(request.batch)]
        # An environment variable rather than --no-cache, which compilers before
        # compiler-api 1.1 lack.
        extra = {"NPU_PLAN_CACHE": str(request.plan_cache)} if request.plan_cache else None
        return self.compiler(python, argv, name=request.model.name, sku=request.sku,
                             timeout_s=request.timeout_s, cwd=request.cwd, extra_env=extra)

    def compiler(self, python, argv: list[str], *, name: str, sku: str,
                 timeout_s: float | None = None, cwd: Path | None = None,
                 extra_env: dict | None = None) -> dict:
        """The JSON document of `python -m npu_compiler ARGV` (run, analyze, explore,
        plan-diff), read with the compiler CLI's error protocol: one StackError line naming
        `name` on `sku` and the kind when it fails."""
        command = ["-m", "npu_compiler", *argv]
        try:
            done = run_in_env(python, command, timeout_s, cwd=cwd, extra_env=extra_env)
        except subprocess.TimeoutExpired:
            raise StackError(f"the stack timed out after {timeout_s:g} s running "
                             f"{name} on {sku}", kind="timeout", exit_code=1)
        except OSError as exc:
            raise UsageError(f"cannot run the stack with {python}: {exc.strerror or exc}")
        document = parse_json(done.stdout)
        if done.returncode == 0:
            if document is None or "error" in document:
                raise StackError(f"the stack printed no JSON result for {name} "
                                 f"({last_line(done.stderr, 'no output')})",
                                 kind="protocol", exit_code=1)
            return document
        if done.returncode < 0:
            raise StackError(f"the stack was killed by signal {-done.returncode} running "
                             f"{name} on {sku}", kind="crash", exit_code=1)
        kind = EXIT_KINDS.get(done.returncode, "error")
        if document and "error" in document:
            message = one_line(str(document["error"]))
            # One spelling of kinds across the harness (the compiler says out_of_memory).
            kind = str(document.get("kind") or kind).replace("_", "-")
        else:
            if "No module named npu_compiler" in done.stderr:
                kind = "missing-stack"
            message = last_line(done.stderr, "") or f"exit code {done.returncode}, no message"
        raise StackError(f"stack failed on {name} ({sku}): {message}", kind=kind,
                         exit_code=done.returncode)

    def conformance(self, python, sku: str, timeout_s: float) -> dict:
        """The JSON of `python -m npu_compiler.conformance --json` on `sku`."""
        return self._json_of(python, ["-m", "npu_compiler.conformance", "--json",
                                      "--no-onnxruntime"], timeout_s,
                             extra_env={"NPU_BACKEND_SKU": sku})

    def opslib_stats(self, python, timeout_s: float) -> dict:
        """The JSON of `python -m npu_opslib stats --json`: the kernel library's size."""
        return self._json_of(python, ["-m", "npu_opslib", "stats", "--json"], timeout_s)

    def pytest(self, python, args: list[str], timeout_s: float, *, cwd: Path | None = None
               ) -> subprocess.CompletedProcess:
        """`python -m pytest args...` (read the outcome with stack.pytest.pytest_outcome)."""
        return run_in_env(python, ["-m", "pytest", *args], timeout_s, cwd=cwd)

    def cost(self, python, argv: list[str]) -> subprocess.CompletedProcess:
        """`python -m npu_driver cost ...`: the driver prices one layer."""
        return run_in_env(python, ["-m", "npu_driver", *argv])

    def _json_of(self, python, args: list[str], timeout_s: float, extra_env=None) -> dict:
        """The JSON object a module CLI printed; a StackError naming the command otherwise."""
        command = "python " + " ".join(args)
        done = run_in_env(python, args, timeout_s, extra_env=extra_env)
        if done.returncode != 0:
            raise StackError(f"{command} exited {done.returncode}: {last_line(done.stderr)}",
                             kind="crash")
        try:
            found = json.loads(done.stdout)
        except json.JSONDecodeError as exc:
            raise StackError(f"{command} printed no JSON: {exc}", kind="bad-output") from exc
        if not isinstance(found, dict):
            raise StackError(f"{command} printed {type(found).__name__}, not an object",
                             kind="bad-output")
        return found


def parse_json(stdout: str) -> dict | None:
    """The JSON object on stdout: the whole text, else its last line that is an object (tools
    sometimes print progress before it)."""
    for candidate in (stdout, *reversed(stdout.strip().splitlines())):
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None
