"""Releases, found from git history alone.

A module's *release* is the commit at which the version in its pyproject changed to a
non-dev version, so any released version can be rebuilt from git (see build.py).
"""

from __future__ import annotations

from pathlib import Path

from packaging.version import InvalidVersion, Version

from stackci import git
from stackci.errors import UsageError
from stackci.sources.combination import ModuleVersion
from stackci.sources.modules import (check_module, is_git_checkout, module_at, module_path,
                                     version_from_pyproject)
from stackci.workspace import Workspace


def releases(ws: Workspace, module: str) -> list[ModuleVersion]:
    """Every release of `module`, oldest first: the first commit carrying each non-dev version.

    A tag `<module>/v<version>` where present must name the same module tree.
    """
    check_module(module)
    if not is_git_checkout(ws):
        return []
    path = module_path(ws, module)
    commits = ws.git("log", "--reverse", "--format=%H", "--",
                     f":(top){path}/pyproject.toml").split()
    found: dict[str, ModuleVersion] = {}
    for commit in commits:
        text = git.git_maybe(ws.repo, "show", f"{commit}:{path}/pyproject.toml")
        if text is None:  # the commit deleted the file
            continue
        version = version_from_pyproject(text, f"{path}/pyproject.toml at {commit[:12]}")
        if Version(version).is_devrelease or version in found:
            continue
        found[version] = module_at(ws, module, commit)
    result = sorted(found.values(), key=lambda mv: Version(mv.version))
    _check_tags(ws, module, result)
    return result


def _check_tags(ws: Workspace, module: str, found: list[ModuleVersion]) -> None:
    by_version = {mv.version: mv for mv in found}
    for tag in ws.git("tag", "--list", f"{module}/v*").split():
        version = tag.split("/v", 1)[1]
        release = by_version.get(version)
        if release is None:
            continue
        try:
            tagged = module_at(ws, module, f"refs/tags/{tag}")
        except UsageError:  # a tag whose commit a shallow clone does not hold
            continue
        if tagged.tree_hash != release.tree_hash:
            raise UsageError(
                f"tag {tag} ({tagged.commit[:12]}) disagrees with the release commit "
                f"{release.commit[:12]} where {module}'s version became {version}: "
                "move the tag or fix the version history")


def missing_history(ws: Workspace) -> str | None:
    """Why releases may be missing from what git can see, or None when history is complete."""
    if not is_git_checkout(ws):
        return f"{ws.repo} is not a git checkout with commits: no releases can be found"
    shallow = ws.git("rev-parse", "--is-shallow-repository").strip() == "true"
    if not shallow:
        return None
    cut = ws.git("log", "-1", "--format=%h %ad", "--date=short",
                 *(f"{c}" for c in _shallow_boundary(ws))).strip() or "?"
    return (f"shallow clone: history stops at {cut}; releases made before it are missing and "
            "the oldest release listed may be older than its commit shows (run "
            "`git fetch --unshallow --tags` for the full history)")


def _shallow_boundary(ws: Workspace) -> list[str]:
    path = Path(ws.git("rev-parse", "--git-path", "shallow").strip())
    path = path if path.is_absolute() else ws.repo / path
    return path.read_text().split() if path.is_file() else []


def find_release(ws: Workspace, module: str, version: str) -> ModuleVersion:
    known = releases(ws, module)
    try:
        wanted = Version(version)
    except InvalidVersion:
        raise UsageError(f"{module}={version}: not a PEP 440 version") from None
    for mv in known:
        if Version(mv.version) == wanted:
            return mv
    listed = ", ".join(mv.version for mv in known) or "none"
    raise UsageError(f"{module} has no release {version} (releases: {listed})")


def latest_release(ws: Workspace, module: str) -> ModuleVersion:
    known = releases(ws, module)
    if not known:
        raise UsageError(f"{module} has no release yet (only dev versions in its history); "
                         f"pin {module}=master")
    return known[-1]
