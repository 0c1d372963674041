"""Hardware SKUs as data: one YAML file per part, validated into a frozen `SKU`.

Every field is checked on load; a problem is one line naming the file (or override) and the
field, because SKU files are edited by hand by the architecture team.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import InvalidSKU, UnknownSKU

DATAFLOWS = ("os", "ws", "is")
LAYOUTS = ("NCHW", "NHWC")
# Bytes per element of each precision the model knows; a SKU may offer a subset.
PRECISION_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}

_SIZE_UNITS = {"": 1, "B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "KB": 10**3,
               "MB": 10**6, "GB": 10**9}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?\s*$")


# The cost model computes in numpy's int64 and float64: a field must fit both.
_INT_LIMIT = 2**63


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < _INT_LIMIT:
        raise ValueError("a positive integer below 2**63")
    return value


def _finite(value: Any) -> bool:
    # YAML spells infinity and NaN (.inf, .nan); a clock or a bandwidth can be neither.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return abs(value) < _INT_LIMIT if isinstance(value, int) else math.isfinite(value)


def _positive_number(value: Any) -> float:
    if not _finite(value) or value <= 0:
        raise ValueError("a positive finite number")
    return float(value)


def _non_negative_number(value: Any) -> float:
    if not _finite(value) or value < 0:
        raise ValueError("a non-negative finite number")
    return float(value)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a non-empty string")
    return value


def _size(value: Any) -> int:
    """Bytes, as an integer or a string such as "24 MiB" (SKU files are read by people)."""
    if isinstance(value, str):
        match = _SIZE_RE.match(value)
        if match:
            value = float(match.group(1)) * _SIZE_UNITS[match.group(2) or ""]
            if value == int(value):
                value = int(value)
    try:
        return _positive_int(value)
    except ValueError:
        raise ValueError("a positive byte count (an integer or e.g. '24 MiB')") from None


def _choice(options: tuple[str, ...]):
    def check(value: Any) -> str:
        if isinstance(value, str) and value.lower() in {o.lower() for o in options}:
            return next(o for o in options if o.lower() == value.lower())
        raise ValueError("one of " + ", ".join(options))
    return check


def _precisions(value: Any) -> dict[str, int]:
    expected = f"a mapping of precision ({', '.join(PRECISION_BYTES)}) to a positive integer multiplier"
    if not isinstance(value, dict) or not value:
        raise ValueError(expected)
    checked = {}
    for name, multiplier in value.items():
        if name not in PRECISION_BYTES:
            raise ValueError(f"{expected}; unknown precision {name!r}")
        try:
            checked[name] = _positive_int(multiplier)
        except ValueError:
            raise ValueError(f"{expected}; got {multiplier!r} for {name}") from None
    return checked


_VALIDATORS = {
    "name": _text,
    "description": _text,
    "clock_ghz": _positive_number,
    "cores": _positive_int,
    "array_rows": _positive_int,
    "array_cols": _positive_int,
    "dataflow": _choice(DATAFLOWS),
    "sram_bytes": _size,
    "dram_bandwidth_gbps": _positive_number,
    "dram_latency_ns": _non_negative_number,
    "vector_lanes": _positive_int,
    "host_link_gbps": _positive_number,
    "device_memory_bytes": _size,
    "precisions": _precisions,
    "layout": _choice(LAYOUTS),
}


@dataclass(frozen=True)
class SKU:
    """One hardware part. Sizes in bytes, bandwidths in GB/s (10^9 bytes per second)."""

    name: str
    description: str
    clock_ghz: float
    cores: int
    array_rows: int
    array_cols: int
    dataflow: str
    sram_bytes: int
    dram_bandwidth_gbps: float
    dram_latency_ns: float
    vector_lanes: int
    host_link_gbps: float
    device_memory_bytes: int
    precisions: dict[str, int]
    layout: str

    # The dict field makes the generated hash fail; hash the canonical JSON instead so SKUs can
    # key caches of the cost model.
    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    @classmethod
    def from_dict(cls, data: Any, *, source: str) -> SKU:
        """Validate a mapping of fields; errors name `source` and the field."""
        if not isinstance(data, dict):
            raise InvalidSKU(f"{source}: expected a mapping of SKU fields, got {type(data).__name__}")
        unknown = sorted(set(data) - set(_VALIDATORS))
        if unknown:
            raise InvalidSKU(f"{source}: unknown field {unknown[0]!r} "
                             f"(known fields: {', '.join(_VALIDATORS)})")
        fields = {}
        for field, validate in _VALIDATORS.items():
            if field not in data:
                raise InvalidSKU(f"{source}: missing field {field!r}")
            try:
                fields[field] = validate(data[field])
            except ValueError as expected:
                raise InvalidSKU(f"{source}: field {field!r} must be {expected}, "
                                 f"got {data[field]!r}") from None
        return cls(**fields)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (dict(v) if isinstance(v := getattr(self, f.name), dict) else v)
                for f in dataclasses.fields(self)}

    def with_overrides(self, **fields: Any) -> SKU:
        """A copy with some fields replaced, validated like a SKU file."""
        return SKU.from_dict({**self.to_dict(), **fields}, source=f"overrides of {self.name}")

    def element_bytes(self, precision: str) -> int:
        self.multiplier(precision)
        return PRECISION_BYTES[precision]

    def multiplier(self, precision: str) -> int:
        """MACs per PE (and vector ops per lane) per cycle at `precision`, relative to fp32."""
        try:
            return self.precisions[precision]
        except KeyError:
            raise InvalidSKU(f"SKU {self.name} does not support precision {precision!r} "
                             f"(supported: {', '.join(self.precisions)})") from None

    def peak_tops(self, precision: str = "fp32") -> float:
        """Peak array throughput in tera-operations per second (a MAC counts as two)."""
        macs_per_cycle = self.array_rows * self.array_cols * self.cores * self.multiplier(precision)
        return 2 * macs_per_cycle * self.clock_ghz / 1e3

    @property
    def dram_bytes_per_cycle(self) -> float:
        return self.dram_bandwidth_gbps / self.clock_ghz

    @property
    def host_bytes_per_cycle(self) -> float:
        return self.host_link_gbps / self.clock_ghz


def _sku_dir():
    return resources.files(__package__) / "skus"


def _read_yaml(path, source: str) -> SKU:
    """Any bytes give a SKU or one InvalidSKU line naming `source` (the loader is total)."""
    try:
        raw = path.read_bytes()
    except OSError as problem:
        raise InvalidSKU(f"{source}: cannot be read ({problem.strerror or problem})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as problem:
        raise InvalidSKU(f"{source}: not UTF-8 text (byte {problem.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as problem:
        first_line = str(problem).splitlines()[0] if str(problem) else "invalid YAML"
        raise InvalidSKU(f"{source}: not valid YAML ({first_line})") from None
    except RecursionError:
        raise InvalidSKU(f"{source}: not valid YAML (nested too deeply)") from None
    return SKU.from_dict(data, source=source)


def list_skus() -> list[SKU]:
    """Every SKU shipped with the driver, sorted by name."""
    files = sorted(p for p in _sku_dir().iterdir() if p.name.endswith(".yaml"))
    return [_read_yaml(p, str(p)) for p in files]


def load_sku(name_or_path: str | Path | SKU) -> SKU:
    """A shipped SKU by name (e.g. "npu-edge") or a SKU YAML file by path."""
    if isinstance(name_or_path, SKU):
        return name_or_path
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        if not candidate.is_file():
            raise UnknownSKU(f"SKU file {candidate} does not exist")
        return _read_yaml(candidate, str(candidate))
    shipped = _sku_dir() / f"{name_or_path}.yaml"
    if not shipped.is_file():
        known = ", ".join(s.name for s in list_skus())
        raise UnknownSKU(f"unknown SKU {str(name_or_path)!r} (known SKUs: {known})")
    return _read_yaml(shipped, str(shipped))
