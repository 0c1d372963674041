"""Arrays by name in .npz files (inputs, outputs, references), written atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from stackci.errors import UsageError


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    atomic_write(Path(path), lambda f: np.savez(f, **arrays))


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"inputs file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except Exception as exc:
        reason = " ".join(str(exc).split())
        raise UsageError(f"cannot read {path}: not a valid .npz file ({reason})")


def atomic_write(path: Path, write: Callable) -> None:
    """Write through a temporary file in the same directory, renamed into place when complete, so
    a killed preparation never leaves a truncated file that looks cached."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
