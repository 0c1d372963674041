"""A tiny stack repository for harness tests: five hatchling modules in a fresh git repo.

Each module is a one-file package (`npu_<m>/__init__.py` holding its version) with a
contract.yaml chaining the interfaces driver <- runtime <- opslib <- compiler <- serving, so
tests can build, release and break it in milliseconds instead of using the real modules.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from stackci.workspace import MODULES, Workspace

INTERFACES = {m: f"{m}-api" for m in MODULES}
# Who requires whom, in the real stack's direction.
NEEDS = {"driver": [], "runtime": ["driver"], "opslib": ["runtime", "driver"],
         "compiler": ["opslib", "runtime"], "serving": ["compiler"]}

PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "npu-{module}"
version = "{version}"
requires-python = ">=3.11"
dependencies = [{dependencies}]

[project.optional-dependencies]
test = []

[tool.hatch.build.targets.wheel]
packages = ["src/npu_{module}"]
"""


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True)
    return done.stdout.strip()


def contract_text(module: str, provides: str = "1.0",
                  requires: dict[str, str] | None = None) -> str:
    requires = {INTERFACES[p]: ">=1.0,<2" for p in NEEDS[module]} if requires is None else requires
    lines = [f"module: {module}", "provides:", f'  {INTERFACES[module]}: "{provides}"']
    lines += ["requires:"] + [f'  {i}: "{s}"' for i, s in requires.items()] if requires else \
        ["requires: {}"]
    return "\n".join(lines) + "\n"


def write_module(repo: Path, module: str, version: str = "0.1.0.dev0",
                 contract: str | None = None, broken: bool = False,
                 third_party: tuple[str, ...] = ()) -> None:
    """Write (or rewrite) one module; `broken` makes its pyproject unbuildable."""
    root = repo / "modules" / module
    (root / "src" / f"npu_{module}").mkdir(parents=True, exist_ok=True)
    deps = ", ".join(f'"{d}"' for d in [*(f"npu-{p}" for p in NEEDS[module]), *third_party])
    text = PYPROJECT.format(module=module, version=version, dependencies=deps)
    if broken:
        text = text.replace('"hatchling.build"', '"hatchling.missing_backend"')
    (root / "pyproject.toml").write_text(text)
    (root / "src" / f"npu_{module}" / "__init__.py").write_text(f'__version__ = "{version}"\n')
    (root / "contract.yaml").write_text(contract or contract_text(module))


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def make_stack(root: Path, *, git_init: bool = True) -> Path:
    """A stack repository at root/stack with every module at 0.1.0.dev0 (one commit)."""
    repo = root / "stack"
    (repo / "integration").mkdir(parents=True)
    for module in MODULES:
        write_module(repo, module)
    (repo / "constraints.txt").write_text("")
    if git_init:
        git(root, "init", "-q", "-b", "main", str(repo))
        git(repo, "config", "user.email", "test@example.com")
        git(repo, "config", "user.name", "Test")
        commit(repo, "initial")
    return repo


def workspace(repo: Path, home: Path) -> Workspace:
    home.mkdir(parents=True, exist_ok=True)
    return Workspace(repo=repo, home=home)


def release(repo: Path, module: str, version: str, **changes) -> str:
    """Cut a release of one module: change its version (and whatever else) and commit."""
    write_module(repo, module, version, **changes)
    return commit(repo, f"{module} {version}")
