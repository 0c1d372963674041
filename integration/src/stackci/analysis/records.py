"""Analysis documents, design sweeps and advice reports kept in the results store (tables
analysis_documents, analysis_ops, sweet_spots, design_sweeps, advice_items; see
results/analysis.py), and what advice reads back from it.

Before the store had those tables, `stackci analyze` and `explore` wrote JSON files under
`<home>/analysis/`; `import_files` moves such files into the store once (the files go to
`analysis/imported/`), so nothing they held is lost.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from stackci.errors import UsageError


def label_of(doc: dict) -> str:
    """How advice names a workload x SKU x precision (advice.py's `_label`)."""
    return f"{doc.get('workload') or doc.get('model')} on {doc['sku']} ({doc['precision']})"


def stored_inputs(store, before_run: int | None = None) -> tuple[list[dict], dict, list[dict]]:
    """What advice reads: (the newest document of each workload x SKU x precision, the one
    before each by label, the newest design sweep of each name)."""
    latest, previous = store.latest_analyses(before_run)
    docs = [row["document"] for row in latest]
    earlier = {label_of(row["document"]): row["document"] for row in previous}
    sweeps = [row["document"] for row in store.latest_design_sweeps()]
    return docs, earlier, sweeps


def _read(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"analysis record {path} is unreadable ({exc})") from None
    if not isinstance(doc, dict) or "sku" not in doc or "precision" not in doc:
        raise UsageError(f"analysis record {path} is not an analysis document")
    return doc


def import_files(store, directory: Path) -> int:
    """Move the JSON files of older harnesses (previous documents first, so the newest stays
    newest) into the store; returns how many were imported."""
    directory = Path(directory)
    documents = sorted(directory.glob("*.json"), key=lambda p: (
        not p.name.endswith(".previous.json"), p.name))
    sweeps = sorted((directory / "sweeps").glob("*.json"))
    if not documents and not sweeps:
        return 0
    done = directory / "imported"
    (done / "sweeps").mkdir(parents=True, exist_ok=True)
    for path in documents:
        store.record_analysis(_read(path), label="imported")
        os.replace(path, done / path.name)
    for path in sweeps:
        doc = json.loads(path.read_text())
        store.record_design_sweep(doc, name=path.stem, label="imported")
        os.replace(path, done / "sweeps" / path.name)
    return len(documents) + len(sweeps)


def run_inputs(reader) -> tuple[list[dict], dict, list[dict]]:
    """What a night's advice reads (`reader`: the run's HistoryReader): the documents of its
    run (the newest per workload x SKU x precision), the newest one before the run of each,
    by label, and the run's design sweeps."""
    newest = {}
    for row in reader.analysis_documents(run_id=reader.run_id):
        newest[(row["workload"], row["sku"], row["precision"])] = row["document"]
    earlier, _ = reader.latest_analyses(before_run=reader.run_id)
    previous = {label_of(row["document"]): row["document"] for row in earlier
                if (row["workload"], row["sku"], row["precision"]) in newest}
    sweeps = [row["document"] for row in reader.design_sweeps(run_id=reader.run_id)]
    return list(newest.values()), previous, sweeps
