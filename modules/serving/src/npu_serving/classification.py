"""Triton's classification extension: an output requested with the parameter
`classification: k` (tritonclient's `class_count`) comes back as
the k largest of its elements (per batch entry of a batching model), as BYTES strings
"value:index" or "value:index:label" when the output has a `label_filename` in its model's
configuration, the largest first."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import BadRequest, RepositoryError

LABELS_LIMIT_BYTES = 16 << 20  # a label file is read whole at load


def classify(array: np.ndarray, count: int, labels: tuple[str, ...], batched: bool,
             name: str) -> np.ndarray:
    """The top `count` of `array`: shape [batch, k] for a batching model, [k] otherwise."""
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise BadRequest(f"output {name!r}: classification needs a numeric output, not "
                         f"{array.dtype}")
    rows = array.reshape(len(array), -1) if batched and array.ndim else array.reshape(1, -1)
    k = min(count, rows.shape[1])
    # Largest first; equal values keep their index order (stable), so results are repeatable.
    order = np.argsort(-rows.astype(np.float64), axis=1, kind="stable")[:, :k]
    classes = np.empty(order.shape, dtype=object)
    for row, indices in enumerate(order):
        for column, index in enumerate(indices):
            classes[row, column] = _entry(rows[row, index], int(index), labels).encode()
    return classes if batched else classes[0]


def _entry(value, index: int, labels: tuple[str, ...]) -> str:
    # As Triton writes them: C++ std::to_string, six decimals for floating point.
    text = f"{float(value):f}" if np.issubdtype(type(value), np.floating) else str(int(value))
    text = f"{text}:{index}"
    return f"{text}:{labels[index]}" if index < len(labels) and labels[index] else text


def read_labels(config_path: Path, output: str, filename: str) -> tuple[str, ...]:
    """The labels of `output`: one per line of `filename` in the model's folder (Triton's
    `label_filename`, next to `config_path`), which must be a file there, not a path out."""
    folder = config_path.parent
    where = f"{config_path}: output {output!r}: label_filename {filename!r}"
    if Path(filename).name != filename or filename in ("", ".", ".."):
        raise RepositoryError(f"{where}: expected a file name in the model folder")
    try:
        resolved = (folder / filename).resolve(strict=True)
    except (OSError, RuntimeError):
        raise RepositoryError(f"{where}: no such file in {folder}") from None
    if folder.resolve() not in resolved.parents or not resolved.is_file():
        raise RepositoryError(f"{where}: expected a file in the model folder, not a link out "
                              "of it or a folder")
    if resolved.stat().st_size > LABELS_LIMIT_BYTES:
        raise RepositoryError(f"{where}: over {LABELS_LIMIT_BYTES} bytes")
    try:
        return tuple(resolved.read_text(encoding="utf-8").splitlines())
    except (OSError, UnicodeDecodeError) as exc:
        raise RepositoryError(f"{where}: not readable UTF-8 text ({exc})") from None
