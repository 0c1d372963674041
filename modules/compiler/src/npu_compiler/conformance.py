"""The ONNX backend node suite run through `npu_compiler.onnx_backend`, every failure classified.

    python -m npu_compiler.conformance [--json] [--filter REGEX] [--no-onnxruntime]

Cases come from onnx's own loader (`onnx.backend.test.loader`, built in memory). Each case is
compared as onnx's `BackendTest` compares it (shape, dtype, allclose with the case's rtol/atol).
A failure is one of:

- `unsupported_operator`: opslib has no kernel for an operator of the model;
- `unsupported_type`: an input or output is of a type the stack does not compute in;
- `wrong_result`: the stack ran and an output differs (shape, dtype or values);
- `crash`: any other error while compiling or running.

When onnxruntime is importable the same cases are run on it too, for the pass count to beat.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np

PASSED = "passed"
UNSUPPORTED_OPERATOR = "unsupported_operator"
UNSUPPORTED_TYPE = "unsupported_type"
WRONG_RESULT = "wrong_result"
CRASH = "crash"
FAILURE_CLASSES = (UNSUPPORTED_OPERATOR, UNSUPPORTED_TYPE, WRONG_RESULT, CRASH)


class Mismatch(AssertionError):
    """An output differs from the expected one; the message says how."""


@dataclass
class CaseResult:
    name: str
    status: str
    detail: str = ""
    seconds: float = 0.0
    onnxruntime: bool | None = None  # None: not run

    @property
    def passed(self) -> bool:
        return self.status == PASSED


@dataclass
class Report:
    results: list[CaseResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def onnxruntime_passed(self) -> int | None:
        runs = [r.onnxruntime for r in self.results if r.onnxruntime is not None]
        return sum(runs) if runs else None

    def counts(self) -> dict[str, int]:
        counts = Counter(r.status for r in self.results)
        return {status: counts.get(status, 0) for status in (PASSED,) + FAILURE_CLASSES}

    def to_dict(self) -> dict:
        return {"total": self.total, "passed": self.passed, "counts": self.counts(),
                "onnxruntime_passed": self.onnxruntime_passed, "seconds": round(self.seconds, 2),
                "failures": [asdict(r) for r in self.results if not r.passed]}


def classify(exc: BaseException) -> tuple[str, str]:
    """(failure class, one-line detail) of an exception raised by compiling or running."""
    import npu_opslib

    from npu_compiler.onnx_backend import UnsupportedType

    first_line = (str(exc).strip().splitlines() or [""])[0]
    detail = f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
    if isinstance(exc, npu_opslib.UnsupportedOperator):
        return UNSUPPORTED_OPERATOR, first_line
    if isinstance(exc, UnsupportedType) or isinstance(
            exc, getattr(npu_opslib, "UnsupportedDataType", ())):
        return UNSUPPORTED_TYPE, first_line
    if isinstance(exc, Mismatch):
        return WRONG_RESULT, first_line
    return CRASH, detail[:300]


def compare(expected, actual, rtol: float, atol: float) -> None:
    """Raise Mismatch unless `actual` matches `expected` as onnx's BackendTest requires."""
    if len(actual) != len(expected):
        raise Mismatch(f"{len(actual)} outputs, expected {len(expected)}")
    for index, (want, got) in enumerate(zip(expected, actual)):
        got = np.asarray(got)
        if got.shape != want.shape:
            raise Mismatch(f"output {index} has shape {list(got.shape)}, expected "
                           f"{list(want.shape)}")
        if want.dtype == object:
            if not np.array_equal(got, want):
                raise Mismatch(f"output {index} differs")
            continue
        if got.dtype != want.dtype:
            raise Mismatch(f"output {index} has dtype {got.dtype}, expected {want.dtype}")
        try:
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
        except AssertionError:
            diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
            worst = float(np.nanmax(diff)) if diff.size else 0.0
            raise Mismatch(f"output {index} differs (max abs error {worst:.3g}, rtol {rtol}, "
                           f"atol {atol})") from None


def load_cases(pattern: str | None = None) -> list:
    """onnx's node test cases (name, model, data_sets, rtol, atol), optionally filtered."""
    from onnx.backend.test.loader import load_model_tests

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        cases = load_model_tests(kind="node")
    if pattern:
        regex = re.compile(pattern)
        cases = [case for case in cases if regex.search(case.name)]
    return sorted(cases, key=lambda case: case.name)


def _normalize(values) -> list:
    """The loader hands some tensors over as TensorProto; onnx's runner converts them too."""
    from onnx import TensorProto, numpy_helper

    return [numpy_helper.to_array(v) if isinstance(v, TensorProto) else v for v in values]


def run_case(case, backend=None) -> CaseResult:
    """Prepare and run one case on `backend` (default the stack), classified."""
    if backend is None:
        from npu_compiler import onnx_backend as backend
    started = time.perf_counter()
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            rep = backend.prepare(case.model, "CPU")
            for inputs, expected in case.data_sets:
                compare(_normalize(expected), list(rep.run(_normalize(inputs))), case.rtol,
                        case.atol)
    except Exception as exc:  # every failure is a result to classify, not a stop
        status, detail = classify(exc)
        return CaseResult(case.name, status, detail, time.perf_counter() - started)
    return CaseResult(case.name, PASSED, "", time.perf_counter() - started)


def onnxruntime_passes(case) -> bool:
    """Whether onnxruntime (CPU) passes the same case under the same comparison."""
    import onnxruntime

    onnxruntime.set_default_logger_severity(4)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            session = onnxruntime.InferenceSession(case.model.SerializeToString(),
                                                   providers=["CPUExecutionProvider"])
            names = [i.name for i in session.get_inputs()]
            for inputs, expected in case.data_sets:
                feeds = dict(zip(names, _normalize(inputs)))
                compare(_normalize(expected), session.run(None, feeds), case.rtol, case.atol)
    except Exception:  # onnxruntime's failures are only counted
        return False
    return True


def _onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def run_suite(cases, *, reference: bool = True, progress=None) -> Report:
    reference = reference and _onnxruntime_available()
    report = Report()
    started = time.perf_counter()
    for case in cases:
        result = run_case(case)
        if reference:
            result.onnxruntime = onnxruntime_passes(case)
        report.results.append(result)
        if progress:
            progress(result)
    report.seconds = time.perf_counter() - started
    return report


def format_report(report: Report) -> str:
    counts = report.counts()
    lines = [f"ONNX backend node suite: {report.passed} / {report.total} passed "
             f"({report.seconds:.1f} s)"]
    if report.onnxruntime_passed is not None:
        lines.append(f"onnxruntime on the same cases: {report.onnxruntime_passed} / "
                     f"{report.total} passed")
    lines.append("failures: " + ", ".join(f"{c} {counts[c]}" for c in FAILURE_CLASSES))
    for status in FAILURE_CLASSES:
        failed = [r for r in report.results if r.status == status]
        if failed:
            lines.append(f"\n{status} ({len(failed)}):")
            lines.extend(f"  {r.name}: {r.detail}" for r in failed)
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m npu_compiler.conformance",
                                     description="Run the ONNX backend node suite on the stack.")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--filter", metavar="REGEX", help="only cases whose name matches")
    parser.add_argument("--no-onnxruntime", action="store_true",
                        help="skip running the same cases on onnxruntime")
    args = parser.parse_args(argv)
    try:
        cases = load_cases(args.filter)
    except re.error as exc:
        print(f"npu-compiler: error: --filter {args.filter!r} is not a regular expression "
              f"({exc})", file=sys.stderr)
        return 2
    if not cases:
        print(f"npu-compiler: error: no node case matches --filter {args.filter!r}",
              file=sys.stderr)
        return 2
    report = run_suite(cases, reference=not args.no_onnxruntime)
    print(json.dumps(report.to_dict(), indent=1) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
