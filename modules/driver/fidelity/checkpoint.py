"""Finished layer rows of a fidelity run, one JSON line each, so that a killed run resumes.

A row is appended (flushed and fsynced) the moment it is known. A row is keyed by everything
that decides SCALE-Sim's answer: the GEMM (name, M, N, K), the array, the dataflow and the
memory (sram_kb, bandwidth); rows whose key is not in the current plan are left in the file
but never used, so a checkpoint made with other settings cannot leak into a table.

A kill in the middle of a write leaves a last line without its newline: that line is dropped
(and cut off the file, so the next row starts on a line of its own). Any other line that is not
a row is an error: something other than run_fidelity wrote the file.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

KEY_FIELDS = ("name", "M", "N", "K", "array", "dataflow", "sram_kb", "bandwidth")


class CheckpointError(Exception):
    """The checkpoint cannot be used; the message names the file and what is wrong."""


def row_key(row: dict) -> tuple:
    """The settings that decide a row's SCALE-Sim result, hashable."""
    return tuple(tuple(row[f]) if f == "array" else row[f] for f in KEY_FIELDS)


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _row_problem(row) -> str | None:
    """Why `row` is not a fidelity row, or None."""
    if not isinstance(row, dict):
        return "not a JSON object"
    missing = [f for f in (*KEY_FIELDS, "scalesim") if f not in row]
    if missing:
        return f"no field {missing[0]!r}"
    for field in ("name", "dataflow"):
        if not isinstance(row[field], str):
            return f"{field} is {row[field]!r}, expected a string"
    for field in ("M", "N", "K", "sram_kb", "bandwidth"):
        if not _is_count(row[field]):
            return f"{field} is {row[field]!r}, expected a non-negative integer"
    array = row["array"]
    if not (isinstance(array, list) and len(array) == 2 and all(_is_count(v) for v in array)):
        return f"array is {array!r}, expected [rows, cols]"
    scalesim = row["scalesim"]
    for field in ("compute_cycles", "stall_cycles", "total_cycles"):
        if not isinstance(scalesim, dict) or not _is_count(scalesim.get(field)):
            return f"scalesim.{field} is missing or not a non-negative integer"
    return None


class Checkpoint:
    """The JSONL file of one run: `open()` returns the rows already there, `append()` adds one.

    The file is locked while open, so two runs never interleave their rows in it. Without a
    path nothing is kept (a run that writes no results file)."""

    def __init__(self, path: Path | None):
        self.path = Path(path) if path is not None else None
        self.dropped_torn_line = False
        self._file = None

    def open(self) -> dict[tuple, dict]:
        if self.path is None:
            return {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a+b")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.close()
            raise CheckpointError(f"checkpoint {self.path} is in use by another run_fidelity "
                                  "run") from None
        self._file.seek(0)
        try:
            rows, kept_bytes = self._parse(self._file.read())
        except CheckpointError:
            self.close()
            raise
        self._cut_to(kept_bytes)
        return rows

    def _cut_to(self, length: int) -> None:
        """Drop everything after the well-formed prefix; end it with a newline."""
        if length != self._file.tell():
            self._file.truncate(length)
        self._file.seek(max(length - 1, 0))
        if length and self._file.read(1) != b"\n":
            self._file.write(b"\n")  # the last row was written without its newline (by hand)
        self._sync()

    def _parse(self, data: bytes) -> tuple[dict[tuple, dict], int]:
        """The rows by key (a later duplicate wins) and the length of the well-formed prefix."""
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()  # the file ends with a newline, as it should
        rows, kept = {}, 0
        for number, line in enumerate(lines, 1):
            if not line.strip():
                kept += len(line) + 1
                continue
            try:
                row = json.loads(line)
                problem = _row_problem(row)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                problem = f"not JSON ({exc})"
            if problem and number == len(lines):
                self.dropped_torn_line = True
                break
            if problem:
                raise CheckpointError(f"checkpoint {self.path} line {number}: {problem}; it is "
                                      "not a run_fidelity row (fix the line or delete the file)")
            rows[row_key(row)] = row
            kept += len(line) + 1
        return rows, min(kept, len(data))

    def append(self, row: dict) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(row, separators=(",", ":")).encode() + b"\n")
        self._sync()

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def remove(self) -> None:
        self.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)
