"""`python -m npu_driver`: list SKUs and price single operations on the cost model."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import yaml

from . import perf
from .errors import DriverError
from .sku import SKU, list_skus, load_sku

PROG = "npu-driver"


class UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    # argparse prints the usage block and exits; we want the project's one-line error instead.
    def error(self, message: str):
        raise UsageError(message)


def sku_summary(sku: SKU) -> dict[str, Any]:
    """Every SKU field plus the derived peak figures the dashboards show."""
    return {
        **sku.to_dict(),
        "peak_tops": {p: round(sku.peak_tops(p), 4) for p in sku.precisions},
        "dram_gbps": sku.dram_bandwidth_gbps,
        "sram_bytes_total": sku.sram_bytes * sku.cores,
        "pe_count": sku.array_rows * sku.array_cols * sku.cores,
    }


def _print_table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _skus(args: argparse.Namespace) -> None:
    skus = list_skus()
    if args.json:
        print(json.dumps([sku_summary(s) for s in skus], indent=2))
        return
    rows = [["name", "cores", "array", "dataflow", "clock GHz", "SRAM/core", "DRAM GB/s",
             "memory", "peak TOPS (fp32/int8)"]]
    for s in skus:
        int8 = f"{s.peak_tops('int8'):.2f}" if "int8" in s.precisions else "-"
        rows.append([s.name, str(s.cores), f"{s.array_rows}x{s.array_cols}", s.dataflow,
                     f"{s.clock_ghz:g}", _mib(s.sram_bytes), f"{s.dram_bandwidth_gbps:g}",
                     _mib(s.device_memory_bytes), f"{s.peak_tops('fp32'):.2f}/{int8}"])
    _print_table(rows)


def _mib(nbytes: int) -> str:
    return f"{nbytes / 2**30:g} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:g} MiB"


def _integers(text: str, option: str, lengths: tuple[int, ...]) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in lengths:
        expected = " or ".join(str(n) for n in lengths)
        raise UsageError(f"{option} expects {expected} comma-separated integers, got {text!r}")
    return values


def _overrides(assignments: list[str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            raise UsageError(f"--set expects KEY=VALUE, got {assignment!r}")
        if key == "array":
            rows, x, cols = value.lower().partition("x")
            if not (x and rows.isdigit() and cols.isdigit()):
                raise UsageError(f"--set array expects ROWSxCOLS (e.g. 32x32), got {value!r}")
            fields["array_rows"], fields["array_cols"] = int(rows), int(cols)
        else:
            fields[key] = yaml.safe_load(value) if value else value
    return fields


def _cost(args: argparse.Namespace) -> None:
    sku = load_sku(args.sku)
    if args.set:
        sku = sku.with_overrides(**_overrides(args.set))
    options = {"precision": args.precision, "mode": args.mode}
    if args.gemm:
        M, N, K = _integers(args.gemm, "--gemm", (3,))
        cost = perf.gemm_cost(sku, M, N, K, batch=args.batch, **options)
    else:
        n, c, h, w, k, r, s, *rest = _integers(args.conv, "--conv", (7, 8, 9))
        stride, pad = (rest + [1, 0][len(rest):])[:2]
        cost = perf.conv_cost(sku, batch=n, in_channels=c, in_h=h, in_w=w, out_channels=k,
                              kernel_h=r, kernel_w=s, stride_h=stride, stride_w=stride,
                              pad_h=pad, pad_w=pad, **options)
    result = {"sku": sku.name, "mode": args.mode, "precision": args.precision, **cost.to_dict()}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_table([[key, str(value)] for key, value in result.items()])


def _parser() -> _Parser:
    parser = _Parser(prog=PROG, description="The simulated NPU's SKUs and cost model.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    skus = commands.add_parser("skus", help="list the shipped SKUs")
    skus.add_argument("--json", action="store_true", help="print JSON instead of a table")
    skus.set_defaults(run=_skus)
    cost = commands.add_parser("cost", help="price one GEMM or convolution")
    cost.add_argument("--sku", required=True, help="SKU name or YAML path")
    cost.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="override a SKU field; also array=RxC")
    shape = cost.add_mutually_exclusive_group(required=True)
    shape.add_argument("--gemm", metavar="M,N,K")
    shape.add_argument("--conv", metavar="N,C,H,W,K,R,S[,stride[,pad]]")
    cost.add_argument("--batch", type=int, default=1, help="independent GEMMs (with --gemm)")
    cost.add_argument("--mode", choices=perf.MODES, default="realistic")
    cost.add_argument("--precision", default="fp32")
    cost.add_argument("--json", action="store_true")
    cost.set_defaults(run=_cost)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        args.run(args)
    except (UsageError, DriverError) as problem:
        print(f"{PROG}: error: {problem}", file=sys.stderr)
        return 2
    return 0
