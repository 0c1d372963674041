"""Combinations: which version of every module, found from git history alone.

A module's *release* is the commit at which the version in its pyproject changed to a
non-dev version. Any released version can therefore be rebuilt from git (see build.py), and
a combination is the version vector `{module: (version, commit, tree hash)}`.

Names a combination can be resolved from:
  master               HEAD of the repository, every module
  worktree             the files on disk (uncommitted changes included)
  release:latest       every module's highest release
  release:<manifest>   contracts/releases/<manifest>.yaml (`modules: {module: version}`)
Pins (`module=value`) then replace single modules; value is a release version, `latest`,
`master`, `worktree` or a commit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import subprocess
import tomllib
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import yaml
from packaging.version import InvalidVersion, Version

from stackci.errors import UsageError
from stackci.workspace import MODULES, Workspace

log = logging.getLogger("stackci")

WORKTREE = "worktree"
# Paths that never belong to a module's source when it is read from the working tree.
IGNORED_NAMES = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".venv", "dist",
                 "build", ".stackci", ".nox", ".benchmarks"}
IGNORED_SUFFIXES = (".pyc", ".pyo", ".egg-info")
COMMIT_PATTERN = re.compile(r"[0-9a-fA-F]{4,40}")
PIN_PATTERN = re.compile(r"\s*([A-Za-z0-9_-]+)\s*=\s*(\S+)\s*")


@dataclass(frozen=True)
class ModuleVersion:
    module: str
    version: str
    commit: str
    tree_hash: str

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.module} {self.version} ({self.commit[:10]})"


@dataclass(frozen=True)
class Combination:
    name: str
    modules: dict[str, ModuleVersion]

    @property
    def key(self) -> str:
        """A stable hash of the version vector.

        Keyed by content (version and tree hash), not commit: two commits holding the same
        module trees are the same stack, and their results belong on the same point of a trend.
        """
        vector = {m: [mv.version, mv.tree_hash] for m, mv in sorted(self.modules.items())}
        return hashlib.sha256(json.dumps(vector, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "key": self.key,
            "modules": {m: mv.to_dict() for m, mv in self.modules.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Combination":
        return cls(data["name"], {m: ModuleVersion(**mv) for m, mv in data["modules"].items()})


# --- reading a module at a commit ------------------------------------------------------------

def is_git_checkout(ws: Workspace) -> bool:
    """True when ws.repo is in a git repository that has at least one commit."""
    done = subprocess.run(["git", "-C", str(ws.repo), "rev-parse", "--verify", "-q", "HEAD"],
                          capture_output=True, text=True)
    return done.returncode == 0


@lru_cache(maxsize=None)
def git_toplevel(repo: Path) -> Path:
    """The top of the git repository holding the stack (the stack may be a subdirectory)."""
    done = subprocess.run(["git", "-C", str(repo), "rev-parse", "--show-toplevel"],
                          capture_output=True, text=True)
    return Path(done.stdout.strip()) if done.returncode == 0 else repo


def module_path(ws: Workspace, module: str) -> str:
    """`modules/<module>` as git names it: relative to the top of the git repository."""
    prefix = ws.repo.resolve().relative_to(git_toplevel(ws.repo).resolve()).as_posix()
    return f"modules/{module}" if prefix == "." else f"{prefix}/modules/{module}"


def _check_module(module: str) -> None:
    if module not in MODULES:
        raise UsageError(f"unknown module {module!r}; expected one of {', '.join(MODULES)}")


def version_from_pyproject(text: str, where: str) -> str:
    try:
        version = tomllib.loads(text)["project"]["version"]
        Version(version)
    except (tomllib.TOMLDecodeError, KeyError, TypeError, InvalidVersion) as exc:
        raise UsageError(f"{where}: project.version: expected a PEP 440 version ({exc})") from None
    return version


def module_at(ws: Workspace, module: str, commit: str) -> ModuleVersion:
    """The module as it is at `commit` (a full or abbreviated commit, or any git revision)."""
    _check_module(module)
    path = module_path(ws, module)
    full = _resolve_commit(ws, commit)
    done = subprocess.run(["git", "-C", str(ws.repo), "rev-parse", "--verify", "-q",
                           f"{full}:{path}"], capture_output=True, text=True)
    if done.returncode != 0:
        raise UsageError(f"module {module} does not exist at commit {full[:12]} ({path})")
    pyproject = ws.git("show", f"{full}:{path}/pyproject.toml")
    version = version_from_pyproject(pyproject, f"{path}/pyproject.toml at {full[:12]}")
    return ModuleVersion(module, version, full, done.stdout.strip())


def _resolve_commit(ws: Workspace, revision: str) -> str:
    done = subprocess.run(["git", "-C", str(ws.repo), "rev-parse", "--verify", "-q",
                           f"{revision}^{{commit}}"], capture_output=True, text=True)
    if done.returncode != 0:
        raise UsageError(f"no commit {revision!r} in {ws.repo}")
    return done.stdout.strip()


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
    _check_module(module)
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


# --- releases --------------------------------------------------------------------------------

def releases(ws: Workspace, module: str) -> list[ModuleVersion]:
    """Every release of `module`, oldest first: the first commit carrying each non-dev version.

    A tag `<module>/v<version>` where present must name the same module tree.
    """
    _check_module(module)
    if not is_git_checkout(ws):
        return []
    path = module_path(ws, module)
    commits = ws.git("log", "--reverse", "--format=%H", "--",
                     f":(top){path}/pyproject.toml").split()
    found: dict[str, ModuleVersion] = {}
    for commit in commits:
        done = subprocess.run(["git", "-C", str(ws.repo), "show",
                               f"{commit}:{path}/pyproject.toml"], capture_output=True, text=True)
        if done.returncode != 0:  # the commit deleted the file
            continue
        version = version_from_pyproject(done.stdout, f"{path}/pyproject.toml at {commit[:12]}")
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


# --- names and pins --------------------------------------------------------------------------

def parse_pin(text: str) -> tuple[str, str]:
    """`module=value` -> (module, value); the value's meaning is decided by `resolve_pin`."""
    match = PIN_PATTERN.fullmatch(text)
    if not match:
        raise UsageError(f"malformed pin {text!r}: expected MODULE=VERSION "
                         "(a release version, latest, master, worktree or a commit)")
    module, value = match.groups()
    _check_module(module)
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
    path = ws.repo / "contracts" / "releases" / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise UsageError(f"no release manifest {path} (known: {', '.join(known) or 'none'})")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    modules = data.get("modules") if isinstance(data, dict) else None
    if not isinstance(modules, dict):
        raise UsageError(f"{path}: modules: expected a mapping module -> version")
    missing = [m for m in MODULES if m not in modules]
    unknown = [m for m in modules if m not in MODULES]
    if missing or unknown:
        raise UsageError(f"{path}: modules: missing {missing or 'none'}, "
                         f"unknown {unknown or 'none'}")
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
