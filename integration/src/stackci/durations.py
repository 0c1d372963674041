"""Durations as people write them (`90s`, `30m`, `24h`, `1h30m`) and as tables show them."""

from __future__ import annotations

import math
import re

from stackci.errors import UsageError

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


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
    if not math.isfinite(seconds) or seconds <= 0:
        raise UsageError(f"{option} {text!r}: expected a positive, finite duration")
    return seconds


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"

