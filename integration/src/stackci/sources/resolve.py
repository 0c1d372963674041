"""Resolving the words that name a combination.

Names a combination can be resolved from:
  master               HEAD of the repository, every module
  worktree             the files on disk (uncommitted changes included)
  release:latest       every module's highest release
  release:<manifest>   contracts/releases/<manifest>.yaml (`modules: {module: version}`)
Pins (`module=value`) then replace single modules; value is a release version, `latest`,
`master`, `worktree` or a commit.
"""

from __future__ import annotations

import re

from packaging.version import InvalidVersion, Version

from stackci.documents import load_yaml, one_line
from stackci.errors import UsageError
from stackci.sources.combination import WORKTREE, Combination, ModuleVersion
from stackci.sources.modules import (check_module, is_git_checkout, module_at,
                                     module_at_master, module_in_worktree)
from stackci.sources.releases import find_release, latest_release
from stackci.workspace import MODULES, Workspace

COMMIT_PATTERN = re.compile(r"[0-9a-fA-F]{4,40}")

PIN_PATTERN = re.compile(r"\s*([A-Za-z0-9_-]+)\s*=\s*(\S+)\s*")


def parse_pin(text: str) -> tuple[str, str]:
    """`module=value` -> (module, value); the value's meaning is decided by `resolve_pin`."""
    match = PIN_PATTERN.fullmatch(text)
    if not match:
        raise UsageError(f"malformed pin {text!r}: expected MODULE=VERSION "
                         "(a release version, latest, master, worktree or a commit)")
    module, value = match.groups()
    check_module(module)
    if not (value in ("master", "latest", WORKTREE) or _is_version(value)
            or COMMIT_PATTERN.fullmatch(value)):
        raise UsageError(f"pin {text!r}: {value!r} is not a release version, latest, master, "
                         "worktree or a commit")
    return module, value


def _is_version(value: str) -> bool:
    """A release version in a pin has a dot (so a bare commit like 1234567 stays a commit)."""
    try:
        Version(value)
    except InvalidVersion:
        return False
    return "." in value


def resolve_pin(ws: Workspace, module: str, value: str) -> ModuleVersion:
    if value == "master":
        return module_at_master(ws, module)
    if value == WORKTREE:
        return module_in_worktree(ws, module)
    if value == "latest":
        return latest_release(ws, module)
    if _is_version(value):
        return find_release(ws, module, value)
    if not is_git_checkout(ws):
        raise UsageError(f"{module}={value}: {ws.repo} is not a git checkout with commits")
    return module_at(ws, module, value)


def load_manifest(ws: Workspace, name: str) -> dict[str, str]:
    """A stack release manifest: `contracts/releases/<name>.yaml` with `modules: {m: version}`."""
    directory = ws.repo / "contracts" / "releases"
    known = sorted(p.stem for p in directory.glob("*.yaml") if p.is_file())
    # A name, never a path: release:../../x must not read a file outside contracts/releases.
    if name not in known:
        raise UsageError(f"no release manifest {name!r} in contracts/releases/ (known: "
                         f"{', '.join(known) or 'none'})")
    path = directory / f"{name}.yaml"
    shown = f"contracts/releases/{name}.yaml"
    data = load_yaml(path, shown)
    modules = data.get("modules") if isinstance(data, dict) else None
    if not isinstance(modules, dict):
        raise UsageError(f"{shown}: modules: expected a mapping module -> version")
    missing = [m for m in MODULES if m not in modules]
    unknown = [one_line(repr(m), 40) for m in modules if m not in MODULES]
    if missing or unknown:
        raise UsageError(f"{shown}: modules: missing {missing or 'none'}, "
                         f"unknown {unknown or 'none'}")
    for module in MODULES:
        if not isinstance(modules[module], (str, int, float)) or isinstance(modules[module],
                                                                            bool):
            raise UsageError(f"{shown}: modules.{module}: expected a release version, got "
                             f"{one_line(repr(modules[module]), 60)}")
    return {m: str(modules[m]) for m in MODULES}


def resolve(ws: Workspace, name: str = "master", pins=()) -> "Combination":
    """The combination `name` (see the module docstring) with `pins` applied.

    Pinned modules are never looked up in the base combination, so `release:latest` with
    `driver=master` works before the driver's first release.
    """
    pinned: dict[str, str] = {}
    for text in pins:
        module, value = parse_pin(text)
        if pinned.get(module, value) != value:
            raise UsageError(f"conflicting pins {module}={pinned[module]} and {module}={value}")
        pinned[module] = value
    _check_manifest_pins(ws, name, pinned)
    base = _base_resolver(ws, name)
    modules = {m: resolve_pin(ws, m, pinned[m]) if m in pinned else base(m) for m in MODULES}
    return Combination("+".join([name, *(f"{m}={v}" for m, v in pinned.items())]), modules)


def _check_manifest_pins(ws: Workspace, name: str, pinned: dict[str, str]) -> None:
    """A stack release manifest is a shipped set: a pin may repeat its versions, not change them
    (start from release:latest or master to try another version of a module)."""
    if not name.startswith("release:") or name == "release:latest" or not pinned:
        return
    manifest_name = name.split(":", 1)[1]
    manifest = load_manifest(ws, manifest_name)
    for module, value in pinned.items():
        if value != manifest[module]:
            raise UsageError(
                f"pin {module}={value} conflicts with contracts/releases/{manifest_name}.yaml, "
                f"which ships {module} {manifest[module]}; drop the pin, or pin from "
                f"release:latest or master instead")


def _base_resolver(ws: Workspace, name: str):
    if name == "master":
        return lambda module: module_at_master(ws, module)
    if name == WORKTREE:
        return lambda module: module_in_worktree(ws, module)
    if name == "release:latest":
        return lambda module: latest_release(ws, module)
    if name.startswith("release:") and name != "release:":
        manifest = load_manifest(ws, name.split(":", 1)[1])
        return lambda module: find_release(ws, module, manifest[module])
    raise UsageError(f"unknown combination {name!r}; expected master, worktree, "
                     "release:latest or release:<manifest>")
