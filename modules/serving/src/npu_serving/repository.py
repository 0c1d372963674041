"""The model repository: `DIR/<model>/<version>/model.onnx` or `DIR/<model>/model.onnx`, with an
optional `DIR/<model>/config.yaml` (Triton's layout; the highest version is served).

config.yaml keys (all optional):

    precision: fp32            # fp32 | fp16 | bf16 | int8, as the compiler lowers
    max_batch_size: 8          # 0 (default): no batch dimension, no batching
    dynamic_batching:          # with max_batch_size > 0; `false` turns merging off
      max_queue_delay_microseconds: 1000
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import RepositoryError

PRECISIONS = ("fp32", "fp16", "bf16", "int8")
MODEL_FILE = "model.onnx"
CONFIG_FILE = "config.yaml"


@dataclass(frozen=True)
class ModelConfig:
    precision: str = "fp32"
    max_batch_size: int = 0
    dynamic_batching: bool = True
    max_queue_delay_us: int = 0

    @property
    def batches_dynamically(self) -> bool:
        return self.max_batch_size > 0 and self.dynamic_batching


@dataclass(frozen=True)
class ModelEntry:
    name: str
    version: str
    path: Path
    config: ModelConfig


def scan_repository(root: str | Path) -> list[ModelEntry]:
    """Every model of the repository, sorted by name; a bad entry raises `RepositoryError`."""
    root = Path(root)
    if not root.is_dir():
        raise RepositoryError(f"{root}: model repository is not a directory")
    return [
        _model_entry(folder)
        for folder in sorted(root.iterdir())
        if folder.is_dir() and not folder.name.startswith((".", "_"))
    ]


def _model_entry(folder: Path) -> ModelEntry:
    versions = sorted((int(p.name), p) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())
    for _, version_dir in versions:
        if not (version_dir / MODEL_FILE).is_file():
            raise RepositoryError(f"{version_dir}: version directory has no {MODEL_FILE}")
    if versions:
        version, version_dir = versions[-1]
        path = version_dir / MODEL_FILE
    elif (folder / MODEL_FILE).is_file():
        version, path = 1, folder / MODEL_FILE
    else:
        raise RepositoryError(
            f"{folder}: no model: expected {folder}/<version>/{MODEL_FILE} or {folder}/{MODEL_FILE}"
        )
    return ModelEntry(folder.name, str(version), path, load_config(folder / CONFIG_FILE))


def load_config(path: Path) -> ModelConfig:
    if not path.exists():
        return ModelConfig()
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0]
        raise RepositoryError(f"{path}: not readable YAML ({reason})") from None
    if not isinstance(raw, dict):
        raise RepositoryError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
    unknown = sorted(set(raw) - {"precision", "max_batch_size", "dynamic_batching"})
    if unknown:
        raise RepositoryError(
            f"{path}: unknown setting {unknown[0]!r}: expected precision, max_batch_size, "
            "dynamic_batching"
        )
    precision = raw.get("precision", "fp32")
    if precision not in PRECISIONS:
        raise RepositoryError(
            f"{path}: precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}"
        )
    max_batch_size = _non_negative_int(path, "max_batch_size", raw.get("max_batch_size", 0))
    batching = raw.get("dynamic_batching", {})
    if batching is None or batching is True:
        batching = {}
    if batching is False:
        return ModelConfig(precision, max_batch_size, dynamic_batching=False)
    if not isinstance(batching, dict) or set(batching) - {"max_queue_delay_microseconds"}:
        raise RepositoryError(
            f"{path}: dynamic_batching: expected false or a mapping with "
            f"max_queue_delay_microseconds, got {batching!r}"
        )
    delay = _non_negative_int(
        path,
        "dynamic_batching.max_queue_delay_microseconds",
        batching.get("max_queue_delay_microseconds", 0),
    )
    return ModelConfig(precision, max_batch_size, True, delay)


def _non_negative_int(path: Path, field: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RepositoryError(f"{path}: {field}: expected a non-negative integer, got {value!r}")
    return value
