"""Our performance model's scalesim mode and SCALE-Sim v3, side by side, layer by layer.

    python integration/fidelity/run_fidelity.py --scalesim-python /path/to/venv/bin/python \
        [--full | --layers n7,n10 | --gemms "512,512,512;1,1000,2048"] [--array 32x32 ...] \
        [--dataflow os ...] [--sram-kb 64] [--bandwidth 16] [--json OUT.json]

Both simulators get the same GEMM (ResNet-50's layers as im2col GEMMs: topologies.py), the same
array and dataflow, and the same memory: three SRAMs of --sram-kb words each and --bandwidth
words per cycle per port (SCALE-Sim's USER bandwidth mode; the SKU handed to our model is derived
so that `perf.scalesim_memory_config` gives exactly these). SCALE-Sim runs in its own interpreter
(scalesim_worker.py), one process at a time. Prints one table per array and dataflow, a summary
line, and how many times faster our model is; --json writes every figure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from topologies import Layer, parse_gemms, resnet50_layers  # noqa: E402

# The quick default (a few minutes): an early 1x1 layer with many folds and a late one with a
# long reduction. --full runs all 21 distinct layers: hours, as SCALE-Sim slows down
# quadratically with the number of SRAM refills (1x1000x2048 on a 32x32 WS array: > 7 minutes).
QUICK_LAYERS = ("n10", "n146")
DATAFLOWS = ("os", "ws", "is")
DEFAULT_ARRAYS = ("32x32", "128x128")
# Memory per array size when not given: 64 kB SRAMs and 16 words/cycle for 32x32, scaled with
# the array's edge (SCALE-Sim's own sample configs grow SRAM with the array).
DEFAULT_MEMORY = {32: (64, 16), 128: (512, 64)}


def fail(message: str) -> None:
    print(f"run_fidelity: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def parse_array(text: str) -> tuple[int, int]:
    try:
        rows, cols = (int(v) for v in text.lower().split("x"))
    except ValueError:
        fail(f"--array expects RxC (e.g. 32x32), got {text!r}")
    if rows <= 0 or cols <= 0:
        fail(f"--array dimensions must be positive, got {text!r}")
    return rows, cols


def select_layers(args) -> list[Layer]:
    if args.gemms:
        try:
            return parse_gemms(args.gemms)
        except ValueError as error:
            fail(str(error))
    layers = resnet50_layers(unique=True)
    if args.full:
        return layers
    wanted = args.layers.split(",") if args.layers else QUICK_LAYERS
    by_name = {layer.name: layer for layer in layers}
    unknown = [name for name in wanted if name not in by_name]
    if unknown:
        fail(f"--layers: unknown ResNet-50 layer(s) {', '.join(unknown)}; "
             f"known: {', '.join(by_name)}")
    return [by_name[name] for name in wanted]


def our_sku(rows: int, cols: int, dataflow: str, sram_kb: int, bandwidth: int):
    """An fp32 single-core SKU whose scalesim memory config is exactly SCALE-Sim's."""
    from npu_driver import load_sku, perf

    base = load_sku("npu-edge")
    word = base.element_bytes("fp32")
    sku = base.with_overrides(
        name=f"scalesim-{rows}x{cols}-{dataflow}", cores=1, array_rows=rows, array_cols=cols,
        dataflow=dataflow, sram_bytes=3 * sram_kb * 1024 * word,
        dram_bandwidth_gbps=bandwidth * word * base.clock_ghz)
    config = perf.scalesim_memory_config(sku)
    assert (config.ifmap_words, config.bandwidth) == (sram_kb * 1024, bandwidth), config
    return sku


def run_ours(sku, layer: Layer) -> dict:
    from npu_driver import perf

    started = time.perf_counter()
    cost = perf.gemm_cost(sku, layer.M, layer.N, layer.K, mode="scalesim")
    return {"compute_cycles": cost.compute_cycles, "stall_cycles": cost.stall_cycles,
            "total_cycles": cost.total_cycles, "seconds": time.perf_counter() - started}


def run_scalesim(python: str, job: dict):
    """Yield SCALE-Sim's result per layer as the worker finishes it."""
    process = subprocess.Popen([python, str(HERE / "scalesim_worker.py")], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    process.stdin.write(json.dumps(job))
    process.stdin.close()
    for line in process.stdout:
        yield json.loads(line)
    if process.wait() != 0:
        fail(f"SCALE-Sim worker ({python}) exited with status {process.returncode}")


def percent(ours: int, theirs: int) -> float:
    return 100.0 * (ours - theirs) / theirs if theirs else 0.0


def print_table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    header = (f"{'layer':<8} {'M':>6} {'N':>5} {'K':>5} | {'compute ours':>12} {'scalesim':>10} "
              f"{'diff':>6} | {'total ours':>11} {'scalesim':>11} {'diff %':>7} | "
              f"{'ours s':>7} {'scalesim s':>10}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['name']:<8} {r['M']:>6} {r['N']:>5} {r['K']:>5} | "
              f"{r['ours']['compute_cycles']:>12} {r['scalesim']['compute_cycles']:>10} "
              f"{r['compute_diff']:>6} | {r['ours']['total_cycles']:>11} "
              f"{r['scalesim']['total_cycles']:>11} {r['total_diff_percent']:>7.2f} | "
              f"{r['ours']['seconds']:>7.3f} {r['scalesim']['seconds']:>10.1f}")


def summarize(rows: list[dict]) -> dict:
    ours_s = sum(r["ours"]["seconds"] for r in rows)
    theirs_s = sum(r["scalesim"]["seconds"] for r in rows)
    errors = [abs(r["total_diff_percent"]) for r in rows]
    return {
        "layers": len(rows),
        "compute_exact": sum(r["compute_diff"] == 0 for r in rows),
        "total_within_5_percent": sum(e <= 5.0 for e in errors),
        "max_total_diff_percent": max(errors, default=0.0),
        "mean_total_diff_percent": sum(errors) / len(errors) if errors else 0.0,
        "ours_seconds": ours_s,
        "scalesim_seconds": theirs_s,
        "speedup": theirs_s / ours_s if ours_s else float("inf"),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="run_fidelity", description=__doc__.splitlines()[0])
    parser.add_argument("--scalesim-python", required=True,
                        help="python of an environment with scalesim==3.0.0")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--full", action="store_true", help="every distinct ResNet-50 layer")
    which.add_argument("--layers", help="ResNet-50 layers by ONNX node name, comma separated")
    which.add_argument("--gemms", help="GEMMs as M,N,K;M,N,K;...")
    parser.add_argument("--array", action="append",
                        help="RxC (repeatable; default 32x32 and 128x128)")
    parser.add_argument("--dataflow", action="append", choices=DATAFLOWS,
                        help="repeatable; default all three")
    parser.add_argument("--sram-kb", type=int, help="each SRAM, in kilo-words (default per array)")
    parser.add_argument("--bandwidth", type=int, help="DRAM words per cycle per port")
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args(argv)
    if not Path(args.scalesim_python).exists():
        fail(f"--scalesim-python {args.scalesim_python} does not exist")
    layers = select_layers(args)
    results = []
    for array in args.array or DEFAULT_ARRAYS:
        rows_, cols_ = parse_array(array)
        sram_kb, bandwidth = DEFAULT_MEMORY.get(rows_, DEFAULT_MEMORY[32])
        sram_kb, bandwidth = args.sram_kb or sram_kb, args.bandwidth or bandwidth
        if sram_kb <= 0 or bandwidth <= 0:
            fail(f"--sram-kb and --bandwidth must be positive, got {sram_kb} and {bandwidth}")
        for dataflow in args.dataflow or DATAFLOWS:
            sku = our_sku(rows_, cols_, dataflow, sram_kb, bandwidth)
            job = {"array": [rows_, cols_], "dataflow": dataflow, "bandwidth": bandwidth,
                   "sram_kb": [sram_kb] * 3, "layers": [layer.to_dict() for layer in layers]}
            table = []
            by_name = {layer.name: layer for layer in layers}
            for theirs in run_scalesim(args.scalesim_python, job):
                ours = run_ours(sku, by_name[theirs["name"]])
                table.append({**by_name[theirs["name"]].to_dict(), "array": [rows_, cols_],
                              "dataflow": dataflow, "sram_kb": sram_kb, "bandwidth": bandwidth,
                              "ours": ours, "scalesim": theirs,
                              "compute_diff": ours["compute_cycles"] - theirs["compute_cycles"],
                              "total_diff_percent": percent(ours["total_cycles"],
                                                            theirs["total_cycles"])})
            print_table(f"{rows_}x{cols_} {dataflow}, {sram_kb} kB SRAMs, {bandwidth} words/cycle",
                        table)
            results += table
    summary = summarize(results)
    print(f"\nsummary: {summary['layers']} layer runs, compute cycles exact on "
          f"{summary['compute_exact']}, total within 5% on {summary['total_within_5_percent']} "
          f"(max {summary['max_total_diff_percent']:.2f}%, mean "
          f"{summary['mean_total_diff_percent']:.2f}%); our model took "
          f"{summary['ours_seconds']:.2f} s, SCALE-Sim {summary['scalesim_seconds']:.0f} s: "
          f"{summary['speedup']:.0f}x faster")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "layers": results}, indent=1))
    return 0 if summary["total_within_5_percent"] == summary["layers"] else 1


if __name__ == "__main__":
    sys.exit(main())
