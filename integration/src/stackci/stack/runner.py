"""The one subprocess runner to stack environments.

Every module CLI the harness drives (`python -m npu_compiler run`, `npu_driver skus`, pytest,
the node suite...) starts here, with the same environment: the assembled environment alone on
the path (PYTHONPATH and PYTHONHOME of the harness removed, VIRTUAL_ENV set when the
interpreter belongs to a venv) plus what the caller adds.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def stack_environment(python: str | Path, extra: dict | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    venv = Path(python).parent.parent
    if (venv / "pyvenv.cfg").is_file():
        env["VIRTUAL_ENV"] = str(venv)
    env.update(extra or {})
    return env


def run_in_env(python: str | Path, args: list[str], timeout_s: float | None = None, *,
               cwd: Path | None = None, extra_env: dict | None = None
               ) -> subprocess.CompletedProcess:
    """`python args...` in its environment, output captured as text; raises
    subprocess.TimeoutExpired past `timeout_s` and OSError when `python` cannot start."""
    return subprocess.run([str(python), *args], capture_output=True, text=True,
                          timeout=timeout_s, cwd=cwd, env=stack_environment(python, extra_env))


def one_line(text: str) -> str:
    return " ".join(text.split())


def last_line(text: str, default: str = "(no output)") -> str:
    """The last non-empty line of a tool's output, on one line (what an error message quotes)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return one_line(lines[-1]) if lines else default


def tail(text: str, lines: int = 40) -> str:
    """The last `lines` lines of a tool's output (kept in a job's details)."""
    return "\n".join(text.strip().splitlines()[-lines:])
