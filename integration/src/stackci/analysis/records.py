"""Analysis documents kept as JSON files under the harness's working directory (until the
results store has analysis tables): one file per workload x SKU x precision, the previous one
kept beside it so a moved sweet spot is seen; design sweeps likewise."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from stackci.errors import UsageError


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def document_path(directory: Path, workload: str, sku: str, precision: str) -> Path:
    return Path(directory) / f"{_slug(workload)}__{_slug(sku)}__{_slug(precision)}.json"


def save_document(directory: Path, doc: dict) -> Path:
    """Write `doc` (keeping the file it replaces as .previous.json), atomically."""
    path = document_path(directory, doc["workload"], doc["sku"], doc["precision"])
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        os.replace(path, path.with_suffix(".previous.json"))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)
    return path


def save_sweep(directory: Path, doc: dict, name: str) -> Path:
    path = Path(directory) / "sweeps" / f"{_slug(name)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)
    return path


def _read(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"analysis record {path} is unreadable ({exc})") from None
    if not isinstance(doc, dict):
        raise UsageError(f"analysis record {path} is not a JSON object")
    return doc


def load_documents(directory: Path) -> tuple[list[dict], dict[str, dict]]:
    """(the latest documents, the previous ones by label)."""
    directory = Path(directory)
    latest, previous = [], {}
    for path in sorted(directory.glob("*.json")):
        if path.name.endswith(".previous.json"):
            continue
        doc = _read(path)
        latest.append(doc)
        before = path.with_suffix(".previous.json")
        if before.exists():
            old = _read(before)
            previous[f"{doc.get('workload')} on {doc['sku']} ({doc['precision']})"] = old
    return latest, previous


def load_sweeps(directory: Path) -> list[dict]:
    return [_read(p) for p in sorted((Path(directory) / "sweeps").glob("*.json"))]
