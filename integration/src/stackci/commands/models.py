"""Commands that run the stack: `run-model`, `skus`."""

from __future__ import annotations

import argparse
import json

from stackci.cli import arg, command, interpreter_arguments
from stackci.errors import UsageError
from stackci.stack.interpreter import choose_python
from stackci.stack.port import StackPort
from stackci.workloads.reference import parse_shape
from stackci.workloads.run import run_model

TOP_OPS = 10


@command("run-model", "run one ONNX model on the simulated NPU and check it against onnxruntime",
         [arg("model", metavar="MODEL.onnx"),
          arg("--sku", required=True, help="hardware SKU, e.g. npu-edge (see `stackci skus`)"),
          arg("--precision", default="fp32", choices=["fp32", "fp16", "bf16", "int8"]),
          arg("--inputs", default=None, metavar="FILE.npz",
              help="inputs by name (default: seeded standard normal)"),
          arg("--save-outputs", default=None, metavar="FILE.npz",
              help="write the stack's outputs here"),
          arg("--seed", type=int, default=0, help="seed of the generated inputs (default 0)"),
          arg("--shape", action="append", default=[], metavar="NAME=DxD...",
              help="shape of a generated input whose dimensions are symbolic, e.g. "
                   "images=1x3x640x640 (repeatable; --inputs carry their own shapes)"),
          arg("--atol", type=float, default=1e-4, help="absolute tolerance (default 1e-4)"),
          arg("--rtol", type=float, default=1e-3, help="relative tolerance (default 1e-3)"),
          arg("--min-cosine", type=float, default=None, metavar="C",
              help="match by cosine similarity >= C instead of atol/rtol (e.g. 0.99 for int8)"),
          arg("--explain", action="store_true",
              help="show what each compiler pass did (nodes before/after, fusions, folds)"),
          arg("--timeout", type=float, default=None, help="seconds before the stack is stopped"),
          *interpreter_arguments(),
          arg("--json", action="store_true", help="print the result document as JSON")])
def run_model_command(args: argparse.Namespace) -> int:
    shapes = dict(parse_shape(text) for text in args.shape)
    if shapes and args.inputs:
        raise UsageError("--shape binds generated inputs; --inputs carry their own shapes")
    python = choose_python(args.home, args.python, args.combination, args.pin)
    document = run_model(python, args.model, args.sku, inputs=args.inputs, shapes=shapes,
                         seed=args.seed, precision=args.precision, atol=args.atol,
                         rtol=args.rtol, save_outputs=args.save_outputs, timeout=args.timeout,
                         min_cosine=args.min_cosine)
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        _print_run(document)
        if args.explain:
            _print_passes(document.get("passes") or [])
    return 0 if document["match"] else 1


def _print_passes(passes: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("pass", "nodes before", "nodes after", "seconds", "what it did",
                  title="compiler passes")
    for entry in passes:
        table.add_row(str(entry.get("name")), str(entry.get("nodes_before")),
                      str(entry.get("nodes_after")), _figure(entry.get("seconds")),
                      "; ".join(entry.get("changes") or []) or "-")
    Console().print(table)


def _print_run(document: dict) -> None:
    from rich.console import Console
    from rich.table import Column, Table

    console = Console()
    simulated = document.get("simulated") or {}
    verdict = "[green]match[/green]" if document["match"] else "[red]MISMATCH[/red]"
    console.print(f"{document['model']} on {document['sku']} ({document.get('precision')}): "
                  f"{verdict}  atol {document['tolerance']['atol']:g} "
                  f"rtol {document['tolerance']['rtol']:g}")
    outputs = Table(Column("output", no_wrap=True), "shape", "dtype", "max abs error",
                    "max rel error", "match")
    for entry in document["outputs"]:
        outputs.add_row(entry["name"], str(entry["shape"]), entry["dtype"],
                        _figure(entry["max_abs_error"]), _figure(entry["max_rel_error"]),
                        "yes" if entry["match"] else f"[red]no[/red] {entry.get('reason', '')}")
    console.print(outputs)
    if simulated:
        console.print(f"simulated: {simulated.get('total_cycles')} cycles, "
                      f"{_figure(simulated.get('latency_us'))} us at "
                      f"{simulated.get('clock_ghz')} GHz, peak device memory "
                      f"{simulated.get('peak_device_bytes')} bytes; compile "
                      f"{_figure(document.get('compile_s'))} s, "
                      f"run {_figure(document.get('run_s'))} s")
    ops = sorted(simulated.get("ops") or [], key=lambda op: op.get("cycles", 0), reverse=True)
    if ops:
        total = sum(op.get("cycles", 0) for op in ops) or 1
        table = Table("op", "type", "kernel", "cycles", "share", "util",
                      title=f"top {min(TOP_OPS, len(ops))} of {len(ops)} ops by cycles")
        for op in ops[:TOP_OPS]:
            util = op.get("array_utilization")
            table.add_row(str(op.get("name")), str(op.get("op_type")), str(op.get("kernel")),
                          str(op.get("cycles")), f"{100 * op.get('cycles', 0) / total:.1f}%",
                          "-" if util is None else f"{100 * util:.0f}%")
        console.print(table)


def _figure(value) -> str:
    return "-" if value is None else f"{value:.3g}"


@command("skus", "list the hardware SKUs of the stack's driver",
         [*interpreter_arguments(),
          arg("--json", action="store_true", help="print the driver's JSON")])
def skus_command(args: argparse.Namespace) -> int:
    python = choose_python(args.home, args.python, args.combination, args.pin, "npu_driver")
    skus = StackPort().skus(python)
    if args.json:
        print(json.dumps(skus, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Column, Table

    table = Table(Column("name", no_wrap=True), "cores", "array", "dataflow", "GHz",
                  "SRAM/core", "DRAM GB/s", "memory", "peak fp32 TOPS")
    for sku in skus:
        table.add_row(sku["name"], str(sku["cores"]), f"{sku['array_rows']}x{sku['array_cols']}",
                      sku["dataflow"], f"{sku['clock_ghz']:g}", _bytes(sku["sram_bytes"]),
                      f"{sku['dram_bandwidth_gbps']:g}", _bytes(sku["device_memory_bytes"]),
                      f"{sku.get('peak_tops', {}).get('fp32', 0):.2f}")
    Console().print(table)
    return 0


def _bytes(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:g} {unit}" if unit == "B" else f"{count:.0f} {unit}"
        count /= 1024
