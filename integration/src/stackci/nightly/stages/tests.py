"""tests: one module's own test suite, in the combination's environment."""

from __future__ import annotations

from pathlib import Path

from stackci.model import ERROR, JobContext, Outcome
from stackci.stack.pytest import pytest_outcome


def action(combination, params: dict):
    module = params["module"]

    def run(ctx: JobContext) -> Outcome:
        env = ctx.resources.environment(combination)
        tests_dir = Path(env.sources[module]) / "tests"
        if not tests_dir.is_dir():
            return Outcome(ERROR, f"module {module} has no tests/ directory at {tests_dir}")
        junit = ctx.workdir / "junit.xml"
        junit.unlink(missing_ok=True)
        done = ctx.resources.port.pytest(env.python, [str(tests_dir), "-q", "-p",
                                                      "no:cacheprovider", f"--junitxml={junit}"],
                                         ctx.timeout_s, cwd=Path(env.sources[module]))
        return pytest_outcome(done.returncode, junit, done.stdout + done.stderr)
    return run
