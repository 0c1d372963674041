"""The serializable plan ("npu-plan/1"): steps of selected kernels, constants, pass log."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from npu_compiler.errors import ModelLoadError, UnsupportedPrecision
from npu_compiler.ir import Graph
from npu_compiler.passes.selection import kernel_attrs

FORMAT = "npu-plan/1"


def _encode(value: Any):
    """Attribute values as JSON (arrays tagged with their dtype, so they come back exact)."""
    if isinstance(value, np.ndarray):
        return {"ndarray": value.tolist(), "dtype": value.dtype.name, "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any):
    if isinstance(value, dict):
        if set(value) == {"ndarray", "dtype", "shape"}:
            return np.array(value["ndarray"], dtype=value["dtype"]).reshape(value["shape"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


@dataclass
class Plan:
    model: str
    sku: str
    precision: str
    inputs: list[dict]
    outputs: list[dict]
    steps: list[dict]
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    pass_log: list[dict] = field(default_factory=list)
    values: dict[str, dict] = field(default_factory=dict)  # name -> {shape, dtype}
    # The memory plan: {arena_bytes, offsets: {value: byte offset}, unplanned_bytes,
    # weight_bytes, io_bytes, peak_bytes}; empty when the pipeline did not plan memory.
    memory: dict = field(default_factory=dict)
    format: str = FORMAT

    @classmethod
    def from_graph(cls, graph: Graph, pass_log: list[dict]) -> "Plan":
        def describe(name):
            value = graph.values[name]
            shape = None if value.shape is None else list(value.shape)  # control flow's
            return {"name": name, "shape": shape, "dtype": value.dtype}

        steps = [{"name": n.name, "op_type": n.op_type, "fusion": n.fusion_name,
                  "kernel": n.kernel, "config": n.config, "inputs": list(n.inputs),
                  "outputs": list(n.outputs), "attrs": _encode(kernel_attrs(n)),
                  "layout": n.layout, "precision": graph.node_precision(n)}
                 for n in graph.nodes]
        used = {name for n in graph.nodes for name in n.inputs} | set(graph.outputs)
        values = {}
        for name in used | {o for n in graph.nodes for o in n.outputs}:
            value = graph.values.get(name)
            if name and value is not None and value.shape is not None:
                values[name] = {"shape": list(value.shape), "dtype": value.dtype}
        return cls(model=graph.source, sku=getattr(graph.sku, "name", str(graph.sku)),
                   precision=graph.precision, inputs=[describe(n) for n in graph.inputs],
                   outputs=[describe(n) for n in graph.outputs], steps=steps,
                   constants={k: v for k, v in graph.constants.items() if k in used},
                   pass_log=pass_log, values=values, memory=graph.memory)

    def to_json(self) -> str:
        doc = {"format": self.format, "model": self.model, "sku": self.sku,
               "precision": self.precision, "inputs": self.inputs, "outputs": self.outputs,
               "steps": self.steps, "values": self.values, "pass_log": self.pass_log,
               "memory": self.memory, "constants": sorted(self.constants)}
        return json.dumps(doc, indent=1)

    @classmethod
    def from_json(cls, text: str, constants: dict[str, np.ndarray] | None = None) -> "Plan":
        doc = json.loads(text)
        if doc.get("format") != FORMAT:
            raise ModelLoadError(f"plan format {doc.get('format')!r} is not {FORMAT!r}")
        constants = constants or {}
        missing = [name for name in doc.get("constants", []) if name not in constants]
        if missing:
            raise ModelLoadError(f"plan constants missing: {', '.join(missing[:5])}")
        return cls(model=doc["model"], sku=doc["sku"], precision=doc["precision"],
                   inputs=doc["inputs"], outputs=doc["outputs"], steps=doc["steps"],
                   constants=constants, pass_log=doc.get("pass_log", []),
                   values=doc.get("values", {}), memory=doc.get("memory", {}),
                   format=doc["format"])

    def step_attrs(self, step: dict) -> dict:
        return _decode(step["attrs"])

    def save(self, directory) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "plan.json").write_text(self.to_json())
        # npz keys cannot hold every character of an ONNX name: store them by index.
        names = sorted(self.constants)
        np.savez(directory / "constants.npz", __names__=np.array(names, dtype=str),
                 **{f"c{i}": self.constants[n] for i, n in enumerate(names)})
        return directory

    @classmethod
    def load(cls, directory) -> "Plan":
        directory = Path(directory)
        plan_file, constants_file = directory / "plan.json", directory / "constants.npz"
        for path in (plan_file, constants_file):
            if not path.is_file():
                raise ModelLoadError(f"cannot read plan {directory}: {path.name} is missing")
        try:
            with np.load(constants_file) as data:
                names = [str(n) for n in data["__names__"]]
                constants = {name: data[f"c{i}"] for i, name in enumerate(names)}
            return cls.from_json(plan_file.read_text(), constants)
        except (ValueError, KeyError, json.JSONDecodeError, OSError) as exc:
            raise ModelLoadError(f"cannot read plan {directory}: {exc}") from None


PRECISIONS = ("fp32", "fp16", "bf16", "int8")


def check_precision(precision: str, sku=None) -> None:
    if precision not in PRECISIONS:
        raise UnsupportedPrecision(f"precision {precision!r} is not supported "
                                   f"(supported: {', '.join(PRECISIONS)})")
    offered = getattr(sku, "precisions", None)
    if offered is not None and precision not in offered:
        raise UnsupportedPrecision(f"SKU {sku.name} does not run {precision} "
                                   f"(it offers {', '.join(offered)})")
