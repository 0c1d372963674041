"""How far the driver's `realistic` mode departs from its `scalesim` mode, per ResNet-50 layer.

    python modules/driver/fidelity/mode_table.py [--sku npu-edge ...] [--json OUT.json]

Prints a Markdown table per SKU (the one in modules/driver/README.md) with both modes' compute
and total cycles and the reason the largest part of the difference comes from:
- fold overlap: realistic mode pipelines the folds of a tile (fill and drain paid once per tile);
- double buffering: realistic mode streams SRAM tiles against compute, while SCALE-Sim refills
  half an SRAM only when the array asks for a word that is not there, and re-reads operands that
  do not fit from DRAM on every pass;
- first load, latency: realistic mode pays DRAM latency, the first tile's load and the last
  tile's store in full; SCALE-Sim starts with its SRAMs already filled and never waits on DRAM
  when everything fits.
Both modes split a layer over the cores the same way (by M, N or batch); in scalesim mode each
core's three ports each get 1/cores of the DRAM bandwidth.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from topologies import resnet50_layers  # noqa: E402


def compare(sku, layer) -> dict:
    from npu_driver import perf

    scalesim = perf.gemm_cost(sku, layer.M, layer.N, layer.K, mode="scalesim")
    realistic = perf.gemm_cost(sku, layer.M, layer.N, layer.K, mode="realistic")
    fold_overlap = scalesim.compute_cycles - realistic.compute_cycles
    memory = scalesim.stall_cycles - realistic.stall_cycles
    if abs(fold_overlap) > abs(memory):
        reason = "fold overlap"
    elif memory > 0:
        reason = "double buffering"
    else:
        reason = "first load, latency"
    return {"layer": layer.name, "M": layer.M, "N": layer.N, "K": layer.K,
            "scalesim_compute": scalesim.compute_cycles, "scalesim_total": scalesim.total_cycles,
            "realistic_compute": realistic.compute_cycles,
            "realistic_total": realistic.total_cycles,
            "ratio": realistic.total_cycles / scalesim.total_cycles, "reason": reason}


def markdown(sku, rows: list[dict]) -> str:
    lines = [f"`{sku.name}` ({sku.cores} core(s), {sku.array_rows}x{sku.array_cols} "
             f"{sku.dataflow}, {sku.sram_bytes // 1024} KiB SRAM per core, "
             f"{sku.dram_bandwidth_gbps:g} GB/s):", "",
             "| layer | M | N | K | scalesim compute | scalesim total | realistic compute "
             "| realistic total | realistic / scalesim | mostly |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        lines.append(f"| {r['layer']} | {r['M']} | {r['N']} | {r['K']} | {r['scalesim_compute']:,} "
                     f"| {r['scalesim_total']:,} | {r['realistic_compute']:,} "
                     f"| {r['realistic_total']:,} | {r['ratio']:.2f} | {r['reason']} |")
    total_s = sum(r["scalesim_total"] for r in rows)
    total_r = sum(r["realistic_total"] for r in rows)
    lines.append(f"| **all {len(rows)}** | | | | | {total_s:,} | | {total_r:,} "
                 f"| {total_r / total_s:.2f} | |")
    return "\n".join(lines)


def main(argv=None) -> int:
    from npu_driver import load_sku

    parser = argparse.ArgumentParser(prog="mode_table", description=__doc__.splitlines()[0])
    parser.add_argument("--sku", action="append", help="repeatable; default npu-edge and npu-dc")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    layers = resnet50_layers(unique=True)
    report = {}
    for name in args.sku or ("npu-edge", "npu-dc"):
        sku = load_sku(name)
        rows = [compare(sku, layer) for layer in layers]
        report[name] = rows
        print(markdown(sku, rows), end="\n\n")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
