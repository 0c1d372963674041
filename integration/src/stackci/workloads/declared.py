"""What a real model is fed, where it comes from and how it may fail, as the suite declares
it: the `pypi:` source's `member` and `sha256`, `inputs` (per input: `shape`, and
`range: [low, high]` or `value: v`) and `expect` (SKU -> failure kind [operator]). Real models are judged on the inputs they were made for: token ids within the
vocabulary, audio in [-1, 1], a sample rate the model branches on, not standard normal noise.
Every problem names the file and the field, on one line."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from stackci.errors import UsageError
from stackci.workloads import wheels

# (input name, shape, low, high): floats uniform in [low, high], integers uniform in
# [low, high] inclusive, booleans true with probability 1/2; low == high is a constant.
InputSpec = tuple[str, tuple[int, ...], float, float]

INPUT_KEYS = {"shape", "range", "value"}

# Failure kinds a workload may be expected to end with on a SKU (the stack's own kinds).
EXPECTABLE_KINDS = ("out-of-memory", "unsupported-operator")


def check_pypi_source(path: Path, where: str, source: str, entry: dict) -> None:
    """`pypi:<package>==<version>` with a `member` path inside the wheel and its `sha256`."""
    try:
        wheels.parse_requirement(source.partition(":")[2])
    except ValueError as exc:
        raise UsageError(f"{path}: {where}.source: {exc}") from None
    member = entry.get("member")
    if not isinstance(member, str) or not member:
        raise UsageError(f"{path}: {where}.member: missing (the model's path inside the wheel, "
                         "e.g. rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx)")
    parts = PurePosixPath(member).parts
    if member.startswith("/") or ".." in parts or "\\" in member:
        raise UsageError(f"{path}: {where}.member: {member!r} must be a relative path inside "
                         "the wheel, with / separators and no '..'")
    sha256 = entry.get("sha256")
    if not isinstance(sha256, str) or not wheels.SHA256.match(sha256):
        raise UsageError(f"{path}: {where}.sha256: expected the member's sha256 as 64 lowercase "
                         f"hex digits, got {sha256!r}")


def check_not_pypi(path: Path, where: str, entry: dict) -> None:
    for key in ("member", "sha256"):
        if key in entry:
            raise UsageError(f"{path}: {where}.{key}: only a pypi: source has a {key}")


def parse_inputs(path: Path, where: str, value) -> tuple[InputSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, dict) or not value:
        raise UsageError(f"{path}: {where}.inputs: expected a mapping of input name to "
                         "{shape, range | value}")
    specs = []
    for name, spec in value.items():
        label = f"{where}.inputs.{name}"
        if not isinstance(spec, dict):
            raise UsageError(f"{path}: {label}: expected a mapping with shape and range or value")
        unknown = sorted(set(spec) - INPUT_KEYS)
        if unknown:
            raise UsageError(f"{path}: {label}.{unknown[0]}: unknown key "
                             f"(expected: {', '.join(sorted(INPUT_KEYS))})")
        shape = spec.get("shape")
        if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise UsageError(f"{path}: {label}.shape: expected a list of whole numbers "
                             f"([] for a scalar), got {shape!r}")
        if ("range" in spec) == ("value" in spec):
            raise UsageError(f"{path}: {label}: give either range: [low, high] or value: v")
        if "value" in spec:
            low = high = _number(path, f"{label}.value", spec["value"])
        else:
            bounds = spec["range"]
            if not isinstance(bounds, list) or len(bounds) != 2:
                raise UsageError(f"{path}: {label}.range: expected [low, high], got {bounds!r}")
            low = _number(path, f"{label}.range", bounds[0])
            high = _number(path, f"{label}.range", bounds[1])
            if low > high:
                raise UsageError(f"{path}: {label}.range: low {low:g} is above high {high:g}")
        specs.append((str(name), tuple(shape), low, high))
    return tuple(specs)


def _number(path: Path, where: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{path}: {where}: expected a number, got {value!r}")
    return float(value)


def expectations(path: Path, where: str, value, skus: list[str]) -> tuple[tuple[str, str], ...]:
    """`expect:` SKU -> failure kind, optionally followed by the operator it names."""
    if not isinstance(value, dict):
        raise UsageError(f"{path}: {where}.expect: expected a mapping, got {type(value).__name__}")
    expect = value
    for sku, expectation in expect.items():
        if sku not in skus:
            raise UsageError(f"{path}: {where}.expect: SKU {sku!r} is not among the workload's "
                             f"skus ({', '.join(skus)})")
        kind = str(expectation).split()[0] if str(expectation).split() else ""
        if kind not in EXPECTABLE_KINDS:
            raise UsageError(f"{path}: {where}.expect.{sku}: unknown failure kind {kind!r} "
                             f"(expected one of: {', '.join(EXPECTABLE_KINDS)})")
    return tuple(sorted(expect.items()))
