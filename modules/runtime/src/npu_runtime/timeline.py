"""The record of what ran where and when, exportable as Chrome trace JSON (opens in Perfetto)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from npu_driver import SKU
from npu_driver.perf import Cost


@dataclass
class LaunchRecord:
    """One piece of work placed on a stream: [start_cycle, end_cycle) at the SKU clock."""

    name: str
    stream: str
    start_cycle: int
    end_cycle: int
    cost: Cost
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def cycles(self) -> int:
        return self.end_cycle - self.start_cycle

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "stream": self.stream, "start_cycle": self.start_cycle,
                "cycles": self.cycles, **self.cost.to_dict()}


def _jsonable(value: Any) -> Any:
    """Trace args must survive json.dumps whatever a caller attached (shapes, dtypes, arrays)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist") and getattr(value, "size", 2) == 1:
        return value.tolist()
    return str(value)


class Timeline:
    """Launch records in the order they were issued, and the streams they ran on."""

    PID = 1

    def __init__(self, sku: SKU):
        self.sku = sku
        self.records: list[LaunchRecord] = []
        self._stream_ids: dict[str, int] = {}

    def add_stream(self, name: str) -> int:
        return self._stream_ids.setdefault(name, len(self._stream_ids))

    def add(self, record: LaunchRecord) -> LaunchRecord:
        self.add_stream(record.stream)
        self.records.append(record)
        return record

    @property
    def end_cycle(self) -> int:
        return max((r.end_cycle for r in self.records), default=0)

    def cycles_to_us(self, cycles: int) -> float:
        return cycles / (self.sku.clock_ghz * 1e3)

    def to_chrome_trace(self) -> dict[str, Any]:
        metadata = [{"name": "process_name", "ph": "M", "pid": self.PID, "tid": 0,
                     "args": {"name": f"NPU {self.sku.name}"}}]
        metadata += [{"name": "thread_name", "ph": "M", "pid": self.PID, "tid": tid,
                      "args": {"name": name}} for name, tid in self._stream_ids.items()]
        events = [{
            "name": r.name,
            "cat": r.cost.unit,
            "ph": "X",
            "ts": self.cycles_to_us(r.start_cycle),
            "dur": self.cycles_to_us(r.cycles),
            "pid": self.PID,
            "tid": self._stream_ids[r.stream],
            "args": _jsonable({**r.args, "start_cycle": r.start_cycle, **r.cost.to_dict()}),
        } for r in self.records]
        return {"traceEvents": metadata + events, "displayTimeUnit": "ns",
                "otherData": {"sku": self.sku.name, "clock_ghz": self.sku.clock_ghz}}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_chrome_trace()))
        return path
