"""The model suite's manifest (`workloads/suite.yaml`): workloads, tiers, tolerances, what
each needs, and the conformance job. Every problem names the file and the field."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from stackci.documents import load_yaml, one_line
from stackci.errors import UsageError
from stackci.workloads import declared
from stackci.workloads.generators import transformers

# Nested: each tier runs everything of the ones before. `real` adds the real models from PyPI
# wheels to the smoke tier, and is kept out of smoke for its downloads and compile times.
TIERS = ("smoke", "real", "nightly", "weekly")

PRECISIONS = ("fp32", "fp16", "bf16", "int8")

SUITE_KEYS = {"defaults", "workloads", "conformance"}

CONFORMANCE_KEYS = {"floor", "sku", "tiers"}

DEFAULT_KEYS = {"seed", "skus", "precision", "batch", "tolerance", "precision_requires",
                "latency_bound_ms"}

WORKLOAD_KEYS = {"name", "source", "description", "tiers", "tolerance", "seed", "skus", "requires",
                 "precision", "precisions", "batch", "expect", "latency_bound_ms", "member",
                 "sha256", "inputs"}

EXPECTABLE_KINDS = declared.EXPECTABLE_KINDS

# A tolerance: atol/rtol (np.allclose against onnxruntime), or cosine (the least cosine
# similarity of each output to onnxruntime's, for int8). Per precision: a sub-mapping under
# the precision's name overrides the plain keys for that precision.
TOLERANCE_KEYS = {"atol", "rtol", "cosine"}

BUILTIN_DEFAULTS = {"seed": 0, "skus": ["npu-edge", "npu-dc"], "precision": "fp32", "batch": 1,
                    "tolerance": {"atol": 1e-4, "rtol": 1e-3}}


@dataclass(frozen=True)
class Workload:
    name: str
    source: str
    tiers: tuple[str, ...]
    skus: tuple[str, ...]
    precision: str
    seed: int
    atol: float
    rtol: float
    batch: int
    description: str = ""
    suite_dir: Path | None = None  # where `file:` sources are relative to
    min_cosine: float | None = None  # when set, outputs match by cosine similarity instead
    model: str = ""  # the workload whose model this one shares (a variant in precision)
    # SKU -> the failure kind this workload is known to end with there (e.g. a model larger
    # than the SKU's device memory): that outcome is a pass, and anything else is news.
    expect: tuple[tuple[str, str], ...] = ()
    # Interface versions the combination must provide for this workload to apply at all
    # (e.g. int8 needs a compiler that lowers precision): interface -> PEP 440 specifier.
    requires: tuple[tuple[str, str], ...] = ()
    # The Server scenario's latency bound of the batch sweet spot (MLPerf style), per model:
    # the analysis stage's best batch is the most throughput within it.
    latency_bound_ms: float | None = None
    member: str = ""  # a pypi: source's model file, its path inside the wheel
    sha256: str = ""  # ... and that file's sha256
    inputs: tuple[declared.InputSpec, ...] = ()  # declared shapes and value ranges

    def expected_failure(self, sku: str) -> str | None:
        """The failure kind expected on `sku` (its first word: `unsupported-operator
        com.microsoft.X` names the operator too)."""
        expectation = dict(self.expect).get(sku)
        return expectation.split()[0] if expectation else None

    def expects(self, sku: str, kind: str, message: str) -> bool:
        """Whether a failure of `kind` saying `message` is the one expected on `sku`: the kind,
        and the operator the expectation names (if it names one) in the message."""
        expectation = dict(self.expect).get(sku)
        if not expectation:
            return False
        wanted, _, operator = expectation.partition(" ")
        return kind == wanted and (not operator or operator.strip() in message)

    def in_tier(self, tier: str) -> bool:
        return min(TIERS.index(t) for t in self.tiers) <= TIERS.index(tier)

    def to_dict(self) -> dict:
        tolerance = {"atol": self.atol, "rtol": self.rtol}
        if self.min_cosine is not None:
            tolerance["cosine"] = self.min_cosine
        return {"name": self.name, "source": self.source, "description": self.description,
                "tiers": list(self.tiers), "skus": list(self.skus), "precision": self.precision,
                "seed": self.seed, "batch": self.batch, "tolerance": tolerance,
                "expect": dict(self.expect), "latency_bound_ms": self.latency_bound_ms}

    def to_record(self) -> dict:
        """Every field, as JSON: how a stored plan keeps the workload (to_dict is the listing)."""
        return {**{f.name: getattr(self, f.name) for f in fields(self)},
                "tiers": list(self.tiers), "skus": list(self.skus),
                "suite_dir": str(self.suite_dir) if self.suite_dir else None,
                "expect": [list(pair) for pair in self.expect],
                "requires": [list(pair) for pair in self.requires],
                "inputs": [[n, list(shape), low, high] for n, shape, low, high in self.inputs]}

    @classmethod
    def from_record(cls, data: dict) -> "Workload":
        return cls(**{**data, "tiers": tuple(data["tiers"]), "skus": tuple(data["skus"]),
                      "suite_dir": Path(data["suite_dir"]) if data.get("suite_dir") else None,
                      "expect": tuple(tuple(pair) for pair in data.get("expect", ())),
                      "requires": tuple(tuple(pair) for pair in data.get("requires", ())),
                      "inputs": tuple((n, tuple(shape), low, high)
                                      for n, shape, low, high in data.get("inputs", ()))})


@dataclass(frozen=True)
class Conformance:
    """The ONNX backend node suite as a nightly job: on which SKU, in which tiers, and the
    least number of passing cases below which the job fails."""

    floor: int
    sku: str
    tiers: tuple[str, ...]

    def in_tier(self, tier: str) -> bool:
        return min(TIERS.index(t) for t in self.tiers) <= TIERS.index(tier)

    def to_record(self) -> dict:
        return {"floor": self.floor, "sku": self.sku, "tiers": list(self.tiers)}

    @classmethod
    def from_record(cls, data: dict) -> "Conformance":
        return cls(floor=data["floor"], sku=data["sku"], tiers=tuple(data["tiers"]))


@dataclass(frozen=True)
class Suite:
    path: Path
    workloads: tuple[Workload, ...]
    conformance: Conformance | None = None

    def names(self) -> list[str]:
        return [w.name for w in self.workloads]

    def get(self, name: str) -> Workload:
        for workload in self.workloads:
            if workload.name == name:
                return workload
        raise UsageError(f"{self.path}: no workload named {name!r} "
                         f"(known: {', '.join(self.names())})")

    def select(self, tier: str | None, names=None) -> list[Workload]:
        """The workloads of `tier` (all if None), restricted to `names` if given, suite order."""
        if tier is not None and tier not in TIERS:
            raise UsageError(f"unknown tier {tier!r} (expected one of: {', '.join(TIERS)})")
        chosen = [w for w in self.workloads if tier is None or w.in_tier(tier)]
        if names:
            wanted = [self.get(name).name for name in names]
            chosen = [w for w in chosen if w.name in wanted]
        return chosen


def default_suite_path() -> Path:
    from stackci.workspace import find_repo_root

    return find_repo_root() / "workloads" / "suite.yaml"


def load_suite(path: str | Path | None = None) -> Suite:
    """Read and validate the suite manifest; every problem names the file and the field."""
    path = Path(path) if path is not None else default_suite_path()
    if not path.exists():
        raise UsageError(f"suite manifest not found: {path}")
    document = load_yaml(path)
    if not isinstance(document, dict):
        raise UsageError(f"{path}: expected a mapping with 'defaults' and 'workloads'")
    _check_keys(path, "", document, SUITE_KEYS)
    defaults = {**BUILTIN_DEFAULTS, **_mapping(path, "defaults", document.get("defaults", {}))}
    _check_keys(path, "defaults.", defaults, DEFAULT_KEYS)
    entries = document.get("workloads")
    if not isinstance(entries, list) or not entries:
        raise UsageError(f"{path}: 'workloads' must be a non-empty list")
    workloads, seen = [], set()
    for index, entry in enumerate(entries):
        for workload in _parse_workloads(path, index, entry, defaults):
            if workload.name in seen:
                raise UsageError(f"{path}: workloads[{index}].name: "
                                 f"duplicate workload {workload.name!r}")
            seen.add(workload.name)
            workloads.append(workload)
    conformance = (_parse_conformance(path, document["conformance"], defaults)
                   if "conformance" in document else None)
    return Suite(path=path, workloads=tuple(workloads), conformance=conformance)


def _parse_conformance(path: Path, value, defaults: dict) -> Conformance:
    entry = _mapping(path, "conformance", value)
    _check_keys(path, "conformance.", entry, CONFORMANCE_KEYS)
    if "floor" not in entry:
        raise UsageError(f"{path}: conformance.floor: missing (the least number of node "
                         "cases that must pass)")
    floor = _number(path, "conformance.floor", entry["floor"], int, minimum=0)
    sku = entry.get("sku", (defaults.get("skus") or ["npu-dc"])[-1])
    if not isinstance(sku, str) or not sku:
        raise UsageError(f"{path}: conformance.sku: expected a SKU name, got {sku!r}")
    tiers = entry.get("tiers", ["nightly"])
    if not isinstance(tiers, list) or not tiers or any(t not in TIERS for t in tiers):
        raise UsageError(f"{path}: conformance.tiers: expected a non-empty list of "
                         f"{', '.join(TIERS)}, got {tiers!r}")
    return Conformance(floor=floor, sku=sku, tiers=tuple(tiers))


def _parse_workloads(path: Path, index: int, entry, defaults: dict) -> list[Workload]:
    """One workload per precision of the entry: `precisions: [fp32, int8]` gives `<name>` at
    the first and `<name>-int8` at the next (same model, inputs and reference), each with
    the tolerance for its precision."""
    base = _parse_workload(path, index, entry, defaults)
    precisions = entry.get("precisions") if isinstance(entry, dict) else None
    if precisions is None:
        return [base]
    where = f"workloads[{index}] ({base.name}).precisions"
    if not isinstance(precisions, list) or not precisions or len(set(precisions)) != len(
            precisions):
        raise UsageError(f"{path}: {where}: expected a non-empty list of distinct precisions")
    if "precision" in entry:
        raise UsageError(f"{path}: {where}: give either precision or precisions, not both")
    variants = []
    for position, precision in enumerate(precisions):
        if precision not in PRECISIONS:
            raise UsageError(f"{path}: {where}: unknown precision {precision!r} "
                             f"(expected one of: {', '.join(PRECISIONS)})")
        name = base.name if position == 0 else f"{base.name}-{precision}"
        variant = _parse_workload(path, index, {**entry, "name": name, "precision": precision},
                                  defaults, precision_list=True)
        variants.append(replace(variant, model=base.name))
    return variants


def _tolerance(path: Path, where: str, defaults: dict, entry: dict, precision: str) -> dict:
    """atol/rtol/cosine for `precision`: built-in, suite defaults, the entry's plain keys,
    then the per-precision sub-mappings of the defaults and of the entry."""
    merged: dict = dict(BUILTIN_DEFAULTS["tolerance"])
    for label, mapping in (("defaults.tolerance", defaults["tolerance"]),
                           (f"{where}.tolerance", entry.get("tolerance", {}))):
        mapping = _mapping(path, label, mapping)
        merged.update({k: v for k, v in mapping.items() if k not in PRECISIONS})
    for label, mapping in (("defaults.tolerance", defaults["tolerance"]),
                           (f"{where}.tolerance", entry.get("tolerance", {}))):
        specific = mapping.get(precision)
        if specific is not None:
            merged.update(_mapping(path, f"{label}.{precision}", specific))
    for label, mapping in (("defaults.tolerance", defaults["tolerance"]),
                           (f"{where}.tolerance", entry.get("tolerance", {}))):
        for key, value in mapping.items():
            if key in PRECISIONS:
                _check_keys(path, f"{label}.{key}.", _mapping(path, f"{label}.{key}", value),
                            TOLERANCE_KEYS)
    _check_keys(path, f"{where}.tolerance.", merged, TOLERANCE_KEYS | set(PRECISIONS))
    return merged


def _parse_workload(path: Path, index: int, entry, defaults: dict, *,
                    precision_list: bool = False) -> Workload:
    where = f"workloads[{index}]"
    entry = _mapping(path, where, entry)
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise UsageError(f"{path}: {where}.name: missing or not a string")
    where = f"workloads[{index}] ({name})"
    _check_keys(path, f"{where}.", entry, WORKLOAD_KEYS)
    if precision_list:
        entry = {k: v for k, v in entry.items() if k != "precisions"}
    source = entry.get("source")
    if not isinstance(source, str) or not source:
        raise UsageError(f"{path}: {where}.source: missing (expected e.g. onnx-light:squeezenet)")
    _check_source(path, where, source)
    if source.startswith("pypi:"):
        declared.check_pypi_source(path, where, source, entry)
    else:
        declared.check_not_pypi(path, where, entry)
    tiers = entry.get("tiers")
    if not isinstance(tiers, list) or not tiers:
        raise UsageError(f"{path}: {where}.tiers: expected a non-empty list of {', '.join(TIERS)}")
    for tier in tiers:
        if tier not in TIERS:
            raise UsageError(f"{path}: {where}.tiers: unknown tier {tier!r} "
                             f"(expected one of: {', '.join(TIERS)})")
    merged = {**defaults, **entry}
    if "precisions" in entry and "precision" not in entry:
        first = entry["precisions"][0] if isinstance(entry["precisions"], list) and \
            entry["precisions"] else merged["precision"]
        merged["precision"] = first
    tolerance = _tolerance(path, where, defaults, entry, merged["precision"])
    skus = merged["skus"]
    if not isinstance(skus, list) or not skus or not all(isinstance(s, str) for s in skus):
        raise UsageError(f"{path}: {where}.skus: expected a non-empty list of SKU names")
    if merged["precision"] not in PRECISIONS:
        raise UsageError(f"{path}: {where}.precision: unknown precision {merged['precision']!r} "
                         f"(expected one of: {', '.join(PRECISIONS)})")
    return Workload(
        name=name, source=source, tiers=tuple(tiers), skus=tuple(skus),
        precision=merged["precision"],
        seed=_number(path, f"{where}.seed", merged["seed"], int, minimum=0),
        atol=_number(path, f"{where}.tolerance.atol", tolerance["atol"], float, minimum=0),
        rtol=_number(path, f"{where}.tolerance.rtol", tolerance["rtol"], float, minimum=0),
        batch=_number(path, f"{where}.batch", merged["batch"], int, minimum=1),
        description=str(entry.get("description", "")),
        suite_dir=path.parent,
        min_cosine=None if "cosine" not in tolerance else _number(
            path, f"{where}.tolerance.cosine", tolerance["cosine"], float, minimum=-1),
        expect=declared.expectations(path, where, entry.get("expect", {}), skus),
        requires=_requirements(path, where, defaults, entry, merged["precision"]),
        latency_bound_ms=_latency_bound(path, where, merged.get("latency_bound_ms")),
        member=entry.get("member", ""), sha256=entry.get("sha256", ""),
        inputs=declared.parse_inputs(path, where, entry.get("inputs")),
    )


def _latency_bound(path: Path, where: str, value) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
            or value == float("inf"):
        raise UsageError(f"{path}: {where}.latency_bound_ms: expected a positive number of "
                         f"milliseconds, got {value!r}")
    return float(value)


def _requirements(path: Path, where: str, defaults: dict, entry: dict,
                  precision: str) -> tuple[tuple[str, str], ...]:
    """The entry's `requires` plus the suite's `precision_requires` for its precision."""
    by_precision = _mapping(path, "defaults.precision_requires",
                            defaults.get("precision_requires", {}))
    sources = ((f"defaults.precision_requires.{precision}", by_precision.get(precision, {})),
               (f"{where}.requires", entry.get("requires", {})))
    requires: dict[str, str] = {}
    for label, mapping in sources:
        for interface, specifier in _mapping(path, label, mapping).items():
            try:
                SpecifierSet(str(specifier))
            except InvalidSpecifier:
                raise UsageError(f"{path}: {label}.{interface}: {specifier!r} is not a PEP 440 "
                                 "specifier (expected e.g. '>=1.1,<2')") from None
            requires[str(interface)] = str(specifier)
    return tuple(sorted(requires.items()))


def _check_source(path: Path, where: str, source: str) -> None:
    kind, _, rest = source.partition(":")
    if kind == "onnx-light" and rest:
        return
    if kind in ("file", "pypi") and rest:
        return
    if kind == "builtin" and rest:
        try:
            transformers.parse_source(rest)
        except ValueError as exc:
            raise UsageError(f"{path}: {where}.source: {source}: {exc}") from None
        return
    raise UsageError(f"{path}: {where}.source: unknown source {source!r} "
                     "(expected onnx-light:<name>, file:<path>, pypi:<package>==<version> or "
                     "builtin:<model>?<params>)")


def _mapping(path: Path, where: str, value) -> dict:
    if not isinstance(value, dict):
        raise UsageError(f"{path}: {where}: expected a mapping, got {type(value).__name__}")
    return value


def _check_keys(path: Path, prefix: str, mapping: dict, allowed: set[str]) -> None:
    unknown = sorted(one_line(key, 60) for key in mapping if key not in allowed)
    if unknown:
        raise UsageError(f"{path}: {prefix}{unknown[0]}: unknown key "
                         f"(expected: {', '.join(sorted(allowed))})")


def _number(path: Path, where: str, value, kind, *, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            kind is int and not isinstance(value, int)):
        expected = "an integer" if kind is int else "a number"
        raise UsageError(f"{path}: {where}: expected {expected}, "
                         f"got {value!r}")
    if value < minimum:
        raise UsageError(f"{path}: {where}: must be >= {minimum}, got {value!r}")
    return kind(value)
