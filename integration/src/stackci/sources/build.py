"""Assemble the environment of a combination: export sources, build wheels, install with uv.

Everything is cached by content:
  <cache>/src/<tree hash>/       the module's subtree, exported with `git archive`
  <cache>/wheels/<tree hash>/    its wheel and build.log
  <home>/envs/<lock hash>/       the venv, lock.json and build.log; complete once `.complete`
                                 exists (written last, so a killed build is redone, never reused)
The lock hash covers the module tree hashes, constraints.txt and the Python version.
Source and wheel directories are built under a temporary name and renamed into place.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from stackci import git
from stackci.errors import StackciError
from stackci.sources.combination import WORKTREE, Combination, ModuleVersion
from stackci.sources.modules import git_toplevel, module_path, worktree_files
from stackci.workspace import Workspace

COMPLETE_MARKER = ".complete"
LOG_TAIL_LINES = 15

Progress = Callable[[str], None]


class BuildError(StackciError):
    """A module (or the environment, module "environment") failed to build."""

    def __init__(self, module: str, message: str):
        super().__init__(f"build of {module} failed: {message}")
        self.module = module


@dataclass
class Environment:
    path: Path
    python: Path
    lock: dict
    sources: dict[str, Path]
    combination: Combination


# --- tools -----------------------------------------------------------------------------------

def find_uv() -> str:
    """The uv binary shipped with the `uv` package the harness depends on, else uv on PATH."""
    try:
        from uv import find_uv_bin
        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found is None:
            raise StackciError("uv not found: install the `uv` package or put uv on PATH") from None
        return found


def _run(cmd: list[str], log: list[str]) -> subprocess.CompletedProcess | None:
    """Run quietly, keeping the command and its output for the build log; None on failure."""
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
    log.append(f"$ {' '.join(cmd)}\n{done.stdout}{done.stderr}(exit {done.returncode})\n")
    return done if done.returncode == 0 else None


def _tail(log: list[str]) -> str:
    lines = "".join(log).strip().splitlines()
    return " | ".join(line.strip() for line in lines[-LOG_TAIL_LINES:] if line.strip())


@contextlib.contextmanager
def _exclusive(lock_path: Path):
    """One builder per artifact across processes (nightly workers share the cache)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _publish(tmp: Path, final: Path) -> None:
    """Rename a finished temporary directory into place (another process may have won)."""
    try:
        tmp.rename(final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


# --- sources ---------------------------------------------------------------------------------

def export_source(ws: Workspace, mv: ModuleVersion, progress: Progress | None = None) -> Path:
    """The module's subtree at its commit, as files under <cache>/src/<tree hash>/."""
    final = ws.cache / "src" / mv.tree_hash
    if final.is_dir():
        return final
    if progress:
        progress(f"export {mv.module} {mv.version} ({mv.commit[:12]})")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{mv.module}-", dir=final.parent))
    try:
        if mv.commit == WORKTREE:
            _copy_worktree(ws.repo / "modules" / mv.module, tmp / "module")
        else:
            _git_archive(ws, mv, tmp)
        _publish(tmp / "module", final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _git_archive(ws: Workspace, mv: ModuleVersion, tmp: Path) -> None:
    path = module_path(ws, mv.module)
    archive = tmp / "src.tar"
    with open(archive, "wb") as out:
        done = git.run(git_toplevel(ws.repo), "archive", "--format=tar", mv.commit, path,
                       stdout=out)
    if done.returncode != 0:
        raise BuildError(mv.module, f"git archive {mv.commit[:12]} {path}: {done.stderr.strip()}")
    with tarfile.open(archive) as tar:
        _extract(tar, tmp / "extract")
    (tmp / "extract" / path).rename(tmp / "module")


def _extract(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract with tarfile's "data" filter; Pythons before 3.11.4 (Debian 12's 3.11.2) lack
    it, so there the same refusals are checked by hand: nothing lands outside `dest`."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    root = dest.resolve()
    for member in tar.getmembers():
        target = (root / member.name).resolve()
        link = (target.parent / member.linkname).resolve() if member.issym() else target
        if (not (member.isfile() or member.isdir() or member.issym())
                or not target.is_relative_to(root) or not link.is_relative_to(root)):
            raise BuildError("environment", f"refusing archive member {member.name!r}")
    tar.extractall(dest)


def _copy_worktree(root: Path, dest: Path) -> None:
    for path in worktree_files(root):
        target = dest / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def export_sources(ws: Workspace, combination: Combination,
                   progress: Progress | None = None) -> dict[str, Path]:
    return {m: export_source(ws, mv, progress) for m, mv in combination.modules.items()}


# --- wheels ----------------------------------------------------------------------------------

def find_wheel(ws: Workspace, mv: ModuleVersion) -> Path | None:
    wheels = sorted((ws.cache / "wheels" / mv.tree_hash).glob("*.whl"))
    return wheels[0] if wheels else None


def build_wheel(ws: Workspace, mv: ModuleVersion, source: Path, uv: str,
                progress: Progress) -> Path:
    """The module's wheel, built once per tree hash."""
    final = ws.cache / "wheels" / mv.tree_hash
    with _exclusive(final.parent / f"{mv.tree_hash}.lock"):
        wheel = find_wheel(ws, mv)
        if wheel is not None:
            progress(f"reuse wheel {mv.module} {mv.version} ({wheel.name})")
            return wheel
        progress(f"build wheel {mv.module} {mv.version}")
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{mv.module}-", dir=final.parent))
        try:
            log: list[str] = []
            ok = _run([uv, "build", "--wheel", "--out-dir", str(tmp), str(source)], log)
            (tmp / "build.log").write_text("".join(log))
            if not ok or not list(tmp.glob("*.whl")):
                kept = final.parent / f"{mv.tree_hash}.failed.log"
                shutil.copy(tmp / "build.log", kept)
                raise BuildError(mv.module, f"{mv.module} {mv.version} at {mv.commit[:12]}: "
                                 f"{_tail(log)} (log: {kept})")
            _publish(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return find_wheel(ws, mv)


# --- environment -----------------------------------------------------------------------------

def python_version(python: str) -> str:
    if Path(python) == Path(sys.executable):
        return sys.version.split()[0]
    done = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise StackciError(f"cannot run the Python interpreter {python}: {done.stderr.strip()}")
    return done.stdout.strip()


def lock_hash(combination: Combination, constraints: str, python: str) -> str:
    inputs = {
        "modules": {m: mv.tree_hash for m, mv in sorted(combination.modules.items())},
        "constraints": hashlib.sha256(constraints.encode()).hexdigest(),
        "python": python,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:20]


def ensure_environment(ws: Workspace, combination: Combination, *,
                       progress: Progress | None = None, python: str | None = None
                       ) -> Environment:
    """Export, build and install the combination; reuse whatever is already complete.

    `python` is the interpreter the venv is based on (default: the harness's own).
    """
    progress = progress or (lambda message: None)
    python = python or sys.executable
    uv = find_uv()
    sources = {m: export_source(ws, mv, progress) for m, mv in combination.modules.items()}
    # Each build is mostly a subprocess setting up its isolated build env: overlap them.
    with ThreadPoolExecutor(max_workers=min(len(sources), os.cpu_count() or 1, 4)) as pool:
        futures = {m: pool.submit(build_wheel, ws, mv, sources[m], uv, progress)
                   for m, mv in combination.modules.items()}
        wheels = {m: future.result() for m, future in futures.items()}
    constraints_file = ws.repo / "constraints.txt"
    constraints = constraints_file.read_text() if constraints_file.is_file() else ""
    version = python_version(python)
    env = ws.home / "envs" / lock_hash(combination, constraints, version)
    with _exclusive(env.parent / f"{env.name}.lock"):
        if (env / COMPLETE_MARKER).is_file():
            progress(f"reuse environment {env}")
            lock = json.loads((env / "lock.json").read_text())
        else:
            progress(f"create environment {env}")
            lock = _create_environment(env, combination, wheels, constraints_file, python,
                                       version, uv)
    return Environment(env, env / "bin" / "python", lock, sources, combination)


def _create_environment(env: Path, combination: Combination, wheels: dict[str, Path],
                        constraints_file: Path, python: str, version: str, uv: str) -> dict:
    shutil.rmtree(env, ignore_errors=True)  # a half-built environment from a killed run
    log: list[str] = []
    env_python = env / "bin" / "python"
    requirements = [f"{wheel.name.split('-')[0]}[test] @ {wheel.resolve().as_uri()}"
                    for wheel in wheels.values()]
    install = [uv, "pip", "install", "--python", str(env_python), *requirements]
    if constraints_file.is_file():
        install[3:3] = ["-c", str(constraints_file)]
    ok = _run([uv, "venv", "--quiet", "--python", python, str(env)], log) and _run(install, log)
    freeze = ok and _run([uv, "pip", "freeze", "--python", str(env_python)], log)
    env.mkdir(parents=True, exist_ok=True)
    (env / "build.log").write_text("".join(log))
    if not freeze:
        raise BuildError("environment", f"{combination.name}: {_tail(log)} "
                         f"(log: {env / 'build.log'})")
    own = {_normalize(w.name.split("-")[0]) for w in wheels.values()}
    lock = {
        "combination": combination.name,
        "key": combination.key,
        "python": version,
        "constraints": str(constraints_file) if constraints_file.is_file() else None,
        "modules": {m: {**mv.to_dict(), "wheel": wheels[m].name}
                    for m, mv in combination.modules.items()},
        "third_party": _third_party(freeze.stdout, own),
    }
    (env / "lock.json").write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n")
    (env / COMPLETE_MARKER).write_text("")
    return lock


def _third_party(freeze: str, own: set[str]) -> dict[str, str]:
    pinned = {}
    for line in freeze.splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and _normalize(name) not in own:
            pinned[_normalize(name)] = version.strip()
    return dict(sorted(pinned.items()))


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")
