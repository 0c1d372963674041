"""Fakes of the harness parts the nightly calls (combination, build, contracts, workloads,
run_model), so the nightly, store and dashboard are tested without building a stack.

`FakeStack` records every call and lets a test decide, per workload and SKU, what the
simulated stack does: answer right, answer wrong, crash, or time out.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from stackci.errors import StackError
from stackci.jobs import Toolbox
from stackci.workloads import Workload


@dataclass(frozen=True)
class FakeModuleVersion:
    module: str
    version: str
    commit: str
    tree_hash: str


@dataclass(frozen=True)
class FakeCombination:
    name: str
    modules: dict

    @property
    def key(self) -> str:
        vector = {m: [mv.version, mv.tree_hash] for m, mv in sorted(self.modules.items())}
        return hashlib.sha256(json.dumps(vector).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {"name": self.name, "key": self.key,
                "modules": {m: vars(mv).copy() for m, mv in self.modules.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> "FakeCombination":
        return cls(data["name"], {m: FakeModuleVersion(**mv) for m, mv in data["modules"].items()})


@dataclass
class FakeWorkload:
    name: str
    skus: tuple = ("edge", "datacenter")
    precision: str = "fp32"
    atol: float = 1e-4
    rtol: float = 1e-3
    min_cosine: float | None = None
    batch: int = 1
    expect: tuple = ()
    requires: tuple = ()

    # The real workload's logic, on the fake's fields.
    expected_failure = Workload.expected_failure
    unmet_requirements = Workload.unmet_requirements


@dataclass
class FakeSuite:
    workloads: list
    conformance: object = None  # a workloads.Conformance when the night runs the node suite

    def select(self, tier, names=None):
        return [w for w in self.workloads if not names or w.name in names]


@dataclass
class FakeVerdict:
    ok: bool
    problems: list = field(default_factory=list)
    edges: list = field(default_factory=list)


def simulated_result(latency_us: float, *, match: bool = True) -> dict:
    ops = [{"name": "conv0", "op_type": "Conv", "kernel": "conv_im2col", "fusion": "Relu",
            "cycles": 3000, "macs": 90000, "bytes_read": 4096, "bytes_written": 2048,
            "unit": "array", "array_utilization": 0.8},
           {"name": "gemm0", "op_type": "Gemm", "kernel": "gemm_tiled", "fusion": "",
            "cycles": 1000, "macs": 30000, "bytes_read": 2048, "bytes_written": 512,
            "unit": "array", "array_utilization": 0.6},
           {"name": "softmax0", "op_type": "Softmax", "kernel": "softmax_vec", "fusion": "",
            "cycles": 500, "macs": 0, "bytes_read": 512, "bytes_written": 512,
            "unit": "vector", "array_utilization": 0.0}]
    return {"match": match, "compile_s": 0.5, "run_s": 1.5,
            "outputs": [{"name": "y", "max_abs_error": 1e-6 if match else 0.5, "match": match}],
            "simulated": {"total_cycles": 4500, "latency_us": latency_us,
                          "peak_device_bytes": 1 << 20, "ops": ops}}


def conformance_report(passed: int, failures: dict[str, int] | None = None) -> dict:
    """What `python -m npu_compiler.conformance --json` prints: `failures` counts per class."""
    failures = failures or {"unsupported_operator": 2, "wrong_result": 1}
    listed = [{"name": f"test_{kind}_{i}", "status": kind, "detail": f"{kind} number {i}",
               "seconds": 0.01, "onnxruntime": None}
              for kind, count in failures.items() for i in range(count)]
    counts = {"passed": passed, "unsupported_operator": 0, "unsupported_type": 0,
              "wrong_result": 0, "crash": 0, **failures}
    return {"total": passed + len(listed), "passed": passed, "counts": counts,
            "onnxruntime_passed": None, "seconds": 12.5, "failures": listed}


class FakeStack:
    """Behaviour per (workload, sku): "ok" (default), "mismatch", "crash", "timeout".
    The node suite answers `self.conformance` (a report, or a StackError to raise), the
    library size report `self.library`."""

    def __init__(self, tmp_path: Path, *, workloads=("resnet", "bert"), modules=("driver",
                 "runtime"), latency_us: float = 100.0):
        self.tmp_path = tmp_path
        self.workloads = [FakeWorkload(name) for name in workloads]
        self.modules = modules
        self.latency_us = latency_us
        self.behaviour: dict[tuple[str, str], str] = {}
        self.contracts_ok = True
        self.calls: list[tuple] = []
        self._lock = threading.Lock()
        self.conformance = conformance_report(1200)
        self.library = {"kernels": 155, "variants": 773, "configs": 8441,
                        "custom_kernels": [], "by_kernel": []}
        self.sources = {}
        for module in modules:
            source = tmp_path / "src" / module
            (source / "tests").mkdir(parents=True, exist_ok=True)
            self.sources[module] = source

    def combination(self, name="master", version="0.1.0") -> FakeCombination:
        return FakeCombination(name, {m: FakeModuleVersion(m, version, "c0ffee" * 6 + m[:4],
                                                           f"tree-{m}-{version}")
                                      for m in self.modules})

    def _called(self, *call) -> None:
        with self._lock:
            self.calls.append(call)

    def count(self, kind: str) -> int:
        return sum(1 for call in self.calls if call[0] == kind)

    def toolbox(self, publish=None) -> Toolbox:
        def resolve(ws, name, pins):
            self._called("resolve", name)
            return self.combination(name)

        def ensure_environment(ws, combination, progress=None):
            self._called("build", combination.key)
            return SimpleNamespace(path=self.tmp_path / "env", python=Path(sys.executable),
                                   lock={}, sources=self.sources, combination=combination)

        def check_declared(contracts):
            self._called("contracts", tuple(sorted(contracts)))
            if self.contracts_ok:
                return FakeVerdict(True, edges=[{"consumer": "runtime", "provider": "driver"}])
            return FakeVerdict(False, problems=["runtime requires driver-api>=2 but driver "
                                                "0.1.0 provides driver-api 1.0"])

        def prepare(ws, workload):
            self._called("prepare", workload.name)
            return SimpleNamespace(model_path=self.tmp_path / f"{workload.name}.onnx",
                                   inputs_path=None, expected_path=None)

        def run_model(python, model_path, sku, **options):
            workload = Path(model_path).stem
            self._called("run_model", workload, sku)
            behaviour = self.behaviour.get((workload, sku), "ok")
            if behaviour == "crash":
                raise StackError("stack failed on model.onnx: boom", kind="unsupported-operator")
            if behaviour == "timeout":
                raise StackError("the stack timed out", kind="timeout")
            if behaviour == "oom":
                raise StackError("device out of memory on edge: needed 9 bytes, 1 free of 8",
                                 kind="out-of-memory")
            return simulated_result(self.latency_us, match=behaviour != "mismatch")

        def driver_skus(python, timeout_s):
            return [{"name": "edge", "clock_ghz": 1.0}, {"name": "datacenter", "clock_ghz": 1.5}]

        def run_conformance(python, sku, timeout_s):
            self._called("conformance", sku)
            if isinstance(self.conformance, Exception):
                raise self.conformance
            return self.conformance

        def opslib_stats(python, timeout_s):
            self._called("opslib_stats")
            return self.library

        def default_publish(store, out_dir):
            self._called("publish", str(out_dir))
            return Path(out_dir) / "index.html"

        return Toolbox(resolve=resolve, combination_from_dict=FakeCombination.from_dict,
                       ensure_environment=ensure_environment,
                       load_contract=lambda path: SimpleNamespace(path=path),
                       check_declared=check_declared,
                       load_suite=lambda: FakeSuite(self.workloads), prepare=prepare,
                       run_model=run_model, publish=publish or default_publish,
                       driver_skus=driver_skus, run_conformance=run_conformance,
                       opslib_stats=opslib_stats)
