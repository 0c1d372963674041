"""The model suite (`workloads/suite.yaml`) and the preparation of each workload.

Preparing a workload gives the stack something worth checking: the onnx package's "light"
model-zoo topologies carry their large weights as `ConstantOfShape(0.02)`, so every output is a
constant. Those weights become seeded random initializers (scaled for the operator that consumes
them), and the expected outputs come from onnxruntime on seeded random inputs. Everything is
cached under `<cache>/models/` by name, seed and content hash.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version
from onnx import numpy_helper

from stackci import reference
from stackci.errors import UsageError

TIERS = ("smoke", "nightly", "weekly")  # nested: each tier runs everything of the ones before
PRECISIONS = ("fp32", "fp16", "bf16", "int8")

SUITE_KEYS = {"defaults", "workloads", "conformance"}
CONFORMANCE_KEYS = {"floor", "sku", "tiers"}
DEFAULT_KEYS = {"seed", "skus", "precision", "batch", "tolerance", "precision_requires"}
WORKLOAD_KEYS = {"name", "source", "description", "tiers", "tolerance", "seed", "skus", "requires",
                 "precision", "precisions", "batch", "expect"}
# Failure kinds a workload may be expected to end with on a SKU (the stack's own kinds).
EXPECTABLE_KINDS = ("out-of-memory", "unsupported-operator")
# A tolerance: atol/rtol (np.allclose against onnxruntime), or cosine (the least cosine
# similarity of each output to onnxruntime's, for int8). Per precision: a sub-mapping under
# the precision's name overrides the plain keys for that precision.
TOLERANCE_KEYS = {"atol", "rtol", "cosine"}
BUILTIN_DEFAULTS = {"seed": 0, "skus": ["npu-edge", "npu-dc"], "precision": "fp32", "batch": 1,
                    "tolerance": {"atol": 1e-4, "rtol": 1e-3}}

# Bump when the weight randomizer changes: it is part of every prepared model's cache key.
RANDOMIZER_VERSION = "2"


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

    def expected_failure(self, sku: str) -> str | None:
        return dict(self.expect).get(sku)

    def unmet_requirements(self, provided: dict[str, str]) -> list[str]:
        """What the combination providing `provided` (interface -> version) lacks, one line
        per requirement; empty when the workload applies."""
        return unmet_requirements(self.requires, provided)

    def in_tier(self, tier: str) -> bool:
        return min(TIERS.index(t) for t in self.tiers) <= TIERS.index(tier)

    def to_dict(self) -> dict:
        tolerance = {"atol": self.atol, "rtol": self.rtol}
        if self.min_cosine is not None:
            tolerance["cosine"] = self.min_cosine
        return {"name": self.name, "source": self.source, "description": self.description,
                "tiers": list(self.tiers), "skus": list(self.skus), "precision": self.precision,
                "seed": self.seed, "batch": self.batch, "tolerance": tolerance,
                "expect": dict(self.expect)}


def unmet_requirements(requires, provided: dict[str, str]) -> list[str]:
    """Which of `requires` ((interface, PEP 440 specifier) pairs) a combination providing
    `provided` (interface -> version) lacks, one line each."""
    unmet = []
    for interface, specifier in requires:
        version = provided.get(interface)
        if version is None or Version(version) not in SpecifierSet(specifier):
            have = f"provides {version}" if version else "does not provide it"
            unmet.append(f"needs {interface} {specifier}; the combination {have}")
    return unmet


@dataclass(frozen=True)
class Conformance:
    """The ONNX backend node suite as a nightly job: on which SKU, in which tiers, and the
    least number of passing cases below which the job fails."""

    floor: int
    sku: str
    tiers: tuple[str, ...]

    def in_tier(self, tier: str) -> bool:
        return min(TIERS.index(t) for t in self.tiers) <= TIERS.index(tier)


@dataclass(frozen=True)
class PreparedWorkload:
    model_path: Path
    inputs_path: Path
    expected_path: Path
    workload: Workload | None = None

    def inputs(self) -> dict[str, np.ndarray]:
        return load_npz(self.inputs_path)

    def expected(self) -> dict[str, np.ndarray]:
        return load_npz(self.expected_path)


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


# --- the manifest -----------------------------------------------------------------------------

def default_suite_path() -> Path:
    from stackci.workspace import find_repo_root

    return find_repo_root() / "workloads" / "suite.yaml"


def load_suite(path: str | Path | None = None) -> Suite:
    """Read and validate the suite manifest; every problem names the file and the field."""
    path = Path(path) if path is not None else default_suite_path()
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"suite manifest not found: {path}")
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML ({' '.join(str(exc).split())})")
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
        expect=_expectations(path, where, entry.get("expect", {}), skus),
        requires=_requirements(path, where, defaults, entry, merged["precision"]),
    )


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


def _expectations(path: Path, where: str, value, skus: list[str]) -> tuple[tuple[str, str], ...]:
    expect = _mapping(path, f"{where}.expect", value)
    for sku, kind in expect.items():
        if sku not in skus:
            raise UsageError(f"{path}: {where}.expect: SKU {sku!r} is not among the workload's "
                             f"skus ({', '.join(skus)})")
        if kind not in EXPECTABLE_KINDS:
            raise UsageError(f"{path}: {where}.expect.{sku}: unknown failure kind {kind!r} "
                             f"(expected one of: {', '.join(EXPECTABLE_KINDS)})")
    return tuple(sorted(expect.items()))


def _check_source(path: Path, where: str, source: str) -> None:
    kind, _, rest = source.partition(":")
    if kind == "onnx-light" and rest:
        return
    if kind == "file" and rest:
        return
    if kind == "builtin" and rest:
        from stackci import transformers

        try:
            transformers.parse_source(rest)
        except ValueError as exc:
            raise UsageError(f"{path}: {where}.source: {source}: {exc}") from None
        return
    raise UsageError(f"{path}: {where}.source: unknown source {source!r} "
                     "(expected onnx-light:<name>, file:<path> or builtin:<model>?<params>)")


def _mapping(path: Path, where: str, value) -> dict:
    if not isinstance(value, dict):
        raise UsageError(f"{path}: {where}: expected a mapping, got {type(value).__name__}")
    return value


def _check_keys(path: Path, prefix: str, mapping: dict, allowed: set[str]) -> None:
    unknown = sorted(set(mapping) - allowed)
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


# --- sources ----------------------------------------------------------------------------------

def light_models_dir() -> Path:
    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def light_model_names() -> list[str]:
    """Names of the light models the installed onnx package ships."""
    return sorted(path.stem[len("light_"):] for path in light_models_dir().glob("light_*.onnx"))


def light_model_path(name: str) -> Path:
    """`light_<name>.onnx` shipped in the onnx package's backend test data."""
    path = light_models_dir() / f"light_{name}.onnx"
    if not path.is_file():
        raise UsageError(f"onnx-light:{name}: no such model in the onnx package "
                         f"(known: {', '.join(light_model_names())})")
    return path


def source_path(workload: Workload) -> Path:
    kind, _, rest = workload.source.partition(":")
    if kind == "builtin":
        raise UsageError(f"workload {workload.name}: {workload.source} is built in code, "
                         "it has no source file (use prepare)")
    if kind == "onnx-light":
        return light_model_path(rest)
    path = Path(rest)
    if not path.is_absolute() and workload.suite_dir is not None:
        path = workload.suite_dir / path
    if not path.is_file():
        raise UsageError(f"workload {workload.name}: source model not found: {path}")
    return path


# --- preparation ------------------------------------------------------------------------------

def prepare(ws, workload: Workload, *, progress: Callable[[str], None] | None = None
            ) -> PreparedWorkload:
    """Randomized model, seeded inputs and onnxruntime's outputs for `workload`, cached.
    Built-in sources (transformers) are generated with their own seeded weights."""
    kind, _, spec = workload.source.partition(":")
    builtin = kind == "builtin"
    if builtin:
        from stackci import transformers

        content = hashlib.sha256(f"{workload.source};{transformers.GENERATOR_VERSION}".encode())
    else:
        source = source_path(workload)
        content = hashlib.sha256(source.read_bytes())
    content.update(f"randomizer={RANDOMIZER_VERSION};batch={workload.batch}".encode())
    # Precision variants of a workload share its model, inputs and reference outputs.
    stem = f"{workload.model or workload.name}-{workload.seed}-{content.hexdigest()[:16]}"
    directory = ws.cache / "models"
    directory.mkdir(parents=True, exist_ok=True)
    prepared = PreparedWorkload(directory / f"{stem}.onnx", directory / f"{stem}.inputs.npz",
                                directory / f"{stem}.expected.npz", workload)
    note = progress or (lambda message: None)
    if not prepared.model_path.exists() and builtin:
        note(f"{workload.name}: building {spec}")
        model = transformers.build_source(spec)
        _atomic_write(prepared.model_path, lambda f: f.write(model.SerializeToString()))
        del model
    if not prepared.model_path.exists():
        note(f"{workload.name}: randomizing weights")
        model = reference.load_model(source)
        if randomize_weights(model, workload.seed):
            calibrate_logits(model, workload.seed, workload.batch)
        _atomic_write(prepared.model_path, lambda f: f.write(model.SerializeToString()))
        del model
    if not prepared.inputs_path.exists():
        note(f"{workload.name}: generating inputs")
        inputs = reference.random_inputs(prepared.model_path, workload.seed, batch=workload.batch)
        save_npz(prepared.inputs_path, inputs)
    if not prepared.expected_path.exists():
        note(f"{workload.name}: computing reference outputs")
        outputs = reference.reference_outputs(prepared.model_path, prepared.inputs())
        save_npz(prepared.expected_path, outputs)
    return prepared


def randomize_weights(model: onnx.ModelProto, seed: int) -> int:
    """Replace each float `ConstantOfShape` of a constant shape by a seeded random initializer.

    Returns how many were replaced. Each tensor's values depend only on (seed, tensor name), so
    they do not change when unrelated parts of the graph do.
    """
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    consumers = _consumers(graph)
    replaced, keep = 0, []
    for node in graph.node:
        shape = _constant_shape(node, initializers)
        if shape is None:
            keep.append(node)
            continue
        role, fan_in = _role(node.output[0], shape, consumers)
        tensor = numpy_helper.from_array(_random_weight(seed, node.output[0], shape, role, fan_in),
                                         node.output[0])
        graph.initializer.append(tensor)
        replaced += 1
    if replaced:
        del graph.node[:]
        graph.node.extend(keep)
        _drop_initializer_inputs(graph)  # first: they name the shape initializers dropped next
        _drop_unused_initializers(graph)
        # IR 3 requires every initializer to be a graph input; from IR 4 on they need not be.
        model.ir_version = max(model.ir_version, 4)
    return replaced


def _constant_shape(node: onnx.NodeProto, initializers: dict) -> tuple[int, ...] | None:
    """The shape a floating-point ConstantOfShape fills, if it is a constant; else None."""
    if node.op_type != "ConstantOfShape" or not node.input or node.input[0] not in initializers:
        return None
    value = next((a.t for a in node.attribute if a.name == "value"), None)
    if value is not None and value.data_type not in (onnx.TensorProto.FLOAT,):
        return None
    return tuple(int(d) for d in numpy_helper.to_array(initializers[node.input[0]]))


# Ops a weight passes through unchanged in meaning on its way to the op that uses it.
_PASS_THROUGH = {"Unsqueeze", "Reshape", "Squeeze", "Flatten", "Identity", "Cast", "Transpose"}


def _consumers(graph) -> dict[str, list[tuple[onnx.NodeProto, int]]]:
    found: dict[str, list] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            found.setdefault(name, []).append((node, index))
    return found


def _role(name: str, shape: tuple[int, ...], consumers) -> tuple[str, int]:
    """What the tensor is to the first op that uses it (following pass-through ops), and its
    fan-in where that matters."""
    for _ in range(8):
        uses = consumers.get(name, [])
        if not uses:
            return "other", 1
        node, index = uses[0]
        if node.op_type in _PASS_THROUGH and index == 0:
            name = node.output[0]
            continue
        return _role_at(node, index, shape)
    return "other", 1


def _role_at(node: onnx.NodeProto, index: int, shape: tuple[int, ...]) -> tuple[str, int]:
    op = node.op_type
    if op in ("Conv", "ConvTranspose"):
        return ("weight", int(np.prod(shape[1:]))) if index == 1 else ("bias", 1)
    if op == "Gemm":
        if index == 2:
            return "bias", 1
        flag = "transB" if index == 1 else "transA"
        trans = next((a.i for a in node.attribute if a.name == flag), 0)
        if index == 1 and trans:
            return "weight", int(np.prod(shape[1:]))  # (N, K...): Caffe2's FC layout
        return "weight", int(shape[0] if index == 1 else np.prod(shape[:-1]) or 1)
    if op == "MatMul":
        return "weight", int(shape[-2] if len(shape) >= 2 else shape[0])
    if op == "BatchNormalization":
        roles = {1: "scale", 2: "shift", 3: "mean", 4: "variance"}
        return roles.get(index, "other"), 1
    if op == "Mul":
        return "scale", 1  # the scale half of a BatchNormalization decomposed into Mul and Add
    if op in ("Add", "Sum", "Sub"):
        return "shift", 1
    return "other", 1


def _random_weight(seed: int, name: str, shape, role: str, fan_in: int) -> np.ndarray:
    # Sized like a real trained network's, so activations neither vanish nor explode and the
    # softmax at the end is not one-hot: He scaling for weights, BN near identity.
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    if role in ("scale", "variance"):
        values = rng.random(shape, dtype=np.float32)
        values += np.float32(0.5)
        return values
    values = rng.standard_normal(shape, dtype=np.float32)
    scale = {"weight": np.sqrt(2.0 / max(fan_in, 1)), "bias": 0.01, "shift": 0.1, "mean": 0.1,
             "other": 0.02}[role]
    values *= np.float32(scale)
    return values


# Standard deviation the logits before a softmax are scaled to: wide enough that the top class
# stands out, narrow enough that the probabilities are not one-hot (which would hide errors).
LOGIT_STD = 2.0

# Ops through which scaling a weight scales the output by the same factor.
_HOMOGENEOUS = {"Relu", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity",
                "Dropout", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"}


def calibrate_logits(model: onnx.ModelProto, seed: int, batch: int = 1) -> None:
    """Rescale the last layer before each Softmax so its logits have std LOGIT_STD.

    Random weights compound through deep networks (batch norms whose statistics do not match
    their inputs, residual sums), so the logits of a randomized ResNet are in the hundreds and
    its softmax is one-hot: every class but one is exactly 0 and a wrong answer looks right.
    """
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    initializers = {init.name: init for init in graph.initializer}
    targets = []
    for node in graph.node:
        if node.op_type == "Softmax":
            layer = _linear_producer(node.input[0], producers, initializers)
            if layer is not None:
                targets.append((node.input[0], layer))
    if not targets:
        return
    logits = _run_for_values(model, [name for name, _ in targets], seed, batch)
    for (name, layer), values in zip(targets, logits):
        spread = float(np.std(values))
        if np.isfinite(spread) and spread > 0:
            for operand in layer.input[1:3]:
                tensor = _source_initializer(operand, producers, initializers)
                if tensor is not None:
                    _scale_initializer(tensor, LOGIT_STD / spread)


def _linear_producer(name: str, producers: dict, initializers: dict):
    """The Conv/Gemm/MatMul with initializer weights that `name` scales linearly with, if any."""
    node = producers.get(name)
    while node is not None and node.op_type in _HOMOGENEOUS:
        node = producers.get(node.input[0])
    if node is not None and node.op_type in ("Conv", "Gemm", "MatMul") and len(node.input) > 1 \
            and _source_initializer(node.input[1], producers, initializers) is not None:
        return node
    return None


def _source_initializer(name: str, producers: dict, initializers: dict):
    """The initializer `name` is, or is a reshaping of (e.g. Reshape(weights) feeding a Gemm)."""
    while name not in initializers:
        node = producers.get(name)
        if node is None or node.op_type not in _PASS_THROUGH:
            return None
        name = node.input[0]
    return initializers[name]


def _run_for_values(model: onnx.ModelProto, names: list[str], seed: int, batch: int) -> list:
    """Values of the intermediate tensors `names` on the workload's seeded inputs (onnxruntime)."""
    import onnxruntime

    extra = [onnx.helper.make_empty_tensor_value_info(name) for name in names]
    model.graph.output.extend(extra)
    try:
        serialized = model.SerializeToString()
    finally:
        del model.graph.output[len(model.graph.output) - len(extra):]
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(serialized, options,
                                           providers=["CPUExecutionProvider"])
    del serialized
    feeds = reference.random_inputs_for(model, seed, batch=batch)
    return session.run(names, feeds)


def _scale_initializer(tensor: onnx.TensorProto, factor: float) -> None:
    values = numpy_helper.to_array(tensor).copy()
    values *= np.asarray(factor, dtype=values.dtype)
    tensor.CopyFrom(numpy_helper.from_array(values, tensor.name))


def _drop_unused_initializers(graph) -> None:
    used = {name for node in graph.node for name in node.input}
    used |= {output.name for output in graph.output}
    kept = [init for init in graph.initializer if init.name in used]
    if len(kept) != len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(kept)


def _drop_initializer_inputs(graph) -> None:
    initializers = {init.name for init in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    del graph.input[:]
    graph.input.extend(inputs)


# --- files ------------------------------------------------------------------------------------

def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    _atomic_write(Path(path), lambda f: np.savez(f, **arrays))


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"inputs file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except Exception as exc:
        reason = " ".join(str(exc).split())
        raise UsageError(f"cannot read {path}: not a valid .npz file ({reason})")


def _atomic_write(path: Path, write: Callable) -> None:
    """Write through a temporary file in the same directory, renamed into place when complete, so
    a killed preparation never leaves a truncated file that looks cached."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
