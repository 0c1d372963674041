"""The store's side of run leases: who owns a run now (nightly/lease.py decides whether an
owner is still alive). Taking a lease over is a compare-and-swap on the old owner's row, so
two resumes of one lost run cannot both win."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from stackci.results.schema import LeaseRow, utcnow

LEASE_FIELDS = ("run_id", "owner", "host", "pid", "pid_started", "acquired_at",
                "heartbeat_at", "ttl_s", "processes")


class LeaseStore:
    """Mixed into results.store.Store (its `_sessions` and `_write_lock`)."""

    def lease(self, run_id: int) -> dict | None:
        with self._sessions() as session:
            row = session.get(LeaseRow, run_id)
            return {name: getattr(row, name) for name in LEASE_FIELDS} if row else None

    def take_lease(self, run_id: int, *, owner: str, host: str, pid: int, pid_started: str,
                   ttl_s: float, replacing: dict | None = None) -> bool:
        """Own `run_id`: a new lease, or the lease `replacing` (as read) taken over. False
        when someone else got there first (the row changed since it was read)."""
        now = utcnow()
        fields = {"owner": owner, "host": host, "pid": pid, "pid_started": pid_started,
                  "ttl_s": ttl_s, "acquired_at": now, "heartbeat_at": now, "processes": []}
        with self._write_lock:
            if replacing is None:
                try:
                    with self._sessions.begin() as session:
                        session.add(LeaseRow(run_id=run_id, **fields))
                    return True
                except IntegrityError:
                    return False
            with self._sessions.begin() as session:
                done = session.execute(
                    update(LeaseRow).where(LeaseRow.run_id == run_id,
                                           LeaseRow.owner == replacing["owner"],
                                           LeaseRow.heartbeat_at == replacing["heartbeat_at"])
                    .values(**fields))
                return done.rowcount == 1

    def beat(self, run_id: int, owner: str, processes: list, at: datetime | None = None
             ) -> bool:
        """Refresh the owner's heartbeat; False when the lease is no longer its own."""
        with self._write_lock, self._sessions.begin() as session:
            done = session.execute(update(LeaseRow).where(LeaseRow.run_id == run_id,
                                                          LeaseRow.owner == owner)
                                   .values(heartbeat_at=at or utcnow(), processes=processes))
            return done.rowcount == 1

    def release_lease(self, run_id: int, owner: str) -> None:
        with self._write_lock, self._sessions.begin() as session:
            session.execute(delete(LeaseRow).where(LeaseRow.run_id == run_id,
                                                   LeaseRow.owner == owner))
