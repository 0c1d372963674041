"""The git history the commit search reads, behind a two-method protocol.

`SubprocessGit` reads a repository through the harness's one git runner (`stackci.git`);
tests and a future remote history implement the same two methods.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Protocol

from stackci import git as git_runner
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
        return git_runner.git(self.repo, *args)

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
