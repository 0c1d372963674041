"""Where a workload's model comes from: `onnx-light:<name>` (the onnx package's light
model-zoo topologies), `file:<path>` (relative to the suite) or `pypi:<package>==<version>`
(a real model inside that wheel, see wheels.py); `builtin:` models are made in code
(generators/)."""

from __future__ import annotations

from pathlib import Path

import onnx

from stackci.errors import UsageError
from stackci.workloads import wheels
from stackci.workloads.suite import Workload


def light_models_dir() -> Path:
    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def light_model_names() -> list[str]:
    """Names of the light models the installed onnx package ships."""
    return sorted(path.stem[len("light_"):] for path in light_models_dir().glob("light_*.onnx"))


def light_model_path(name: str) -> Path:
    """`light_<name>.onnx` shipped in the onnx package's backend test data."""
    path = light_models_dir() / f"light_{name}.onnx"
    if not path.is_file():
        raise UsageError(f"onnx-light:{name}: no such model in the onnx package "
                         f"(known: {', '.join(light_model_names())})")
    return path


def source_path(workload: Workload, cache: Path | None = None) -> Path:
    """The source model's file; a pypi: source is fetched into `cache` (the workspace's) first."""
    kind, _, rest = workload.source.partition(":")
    if kind == "builtin":
        raise UsageError(f"workload {workload.name}: {workload.source} is built in code, "
                         "it has no source file (use prepare)")
    if kind == "onnx-light":
        return light_model_path(rest)
    if kind == "pypi":
        if cache is None:
            raise UsageError(f"workload {workload.name}: {workload.source} is fetched into the "
                             "harness's cache (use prepare)")
        return wheels.wheel_member(cache, rest, workload.member, workload.sha256,
                                   where=f"workload {workload.name} ({workload.source})")
    path = Path(rest)
    if not path.is_absolute() and workload.suite_dir is not None:
        path = workload.suite_dir / path
    if not path.is_file():
        raise UsageError(f"workload {workload.name}: source model not found: {path}")
    return path
