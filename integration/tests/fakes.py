"""The one fake of the harness's tests: `FakePort`, a stand-in for stack/port.py.

Everything else the nightly does is real: combinations are the real `Combination` value,
contracts are real contract.yaml files in the fake environment's sources, the suite is a real
suite.yaml (tiny ONNX models from fakecompiler), preparation and the comparison with
onnxruntime are real, and so are the store and the dashboard. A test decides, per workload and
SKU, what the simulated stack does: answer right ("ok"), answer wrong ("mismatch"), "crash",
"timeout", "oom", or answer right after a while ("slow:SECONDS").
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import yaml

import fakeanalysis
from fakecompiler import tiny_conv_model
from stackci.errors import StackError
from stackci.sources.build import Environment
from stackci.sources.combination import Combination, ModuleVersion
from stackci.stack.port import StackPort
from stackci.workloads import reference
from stackci.workloads.npz import load_npz, save_npz

SKUS = ("edge", "datacenter")


def simulated_document(latency_us: float) -> dict:
    ops = [{"name": "conv0", "op_type": "Conv", "kernel": "conv_im2col", "fusion": "Relu",
            "cycles": 3000, "macs": 90000, "bytes_read": 4096, "bytes_written": 2048,
            "unit": "array", "array_utilization": 0.8},
           {"name": "gemm0", "op_type": "Gemm", "kernel": "gemm_tiled", "fusion": "",
            "cycles": 1000, "macs": 30000, "bytes_read": 2048, "bytes_written": 512,
            "unit": "array", "array_utilization": 0.6},
           {"name": "softmax0", "op_type": "Softmax", "kernel": "softmax_vec", "fusion": "",
            "cycles": 500, "macs": 0, "bytes_read": 512, "bytes_written": 512,
            "unit": "vector", "array_utilization": 0.0}]
    return {"compile_s": 0.5, "run_s": 1.5,
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


class FakePort(StackPort):
    """`workloads` become a suite.yaml (`suite_path()`), each with `workload_options[name]`
    merged into its entry (expect, requires, skus...) and `conformance` (a suite mapping) when
    set. The environment of any combination holds one source directory per module with a
    contract.yaml: driver provides driver-api 1.0 plus `provides`, runtime requires driver-api
    (an impossible range when `contracts_ok` is false), every other module provides
    `<module>-api 1.0`. The node suite answers `report` (or raises it), the library size report
    `library`."""

    def __init__(self, tmp_path: Path, *, workloads=("resnet", "bert"),
                 modules=("driver", "runtime"), latency_us: float = 100.0):
        self.tmp_path = tmp_path
        self.workloads = list(workloads)
        self.modules = modules
        self.latency_us = latency_us
        self.workload_options: dict[str, dict] = {}
        self.conformance_spec: dict | None = None
        self.behaviour: dict[tuple[str, str], str] = {}
        self.contracts_ok = True
        self.provides = {"compiler-api": "1.2", "opslib-api": "1.3"}
        self.calls: list[tuple] = []
        self._lock = threading.Lock()
        self.report = conformance_report(1200)
        self.unfused = False  # the analysed plans lose their fusions (a lost optimization)
        self.library = {"kernels": 155, "variants": 773, "configs": 8441,
                        "custom_kernels": [], "by_kernel": []}
        self.broken: set[str] = set()  # combination keys whose environment fails to build
        self.python_of: dict[str, Path] = {}  # combination key -> its (fake) interpreter path
        self.sources = {m: tmp_path / "src" / m for m in modules}
        for source in self.sources.values():
            (source / "tests").mkdir(parents=True, exist_ok=True)

    def __getstate__(self) -> dict:
        # Sent to Dask workers (nightly/dask_worker.py) like the real, stateless port; what a
        # worker's copy records stays in that worker.
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _lock=threading.Lock())

    # -- what a test sets up ------------------------------------------------------------------

    def combination(self, name="master", version="0.1.0") -> Combination:
        return Combination(name, {m: ModuleVersion(m, version, "c0ffee" * 6 + m[:4],
                                                   f"tree-{m}-{version}")
                                  for m in self.modules})

    def suite_path(self) -> Path:
        """A real suite manifest of tiny models named after the workloads."""
        directory = self.tmp_path / "suite"
        directory.mkdir(parents=True, exist_ok=True)
        entries = []
        for name in self.workloads:
            model = directory / f"{name}.onnx"
            if not model.exists():
                tiny_conv_model(model)
            entries.append({"name": name, "source": f"file:{name}.onnx", "tiers": ["smoke"],
                            **self.workload_options.get(name, {})})
        document = {"defaults": {"skus": list(SKUS), "tolerance": {"atol": 1e-4,
                                                                   "rtol": 1e-3}},
                    "workloads": entries or [{"name": "unused", "source": "file:x.onnx",
                                              "tiers": ["weekly"]}]}
        if self.conformance_spec is not None:
            document["conformance"] = self.conformance_spec
        path = directory / "suite.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path

    def _called(self, *call) -> None:
        with self._lock:
            self.calls.append(call)

    def count(self, kind: str) -> int:
        return sum(1 for call in self.calls if call[0] == kind)

    # -- the port -----------------------------------------------------------------------------

    def environment(self, ws, combination, *, progress=None, python=None) -> Environment:
        self._called("build", combination.key)
        if combination.key in self.broken:  # a module that does not build at an old commit
            raise StackError("build of driver failed: no backend")
        sources = {}
        for module, mv in combination.modules.items():
            source = self.tmp_path / "src" / module
            (source / "tests").mkdir(parents=True, exist_ok=True)
            contract = self._contract(module, set(combination.modules))
            (source / "contract.yaml").write_text(yaml.safe_dump(contract))
            (source / "pyproject.toml").write_text(
                f'[project]\nname = "npu-{module}"\nversion = "{mv.version}"\n')
            sources[module] = source
        env = self.tmp_path / "envs" / combination.key
        env.mkdir(parents=True, exist_ok=True)
        python = self.python_of.get(combination.key, Path(sys.executable))
        lock = {"modules": {m: {"version": mv.version} for m, mv in combination.modules.items()}}
        return Environment(env, python, lock, sources, combination)

    def _contract(self, module: str, present: set[str]) -> dict:
        """`provides` goes to the module it names (`opslib-api` to opslib) when the
        combination has it, else to the driver."""
        provides = {f"{module}-api": "1.0"}
        for interface, version in self.provides.items():
            owner = interface.removesuffix("-api")
            if owner == module or (module == "driver" and owner not in present):
                provides[interface] = version
        requires = {}
        if module == "runtime":
            requires["driver-api"] = ">=1.0,<2" if self.contracts_ok else ">=2"
        return {"module": module, "provides": provides, "requires": requires}

    def skus(self, python, timeout_s=None) -> list[dict]:
        shape = {"array_rows": 32, "array_cols": 32, "sram_bytes": 1 << 20,
                 "dram_bandwidth_gbps": 25.6, "vector_lanes": 16}
        return [{"name": "edge", "clock_ghz": 1.0, **shape},
                {"name": "datacenter", "clock_ghz": 1.5, **shape}]

    def compiler(self, python, argv, *, name, sku, timeout_s=None, cwd=None, extra_env=None):
        """analyze | plan-diff | explore: fakeanalysis's documents."""
        self._called("compiler", argv[0], sku)
        return fakeanalysis.answer(argv, skipped_everywhere=self.unfused)

    def run_model(self, python, request) -> dict:
        workload = request.model.stem.rsplit("-", 2)[0]  # <name>-<seed>-<hash>.onnx
        self._called("run_model", workload, request.sku, str(python))
        behaviour = self.behaviour.get((workload, request.sku), "ok")
        if behaviour.startswith("slow:"):  # "slow:SECONDS": right, after that long
            time.sleep(float(behaviour.split(":")[1]))
        if behaviour == "crash":
            raise StackError("stack failed on model.onnx: boom", kind="unsupported-operator")
        if behaviour == "timeout":
            raise StackError("the stack timed out", kind="timeout")
        if behaviour == "oom":
            raise StackError("device out of memory on edge: needed 9 bytes, 1 free of 8",
                             kind="out-of-memory")
        outputs = reference.reference_outputs(request.model, load_npz(request.inputs))
        if behaviour == "mismatch":
            outputs = {k: v + np.asarray(0.5, v.dtype) for k, v in outputs.items()}
        save_npz(request.outputs, outputs)
        return {"model": str(request.model), "sku": request.sku,
                "precision": request.precision, **simulated_document(self.latency_us)}

    def conformance(self, python, sku, timeout_s) -> dict:
        self._called("conformance", sku)
        if isinstance(self.report, Exception):
            raise self.report
        return self.report

    def opslib_stats(self, python, timeout_s) -> dict:
        self._called("opslib_stats")
        return self.library
