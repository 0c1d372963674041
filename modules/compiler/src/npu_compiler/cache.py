"""The on-disk cache of compiled plans, keyed by what a plan depends on: the model's bytes,
the compiler and opslib (version and source), the SKU, the precision, the batch, the input
shape signature, the pipeline and the calibration data. Directory: $NPU_PLAN_CACHE, else ~/.cache/npu-compiler.

The cache is bounded: a plan holds its weights (ResNet-50's are 100 MB), one per shape
signature, batch, SKU and source digest, so an unbounded cache grew to 72 GB in a day of
nightlies and filled the disk. After each store the least recently used entries are evicted
until the whole is within $NPU_PLAN_CACHE_MAX_BYTES (default 4 GiB)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np

from npu_compiler.errors import ModelLoadError, UsageError
from npu_compiler.plan import Plan

ENV_VAR = "NPU_PLAN_CACHE"
MAX_BYTES_VAR = "NPU_PLAN_CACHE_MAX_BYTES"
DEFAULT_MAX_BYTES = 4 << 30


def default_dir() -> Path:
    configured = os.environ.get(ENV_VAR)
    return Path(configured) if configured else Path.home() / ".cache" / "npu-compiler"


@lru_cache(maxsize=None)
def package_identity(distribution: str, package: str) -> str:
    """Version plus a digest of the package's sources: a working tree that changed without a
    version bump must not reuse plans compiled by its previous code."""
    try:
        version = metadata.version(distribution)
    except metadata.PackageNotFoundError:
        version = "unknown"
    module = __import__(package)
    root = Path(module.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return f"{version}+{digest.hexdigest()[:16]}"


def model_digest(model) -> str:
    import onnx

    if isinstance(model, onnx.ModelProto):
        data = model.SerializeToString()
    else:
        path = Path(model)
        if not path.is_file():
            raise ModelLoadError(f"cannot read model {path}: no such file")
        data = path.read_bytes()
    digest = hashlib.sha256(data)
    if not isinstance(model, onnx.ModelProto) and len(data) <= EXTERNAL_DATA_PROBE:
        # Weights in side files change without the .onnx changing: their sizes and times
        # are part of the key (a model with external data has a small .onnx file).
        for side in _side_files(data, path.parent):
            stat = side.stat()
            digest.update(f"{side.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


EXTERNAL_DATA_PROBE = 64 << 20


def _side_files(data: bytes, folder: Path) -> list[Path]:
    import onnx

    from npu_compiler.onnx_import import external_tensors

    try:
        proto = onnx.load_model_from_string(data)
    except Exception:
        return []  # not a model: loading it reports that
    locations = {e.value for t in external_tensors(proto.graph) for e in t.external_data
                 if e.key == "location"}
    return sorted(p for p in (folder / loc for loc in locations) if p.is_file())


def calibration_digest(samples: list[dict]) -> str:
    digest = hashlib.sha256()
    for sample in samples:
        for name in sorted(sample):
            array = np.ascontiguousarray(sample[name])
            digest.update(f"{name}:{array.dtype}:{array.shape}".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


def plan_key(model, sku, *, precision, batch, pipeline, calibration, shapes=None) -> str:
    parts = {"model": model_digest(model),
             "compiler": package_identity("npu-compiler", "npu_compiler"),
             "opslib": package_identity("npu-opslib", "npu_opslib"),
             "sku": sku.to_dict(), "precision": precision, "batch": batch,
             "pipeline": list(pipeline) if pipeline else None,
             # The shape signature the plan is specialized to: one plan per signature.
             "shapes": shapes,
             "calibration": calibration_digest(calibration) if precision == "int8" else None}
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def max_bytes() -> int:
    configured = os.environ.get(MAX_BYTES_VAR, "").strip()
    if not configured:
        return DEFAULT_MAX_BYTES
    try:
        value = int(configured)
    except ValueError:
        value = -1
    if value < 0:
        raise UsageError(f"{MAX_BYTES_VAR}={configured!r}: expected a whole number of bytes "
                         "(0 keeps no plans)")
    return value


def load(directory: Path, key: str) -> Plan | None:
    entry = directory / key[:2] / key
    if not (entry / "plan.json").is_file():
        return None
    try:
        plan = Plan.load(entry)
    except (ModelLoadError, OSError):
        # A damaged entry, or one another process evicted while this one read it: recompiled
        # and stored again.
        return None
    try:
        os.utime(entry / "plan.json")  # recently used: evicted last
    except OSError:
        pass  # a read-only cache still serves
    return plan


def store(directory: Path, key: str, plan: Plan) -> None:
    """Written beside its final place and renamed in, so readers never see half a plan."""
    final = directory / key[:2] / key
    final.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{key[:8]}-"))
    try:
        plan.save(scratch)
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)
        os.replace(scratch, final)
    except OSError:
        shutil.rmtree(scratch, ignore_errors=True)
    evict(directory, max_bytes(), keep=final)


def _entries(directory: Path) -> list[tuple[float, int, Path]]:
    """(last use, bytes, path) of every complete entry."""
    found = []
    for bucket in directory.iterdir() if directory.is_dir() else ():
        for entry in bucket.iterdir() if bucket.is_dir() else ():
            try:
                used = (entry / "plan.json").stat().st_mtime
                size = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
            except OSError:
                continue  # half-written (a scratch folder) or removed meanwhile
            found.append((used, size, entry))
    return found


def evict(directory: Path, limit: int, keep: Path | None = None) -> int:
    """Remove the least recently used entries until the cache holds at most `limit` bytes
    (the entry just stored stays, even alone over the limit). Returns the bytes freed."""
    entries = sorted(_entries(directory), key=lambda e: e[0])
    total, freed = sum(size for _, size, _ in entries), 0
    for _, size, entry in entries:
        if total <= limit:
            break
        if entry == keep:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        total, freed = total - size, freed + size
    return freed
