"""Reading one module: at a commit (from git) or in the working tree (from disk).

`master` is HEAD; `worktree` is the files on disk, hashed like a git tree. A module's version is
the `version` of its pyproject.toml.
"""

from __future__ import annotations

import hashlib
import logging
import tomllib
from functools import lru_cache
from pathlib import Path

from packaging.version import InvalidVersion, Version

from stackci import git
from stackci.documents import decode, one_line, parse_toml
from stackci.errors import UsageError
from stackci.sources.combination import WORKTREE, ModuleVersion
from stackci.workspace import MODULES, Workspace

log = logging.getLogger("stackci")

# Paths that never belong to a module's source when it is read from the working tree.
IGNORED_NAMES = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".venv", "dist",
                 "build", ".stackci", ".nox", ".benchmarks"}

IGNORED_SUFFIXES = (".pyc", ".pyo", ".egg-info")


def is_git_checkout(ws: Workspace) -> bool:
    """True when ws.repo is in a git repository that has at least one commit."""
    return git.succeeds(ws.repo, "rev-parse", "--verify", "-q", "HEAD")


@lru_cache(maxsize=None)
def git_toplevel(repo: Path) -> Path:
    """The top of the git repository holding the stack (the stack may be a subdirectory)."""
    found = git.git_maybe(repo, "rev-parse", "--show-toplevel")
    return Path(found.strip()) if found is not None else repo


def module_path(ws: Workspace, module: str) -> str:
    """`modules/<module>` as git names it: relative to the top of the git repository."""
    prefix = ws.repo.resolve().relative_to(git_toplevel(ws.repo).resolve()).as_posix()
    return f"modules/{module}" if prefix == "." else f"{prefix}/modules/{module}"


def check_module(module: str) -> None:
    if module not in MODULES:
        raise UsageError(f"unknown module {module!r}; expected one of {', '.join(MODULES)}")


def version_from_pyproject(text: str, where: str) -> str:
    """project.version of a pyproject.toml's text; `where` names it as the user knows it
    (`modules/<m>/pyproject.toml at <commit>`). Any bytes: the version or a one-line error
    blaming what is wrong (the TOML itself, the [project] table, or the version)."""
    document = parse_toml(decode(text, where), where)
    project = document.get("project")
    if not isinstance(project, dict):
        raise UsageError(f"{where}: [project]: expected a table with name and version")
    version = project.get("version")
    if not isinstance(version, str):
        raise UsageError(f"{where}: project.version: expected a PEP 440 version string, got "
                         f"{one_line(repr(version), 60)}")
    try:
        Version(version)
    except InvalidVersion:
        raise UsageError(f"{where}: project.version: {one_line(repr(version), 60)} is not a "
                         "PEP 440 version") from None
    return version


def module_at(ws: Workspace, module: str, commit: str) -> ModuleVersion:
    """The module as it is at `commit` (a full or abbreviated commit, or any git revision)."""
    check_module(module)
    path = module_path(ws, module)
    full = _resolve_commit(ws, commit)
    tree = git.git_maybe(ws.repo, "rev-parse", "--verify", "-q", f"{full}:{path}")
    if tree is None:
        raise UsageError(f"module {module} does not exist at commit {full[:12]} ({path})")
    pyproject = ws.git("show", f"{full}:{path}/pyproject.toml")
    version = version_from_pyproject(pyproject, f"{path}/pyproject.toml at {full[:12]}")
    return ModuleVersion(module, version, full, tree.strip())


def _resolve_commit(ws: Workspace, revision: str) -> str:
    found = git.git_maybe(ws.repo, "rev-parse", "--verify", "-q", f"{revision}^{{commit}}")
    if found is None:
        raise UsageError(f"no commit {revision!r} in {ws.repo}")
    return found.strip()


def hash_tree(root: Path) -> str:
    """A content hash of a directory on disk, standing in for a git tree hash."""
    digest = hashlib.sha1()
    for path in sorted(worktree_files(root)):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha1(path.read_bytes()).digest())
    return digest.hexdigest()


def worktree_files(root: Path) -> list[Path]:
    files = []
    for path in root.rglob("*"):
        parts = path.relative_to(root).parts
        if any(p in IGNORED_NAMES or p.endswith(IGNORED_SUFFIXES) for p in parts):
            continue
        if path.is_file():
            files.append(path)
    return files


def module_in_worktree(ws: Workspace, module: str) -> ModuleVersion:
    check_module(module)
    root = ws.repo / "modules" / module
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        raise UsageError(f"{pyproject}: missing (module {module})")
    version = version_from_pyproject(pyproject.read_text(), str(pyproject))
    return ModuleVersion(module, version, WORKTREE, hash_tree(root))

_warned_repos: set[Path] = set()


def module_at_master(ws: Workspace, module: str) -> ModuleVersion:
    if is_git_checkout(ws):
        return module_at(ws, module, "HEAD")
    if ws.repo not in _warned_repos:  # once per repository, not once per module
        _warned_repos.add(ws.repo)
        log.warning("stackci: warning: %s is not a git checkout with commits; "
                    "master is the working tree", ws.repo)
    return module_in_worktree(ws, module)
