"""How the executor stores a job's result: first in the run's journal (appended, fsynced),
then in the database. A database write that fails (a damaged page, a full disk, a server gone)
does not end the night: the run goes on, on its journal, says so once, and the end of the run
says where the results are (`stackci store recover` replays them)."""

from __future__ import annotations

import sys

from sqlalchemy.exc import SQLAlchemyError

from stackci.errors import StackciError
from stackci.model import ERROR, STORE_FAILED, Job, Outcome
from stackci.results.journal import Journal

STORE_FAILURES = (SQLAlchemyError, StackciError, OSError)


def combination_vector(combination) -> dict[str, dict]:
    return {module: {"version": mv.version, "commit": mv.commit, "tree_hash": mv.tree_hash}
            for module, mv in combination.modules.items()}


class Recorder:
    def __init__(self, store, run_id: int, journal: Journal | None = None):
        self.store, self.run_id, self.journal = store, run_id, journal
        self.failure: str | None = None  # the first database failure, once there was one
        self.journaled = 0

    def start_job(self, key: str, estimate_s: float | None) -> None:
        self._write(f"start of {key}", self.store.start_job, self.run_id, key,
                    estimate_s=estimate_s)

    def finish_job(self, job: Job, outcome: Outcome, duration_s: float | None,
                   details: dict, used_s: float) -> None:
        if self.failure is not None and outcome.status == ERROR and "reason" not in details:
            details = {**details, "reason": STORE_FAILED}  # perhaps the database's error
        if self.journal is not None:
            combination = job.combination
            self.journal.append({
                "type": "job", "run_id": self.run_id, "key": job.key, "stage": job.stage,
                "name": job.name, "sku": job.sku,
                "combination": {"name": combination.name, "key": combination.key,
                                "modules": combination_vector(combination)}
                if combination is not None else None,
                "status": outcome.status, "message": outcome.message,
                "duration_s": duration_s, "details": details, "metrics": outcome.metrics,
                "ops": outcome.ops, "lock": list(outcome.lock) if outcome.lock else None,
                "skus": outcome.skus, "regressions": outcome.regressions, "used_s": used_s})
            self.journaled += 1
        self._write(f"result of {job.key}", self._store_result, job, outcome, duration_s,
                    details, used_s)

    def update_run(self, **fields) -> None:
        self._write("run", self.store.update_run, self.run_id, **fields)

    def _store_result(self, job: Job, outcome: Outcome, duration_s, details, used_s) -> None:
        """The job's result and the evidence it carries, then the time used so far (so a
        killed run resumes with the budget it had left)."""
        if outcome.lock is not None and job.combination is not None:
            self.store.record_lock(job.combination.key, *outcome.lock)
        for sku in outcome.skus:
            self.store.upsert_sku(sku["name"], sku)
        if outcome.regressions:
            self.store.record_regression_changes(self.run_id, outcome.regressions)
        if outcome.analysis:
            self.store.record_analysis_outcome(self.run_id, job.key, job.combination_id,
                                               outcome.analysis)
        self.store.finish_job(self.run_id, job.key, status=outcome.status,
                              message=outcome.message, duration_s=duration_s, details=details,
                              metrics=outcome.metrics, ops=outcome.ops)
        self.store.update_run(self.run_id, summary={"used_s": used_s})

    def _write(self, what: str, write, *args, **kwargs) -> None:
        try:
            write(*args, **kwargs)
        except STORE_FAILURES as exc:
            if self.failure is None:
                self.failure = f"writing the {what}: {one_line(exc)}"
                where = (f"every result is in its journal {self.journal.path}"
                         if self.journal is not None else "results are not journaled")
                print(f"stackci: the results database failed {self.failure}; the run goes "
                      f"on and {where} (`stackci store recover` replays it)",
                      file=sys.stderr)
            if self.journal is None:
                raise

    def ended_badly(self) -> StackciError | None:
        """The one-line error a run that lost its database ends with (None when it did not)."""
        if self.failure is None:
            return None
        return StackciError(
            f"run {self.run_id}: the results database failed during the run ({self.failure}); "
            f"{self.journaled} finished result(s) are in {self.journal.path}: check the "
            "database (`stackci store check`), then `stackci store recover` (into it, or into "
            "a fresh one with --db) and `stackci nightly --resume`")


def one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return " ".join(text.split())[:300]
