"""The model repository: `DIR/<model>/<version>/model.onnx` or `DIR/<model>/model.onnx` (another
file name with the configuration's `default_model_filename`), with an optional
`DIR/<model>/config.pbtxt` (Triton's) or `DIR/<model>/config.yaml` (see config.py).
Triton's layout; the versions served are the version policy's (default: the highest).

Nothing outside the repository is served: a model folder, version folder or model file that
resolves (through symlinks) outside the repository, a model name with a path separator or `..`,
and ONNX external data outside the model's folder are refused with the path named.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import config as model_config
from .config import ModelConfig
from .errors import RepositoryError

CONFIG_FILE = model_config.YAML_FILE
PRECISIONS = model_config.PRECISIONS


@dataclass(frozen=True)
class ModelEntry:
    name: str
    version: str
    path: Path
    config: ModelConfig


@dataclass(frozen=True)
class BrokenEntry:
    """A repository folder that cannot be served, and why (one line naming the file)."""

    name: str
    error: str


def scan_repository(root: str | Path) -> list[ModelEntry]:
    """Every model version of the repository, sorted by name; a bad entry raises
    `RepositoryError`."""
    entries = []
    for entry in scan_models(root):
        if isinstance(entry, BrokenEntry):
            raise RepositoryError(entry.error)
        entries.extend(entry)
    return entries


def scan_models(root: str | Path) -> list[list[ModelEntry] | BrokenEntry]:
    """Per model folder: its served versions, or a `BrokenEntry` (others are unaffected)."""
    root = Path(root)
    if not root.is_dir():
        raise RepositoryError(f"{root}: model repository is not a directory")
    return [model_versions(root, folder.name) for folder in sorted(root.iterdir())
            if folder.is_dir() and not folder.name.startswith((".", "_"))]


def model_names(root: Path) -> list[str]:
    return [folder.name for folder in sorted(Path(root).iterdir())
            if folder.is_dir() and not folder.name.startswith((".", "_"))]


def model_versions(root: Path, name: str, config: ModelConfig | None = None
                   ) -> list[ModelEntry] | BrokenEntry:
    """The versions of model `name` to serve; `config` replaces its folder's."""
    try:
        return _model_entries(Path(root), name, config)
    except RepositoryError as exc:
        return BrokenEntry(name, str(exc))
    except OSError as exc:  # the folder cannot be read: the model's fault, not the server's
        return BrokenEntry(name, f"{Path(root) / name}: {exc.strerror or exc}")


# The longest folder name the file systems we run on take (NAME_MAX, in bytes): a longer
# model name would make every lookup raise ENAMETOOLONG.
NAME_MAX = 255


def check_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name or \
            name.startswith((".", "_")) or len(name.encode("utf-8", "surrogatepass")) > NAME_MAX:
        shown = name if len(name) <= 80 else f"{name[:77]}..."
        raise RepositoryError(f"model name {shown!r} is not a folder name of the repository")
    if not _is_utf8(name):
        # A folder named in another encoding (os.listdir surrogate-escapes its bytes): clients
        # could never name it in a URL, and its name cannot be written in a UTF-8 answer.
        raise RepositoryError(f"model name {name!r}: the folder name is not UTF-8")


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _inside(root: Path, path: Path, what: str) -> Path:
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise RepositoryError(f"{path}: {what} resolves to {resolved}, outside {root}: refused")
    return resolved


def _model_entries(root: Path, name: str, config: ModelConfig | None = None) -> list[ModelEntry]:
    check_name(name)
    folder = root / name
    if not folder.is_dir():
        raise RepositoryError(f"{folder}: no such model folder in the repository")
    _inside(root, folder, "model folder")
    config = config or model_config.load(folder)
    filename = config.model_filename
    versions = sorted((int(p.name), p) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())
    for _, version_dir in versions:
        if not (version_dir / filename).is_file():
            raise RepositoryError(f"{version_dir}: version directory has no {filename}")
    if versions:
        chosen = dict(versions)
        selected = config.select_versions(list(chosen))
        if not selected:
            raise RepositoryError(f"{folder}: version_policy selects none of versions "
                                  f"{', '.join(str(v) for v in chosen)}")
        found = [(v, chosen[v] / filename) for v in selected]
    elif (folder / filename).is_file():
        found = [(1, folder / filename)]
    else:
        raise RepositoryError(
            f"{folder}: no model: expected {folder}/<version>/{filename} or {folder}/{filename}"
        )
    for _, path in found:
        _inside(root, path, "model file")
        check_external_data(path)
    return [ModelEntry(name, str(version), path, config) for version, path in found]


def check_external_data(path: Path) -> None:
    """ONNX external data must be files inside the model's own folder."""
    import onnx
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, OSError, ... for a bad file
        raise RepositoryError(f"{path}: not a readable ONNX model ({exc})") from None
    if not model.graph.output:  # an empty file parses as an empty ModelProto
        raise RepositoryError(f"{path}: not an ONNX model: its graph has no outputs")
    folder = path.parent.resolve()
    for tensor in model.graph.initializer:
        if not uses_external_data(tensor):
            continue
        location = ExternalDataInfo(tensor).location
        target = (folder / location).resolve()
        if Path(location).is_absolute() or not target.is_relative_to(folder):
            raise RepositoryError(f"{path}: initializer {tensor.name!r} has external data "
                                  f"{location!r} outside the model's folder: refused")
