"""Each run's journal: every finished job's result, appended and fsynced as JSON lines
(`runs/<id>/journal.jsonl` under STACKCI_HOME) before the database is written, so a result
survives a store that fails mid-run; `stackci store recover` replays journals into a store
(the run's own when it is healthy again, or a fresh one).

Lines: one {"type": "run", ...} header (what the run's row holds), then one {"type": "job",
...} per finished job (its row, metrics, op profile, the lock and SKUs its outcome carried,
and the time the run had used). The last line of a journal cut by a crash may be torn: it is
skipped, every whole line before it is kept.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from stackci.results.schema import JobRow, Run, utcnow

JOURNAL_NAME = "journal.jsonl"


def journal_path(home: Path, run_id: int) -> Path:
    return Path(home) / "runs" / str(run_id) / JOURNAL_NAME


class Journal:
    """Append-only, one writer thread at a time, each line on disk before append returns."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, entry: dict) -> None:
        line = json.dumps({**entry, "at": utcnow().isoformat()}, default=str) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as file:
                file.write(line)
                file.flush()
                os.fsync(file.fileno())

    def entries(self) -> list[dict]:
        return read_journal(self.path)


def read_journal(path: Path) -> list[dict]:
    found = []
    with open(path, encoding="utf-8", errors="replace") as file:
        for line in file:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a crash
            if isinstance(entry, dict) and entry.get("type") in ("run", "job"):
                found.append(entry)
    return found


def run_entry(run_id: int, *, tier: str, budget_s: float, plan: dict, host: str,
              harness_version: str) -> dict:
    return {"type": "run", "run_id": run_id, "tier": tier, "budget_s": budget_s, "plan": plan,
            "host": host, "harness_version": harness_version}


class JournalStore:
    """Mixed into results.store.Store: replaying journals."""

    def replay(self, entries: list[dict]) -> tuple[int, int]:
        """Store what the journal holds and the store lacks: (replayed, already stored).
        A job stored later than its journal line (a resumed run redid it) is left alone."""
        header = next((e for e in entries if e["type"] == "run"), None)
        latest: dict[tuple[int, str], dict] = {}
        for entry in entries:
            if entry["type"] == "job":
                latest[(entry["run_id"], entry["key"])] = entry
        if header is not None:
            self._restore_run(header)
        replayed = kept = 0
        for (run_id, key), entry in latest.items():
            if self._stored_since(run_id, key, entry["at"]):
                kept += 1
                continue
            self._replay_job(entry)
            replayed += 1
        return replayed, kept

    def _restore_run(self, header: dict) -> None:
        with self._write_lock, self._sessions.begin() as session:
            if session.get(Run, header["run_id"]) is None:
                session.add(Run(id=header["run_id"], tier=header["tier"],
                                budget_s=header["budget_s"], plan=header["plan"],
                                host=header["host"], harness_version=header["harness_version"],
                                started_at=datetime.fromisoformat(header["at"]),
                                status="interrupted", summary={}))

    def _stored_since(self, run_id: int, key: str, at: str) -> bool:
        with self._sessions() as session:
            row = session.scalar(select(JobRow).where(JobRow.run_id == run_id,
                                                      JobRow.key == key))
            return (row is not None and row.finished_at is not None
                    and row.finished_at >= datetime.fromisoformat(at))

    def _replay_job(self, entry: dict) -> None:
        combination = entry.get("combination")
        combination_id = None
        if combination:
            combination_id = self.record_combination(combination["name"], combination["key"],
                                                     combination["modules"])
        self.add_jobs(entry["run_id"], [{"key": entry["key"], "stage": entry["stage"],
                                         "name": entry["name"], "sku": entry["sku"],
                                         "combination_id": combination_id}])
        if entry.get("lock") and combination:
            self.record_lock(combination["key"], *entry["lock"])
        for sku in entry.get("skus") or []:
            self.upsert_sku(sku["name"], sku)
        if entry.get("regressions"):
            self.record_regression_changes(entry["run_id"], entry["regressions"])
        self.finish_job(entry["run_id"], entry["key"], status=entry["status"],
                        message=entry["message"], duration_s=entry["duration_s"],
                        details=entry["details"], metrics=entry["metrics"], ops=entry["ops"])
        run = self.run(entry["run_id"])
        if run is not None and entry.get("used_s", 0) > run.used_s:
            self.update_run(entry["run_id"], summary={**run.summary, "used_s": entry["used_s"]})
