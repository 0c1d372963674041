"""Where things live: the repository the harness builds from and its working directory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from stackci import git as gitrunner
from stackci.errors import UsageError

MODULES = ("driver", "runtime", "opslib", "compiler", "serving")


def find_repo_root(start: Path | None = None) -> Path:
    """The monorepo root: STACKCI_REPO, else the enclosing directory holding modules/."""
    env = os.environ.get("STACKCI_REPO")
    if env:
        root = Path(env).resolve()
        if not (root / "modules").is_dir():
            raise UsageError(f"STACKCI_REPO={env}: no modules/ directory there")
        return root
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "modules").is_dir() and (candidate / "integration").is_dir():
            return candidate
    raise UsageError(
        f"no stack repository found at or above {here} (expected modules/ and integration/); "
        "run inside the repository or set STACKCI_REPO"
    )


@dataclass(frozen=True)
class Workspace:
    """The repository and the harness's working directory (`.stackci/` by default)."""

    repo: Path
    home: Path

    @classmethod
    def discover(cls, home: str | Path | None = None) -> "Workspace":
        repo = find_repo_root()
        home = Path(home or os.environ.get("STACKCI_HOME") or Path.cwd() / ".stackci")
        home.mkdir(parents=True, exist_ok=True)
        return cls(repo=repo, home=home.resolve())

    @cached_property
    def cache(self) -> Path:
        path = self.home / "cache"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def db_url(self) -> str:
        return os.environ.get("STACKCI_DB") or f"sqlite:///{self.home / 'results.db'}"

    @property
    def dashboard_dir(self) -> Path:
        return self.home / "dashboard"

    def git(self, *args: str) -> str:
        """Standard output of a git command in the repository that must succeed."""
        return gitrunner.git(self.repo, *args)
