"""The day budget: durations as people write them, and how long each job is expected to take."""

from __future__ import annotations

import re
import time

from stackci.errors import UsageError

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")

# Before a job has history, assume this long (seconds): generous, so a new job does not push
# the night past its budget unnoticed.
DEFAULT_ESTIMATES = {"build": 600.0, "contracts": 10.0, "tests": 300.0, "workloads": 300.0,
                     "conformance": 900.0, "publish": 30.0}


def parse_duration(text: str | float, option: str = "duration") -> float:
    """Seconds in `90`, `90s`, `30m`, `24h`, `1d` or `1h30m`."""
    if isinstance(text, (int, float)):
        return float(text)
    cleaned = text.strip().lower()
    try:
        seconds = float(cleaned)
    except ValueError:
        parts = _PART.findall(cleaned)
        if not parts or "".join(n + u for n, u in parts) != cleaned:
            raise UsageError(f"{option} {text!r}: expected a duration like 90s, 30m, 24h "
                             "or 1h30m") from None
        seconds = sum(float(number) * UNITS[unit] for number, unit in parts)
    if seconds <= 0:
        raise UsageError(f"{option} {text!r}: expected a positive duration")
    return seconds


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class Budget:
    """Wall time allowed for a run; `used_before` carries the time of earlier sessions of a
    resumed run, so a resume does not get a fresh day."""

    def __init__(self, total_s: float, used_before: float = 0.0, clock=time.monotonic):
        self.total_s = total_s
        self.used_before = used_before
        self._clock = clock
        self._started = clock()

    def used(self) -> float:
        return self.used_before + self._clock() - self._started

    def fits(self, estimate_s: float) -> bool:
        return self.used() + estimate_s <= self.total_s
