"""One registry of metric kinds: whether a figure is exact or noisy, and which way is worse.

Deterministic figures come from the simulator (cycles, bytes, MACs) or from counting (conformance
cases, opslib kernels): the same module trees give the same number, so any change means the code
changed it. Wall-clock figures depend on the machine's load and need statistics (changepoint.py).
A metric nobody registered is not checked: guessing its direction would invent regressions.
"""

from __future__ import annotations

import enum
import fnmatch
from dataclasses import dataclass

from stackci.errors import UsageError


class Kind(str, enum.Enum):
    DETERMINISTIC = "deterministic"
    WALL_CLOCK = "wall-clock"
    OUTCOME = "outcome"


class Direction(str, enum.Enum):
    HIGHER_IS_WORSE = "higher-is-worse"
    LOWER_IS_WORSE = "lower-is-worse"


@dataclass(frozen=True)
class MetricKind:
    pattern: str          # a metric name, or an fnmatch pattern such as "conformance_*"
    kind: Kind
    direction: Direction
    unit: str = ""
    about: str = ""

    def worse(self, before: float, after: float) -> bool:
        """Whether moving from `before` to `after` is a move in the bad direction."""
        if self.direction is Direction.HIGHER_IS_WORSE:
            return after > before
        return after < before


_EXACT: dict[str, MetricKind] = {}
_PATTERNS: list[MetricKind] = []

OUTCOME_METRIC = "outcome"   # the series of a job's statuses (outcomes.py)


def register(pattern: str, kind: Kind, direction: Direction, unit: str = "",
             about: str = "") -> MetricKind:
    entry = MetricKind(pattern, kind, direction, unit, about)
    if any(ch in pattern for ch in "*?["):
        _PATTERNS.append(entry)
    else:
        _EXACT[pattern] = entry
    return entry


def lookup(name: str) -> MetricKind | None:
    """The kind of a stored metric name; exact names win over patterns, the first pattern
    registered wins among patterns."""
    if name in _EXACT:
        return _EXACT[name]
    return next((entry for entry in _PATTERNS if fnmatch.fnmatchcase(name, entry.pattern)),
                None)


def kind_of(name: str) -> MetricKind:
    entry = lookup(name)
    if entry is None:
        raise UsageError(f"unknown metric {name!r}: expected one of "
                         f"{', '.join(sorted(_EXACT))} or a name matching "
                         f"{', '.join(e.pattern for e in _PATTERNS)}")
    return entry


def registered() -> list[MetricKind]:
    return [*_EXACT.values(), *_PATTERNS]


D, W = Kind.DETERMINISTIC, Kind.WALL_CLOCK
UP, DOWN = Direction.HIGHER_IS_WORSE, Direction.LOWER_IS_WORSE

# Workload figures (the stack's run JSON: `simulated` and the per-op profile sums).
register("total_cycles", D, UP, "cycles", "simulated cycles of one inference")
register("latency_us", D, UP, "us", "simulated latency at the SKU's clock")
register("throughput_per_s", D, DOWN, "1/s", "batch / latency at the clock")
register("peak_device_bytes", D, UP, "bytes", "peak device memory")
register("macs", D, UP, "MACs", "multiply-accumulates, summed over the op profile")
register("bytes_moved", D, UP, "bytes", "bytes read plus written, summed over the op profile")
register("ops", D, UP, "ops", "launches in the plan: more means less fusion")
register("max_abs_error", D, UP, "", "largest error against onnxruntime")
# Counts from the conformance and opslib jobs.
register("conformance_passed", D, DOWN, "cases", "ONNX backend cases passed")
register("conformance_total", D, DOWN, "cases", "ONNX backend cases run")
register("conformance_*", D, UP, "cases", "failures of one class")
register("opslib_*", D, DOWN, "", "opslib size: kernels, variants, tile configurations")
register("tests_passed", D, DOWN, "tests")
register("tests_*", D, UP, "tests", "failed or skipped module tests")
# Wall-clock figures: the machine's load is in them.
register("compile_s", W, UP, "s", "compile time")
register("run_s", W, UP, "s", "first functional run, engine build included")
register("warm_run_s", W, UP, "s", "fastest warm functional run")
register("reference_s", W, UP, "s", "onnxruntime's warm run: the machine, not the stack")
register("speed_ratio", W, UP, "x", "stack time over onnxruntime time")
register("duration_s", W, UP, "s", "a job's duration")
register(OUTCOME_METRIC, Kind.OUTCOME, UP, "", "the job's status")
