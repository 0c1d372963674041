"""The git history the commit search reads, behind a two-method protocol.

`SubprocessGit` runs git against a repository path; once the harness has its one git runner
(issue 9's `stackci/git.py`), an adapter over it replaces this class and nothing else changes.
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path
from typing import Protocol

from stackci.errors import StackciError
from stackci.regressions.series import ModuleVersion


class GitHistory(Protocol):
    def commits_touching(self, module: str, good: str, bad: str) -> list[str]:
        """Commits after `good` up to and including `bad` that changed `modules/<module>/`,
        oldest first."""

    def module_version(self, module: str, commit: str) -> ModuleVersion:
        """The module as it was at `commit`: its version, the commit, its tree hash."""


class SubprocessGit:
    def __init__(self, repo: Path):
        self.repo = Path(repo)

    def _git(self, *args: str) -> str:
        done = subprocess.run(["git", "-C", str(self.repo), *args], capture_output=True,
                              text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise StackciError(f"git {' '.join(args)} failed in {self.repo}: {last}")
        return done.stdout

    def commits_touching(self, module: str, good: str, bad: str) -> list[str]:
        out = self._git("log", "--format=%H", "--reverse", f"{good}..{bad}", "--",
                        f"modules/{module}")
        return out.split()

    def module_version(self, module: str, commit: str) -> ModuleVersion:
        tree = self._git("rev-parse", f"{commit}:modules/{module}").strip()
        try:
            pyproject = tomllib.loads(self._git("show", f"{commit}:modules/{module}/pyproject.toml"))
            version = str(pyproject.get("project", {}).get("version", ""))
        except (StackciError, tomllib.TOMLDecodeError):
            version = ""   # a commit that breaks the pyproject is still a point of history
        return ModuleVersion(version, commit, tree)
