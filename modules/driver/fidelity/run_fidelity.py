"""Our performance model's scalesim mode and SCALE-Sim v3, side by side, layer by layer.

    python modules/driver/fidelity/run_fidelity.py --scalesim-python /path/to/venv/bin/python \
        [--full | --layers n7,n10 | --gemms "512,512,512;1,1000,2048"] [--array 32x32 ...] \
        [--dataflow os ...] [--sram-kb 64] [--bandwidth 16] [--json OUT.json] \
        [--checkpoint FILE.jsonl] [--jobs N]

Both simulators get the same GEMM (ResNet-50's layers as im2col GEMMs: topologies.py), the same
array and dataflow, and the same memory: three SRAMs of --sram-kb words each and --bandwidth
words per cycle per port (SCALE-Sim's USER bandwidth mode; the SKU handed to our model is derived
so that `perf.scalesim_memory_config` gives exactly these). SCALE-Sim runs in its own interpreter
(scalesim_worker.py), one process per layer run, --jobs of them at once. Prints a progress line
per finished layer run, then one table per array and dataflow, a summary line, and how many
times faster our model is; --json writes every figure.

Every finished row goes to a checkpoint (OUT.partial.jsonl beside --json) the moment it is
known. Rerunning the same command after a kill or a crash simulates only the rows missing from
it; the checkpoint is removed once --json is written. Our model is rerun on every row (it takes
milliseconds), so a resumed table always compares the model as it is now.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from checkpoint import Checkpoint, CheckpointError, row_key  # noqa: E402
from topologies import Layer, parse_gemms, resnet50_layers  # noqa: E402
from workers import WorkerFailed, WorkerPool  # noqa: E402

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


@dataclass(frozen=True)
class LayerRun:
    """One row of the table: a layer on one array, dataflow and memory."""

    layer: Layer
    rows: int
    cols: int
    dataflow: str
    sram_kb: int
    bandwidth: int

    def settings(self) -> dict:
        return {**self.layer.to_dict(), "array": [self.rows, self.cols],
                "dataflow": self.dataflow, "sram_kb": self.sram_kb, "bandwidth": self.bandwidth}

    @property
    def key(self) -> tuple:
        return row_key(self.settings())

    @property
    def title(self) -> str:
        return f"{self.layer.name} {self.rows}x{self.cols} {self.dataflow}"

    def job(self) -> dict:
        """scalesim_worker.py's input for this run alone."""
        return {"array": [self.rows, self.cols], "dataflow": self.dataflow,
                "bandwidth": self.bandwidth, "sram_kb": [self.sram_kb] * 3,
                "layers": [self.layer.to_dict()]}

    def row(self, ours: dict, theirs: dict) -> dict:
        return {**self.settings(), "ours": ours, "scalesim": theirs,
                "compute_diff": ours["compute_cycles"] - theirs["compute_cycles"],
                "total_diff_percent": percent(ours["total_cycles"], theirs["total_cycles"])}


def plan_runs(args, layers: list[Layer]) -> list[LayerRun]:
    """Every layer run, in table order: by array, then dataflow, then layer."""
    runs = []
    for array in args.array or DEFAULT_ARRAYS:
        rows, cols = parse_array(array)
        sram_kb, bandwidth = DEFAULT_MEMORY.get(rows, DEFAULT_MEMORY[32])
        sram_kb, bandwidth = args.sram_kb or sram_kb, args.bandwidth or bandwidth
        if sram_kb <= 0 or bandwidth <= 0:
            fail(f"--sram-kb and --bandwidth must be positive, got {sram_kb} and {bandwidth}")
        for dataflow in args.dataflow or DATAFLOWS:
            runs += [LayerRun(layer, rows, cols, dataflow, sram_kb, bandwidth)
                     for layer in layers]
    return runs


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


def run_ours_all(runs: list[LayerRun]) -> dict[tuple, dict]:
    skus = {}
    ours = {}
    for run in runs:
        memory = (run.rows, run.cols, run.dataflow, run.sram_kb, run.bandwidth)
        if memory not in skus:
            skus[memory] = our_sku(*memory)
        ours[run.key] = run_ours(skus[memory], run.layer)
    return ours


def estimated_work(run: LayerRun, ours: dict) -> float:
    """SCALE-Sim's time, up to a factor: it builds per-cycle operand matrices as wide as the
    array's edges over the compute cycles (stall cycles cost it little: on ResNet-50 with a
    32x32 array it spends 140-240 us per compute cycle, 30-100 us per total cycle)."""
    return max(ours["compute_cycles"], 1) * (run.rows + run.cols)


def scalesim_result(run: LayerRun, lines: list[dict]) -> dict:
    if len(lines) != 1 or lines[0].get("name") != run.layer.name:
        raise WorkerFailed(f"SCALE-Sim worker printed {len(lines)} result(s), expected one for "
                           f"layer {run.layer.name}")
    return lines[0]


def clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"


class Progress:
    """A `k/total` line per finished layer run, with an ETA from the estimated work left."""

    def __init__(self, total: int, done: int, work: dict[tuple, float]):
        self.total, self.done = total, done
        self.work = work
        self.work_done, self.work_left = 0.0, sum(work.values())
        self.started = time.monotonic()

    def _advance(self, run: LayerRun) -> tuple[str, str]:
        self.done += 1
        self.work_done += self.work[run.key]
        self.work_left -= self.work[run.key]
        elapsed = time.monotonic() - self.started
        eta = elapsed * self.work_left / self.work_done if self.work_done else 0.0
        width = len(str(self.total))
        return (f"[{self.done:>{width}}/{self.total}] {run.title:<22}",
                f"elapsed {clock(elapsed)}, ETA {clock(eta)}")

    def finished(self, run: LayerRun, row: dict) -> str:
        head, tail = self._advance(run)
        return (f"{head} compute diff {row['compute_diff']:+d}, total "
                f"{row['total_diff_percent']:+.2f}% (SCALE-Sim {row['scalesim']['seconds']:.1f} s)"
                f" | {tail}")

    def failed(self, run: LayerRun, failure: WorkerFailed) -> str:
        head, tail = self._advance(run)
        return f"{head} FAILED: {failure} | {tail}"


def say(line: str) -> None:
    print(line, flush=True)  # the log of a background run shows each line as it happens


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
        # What one SCALE-Sim process needed at most: how many --jobs the memory allows.
        "scalesim_peak_rss_mb": max((r["scalesim"].get("peak_rss_mb", 0) for r in rows),
                                    default=0),
    }


def parse_args(argv):
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
    parser.add_argument("--checkpoint", type=Path,
                        help="JSONL file of finished rows, to resume from (default: beside "
                             "--json, OUT.partial.jsonl; none without --json)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="SCALE-Sim processes at once (default 1); each holds up to a few GB "
                             "on the biggest layers: the summary's scalesim_peak_rss_mb says how "
                             "much, keep N times that under the free memory")
    args = parser.parse_args(argv)
    if not Path(args.scalesim_python).exists():
        fail(f"--scalesim-python {args.scalesim_python} does not exist")
    if args.jobs < 1:
        fail(f"--jobs must be at least 1, got {args.jobs}")
    if args.checkpoint is None and args.json is not None:
        args.checkpoint = args.json.with_suffix(".partial.jsonl")
    return args


def print_summary(summary: dict) -> None:
    print(f"\nsummary: {summary['layers']} layer runs, compute cycles exact on "
          f"{summary['compute_exact']}, total within 5% on {summary['total_within_5_percent']} "
          f"(max {summary['max_total_diff_percent']:.2f}%, mean "
          f"{summary['mean_total_diff_percent']:.2f}%); our model took "
          f"{summary['ours_seconds']:.2f} s, SCALE-Sim {summary['scalesim_seconds']:.0f} s: "
          f"{summary['speedup']:.0f}x faster; the largest SCALE-Sim process took "
          f"{summary['scalesim_peak_rss_mb']} MB")


def write_json(path: Path, document: dict) -> None:
    """Atomically: a kill while writing leaves the previous file, never half of one."""
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(document, indent=1))
    os.replace(partial, path)


def simulate(args, runs: list[LayerRun], checkpoint: Checkpoint) -> list[dict]:
    """Every run's row, from the checkpoint or from SCALE-Sim, in table order."""
    done = checkpoint.open()
    ours = run_ours_all(runs)
    rows = {run.key: run.row(ours[run.key], done[run.key]["scalesim"])
            for run in runs if run.key in done}
    pending = [run for run in runs if run.key not in rows]
    work = {run.key: estimated_work(run, ours[run.key]) for run in pending}
    if args.jobs > 1:
        pending.sort(key=lambda run: -work[run.key])  # longest first: the shortest tail
    say(f"{len(runs)} layer runs: {len(rows)} already in checkpoint {checkpoint.path}, "
        f"{len(pending)} to simulate with {args.jobs} SCALE-Sim process(es)"
        + (f"; ignored {len(done) - len(rows)} checkpoint row(s) of other settings"
           if len(done) > len(rows) else "")
        + ("; dropped a torn last line" if checkpoint.dropped_torn_line else ""))
    progress = Progress(len(runs), len(rows), work)
    failures = []

    def finished(run: LayerRun, outcome) -> None:
        try:
            if isinstance(outcome, WorkerFailed):
                raise outcome
            row = run.row(ours[run.key], scalesim_result(run, outcome))
        except WorkerFailed as failure:
            failures.append(f"{run.title}: {failure}")
            say(progress.failed(run, failure))
            return
        checkpoint.append(row)
        rows[run.key] = row
        say(progress.finished(run, row))

    WorkerPool(args.scalesim_python, args.jobs).map(pending, LayerRun.job, finished)
    if failures:
        fail(f"{len(failures)} layer run(s) failed ({'; '.join(failures)}); "
             f"{kept(checkpoint, len(rows))}")
    return [rows[run.key] for run in runs]


def kept(checkpoint: Checkpoint, finished: int | None = None) -> str:
    if checkpoint.path is None:
        return "nothing was kept (no --json or --checkpoint)"
    what = "the finished rows are" if finished is None else f"the {finished} finished are"
    return f"{what} kept in {checkpoint.path}: rerun the same command to resume"


def interrupt(_signum, _frame):
    raise KeyboardInterrupt  # unwinds like Ctrl-C: through the pool, which kills its processes


def main(argv=None) -> int:
    args = parse_args(argv)
    runs = plan_runs(args, select_layers(args))
    checkpoint = Checkpoint(args.checkpoint)
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        results = simulate(args, runs, checkpoint)
    except CheckpointError as error:
        fail(str(error))
    except KeyboardInterrupt:
        print(f"run_fidelity: stopped; {kept(checkpoint)}", file=sys.stderr)
        return 130
    finally:
        checkpoint.close()
        signal.signal(signal.SIGTERM, previous)
    for _, group in itertools.groupby(results, key=lambda r: (r["array"], r["dataflow"],
                                                              r["sram_kb"], r["bandwidth"])):
        table = list(group)
        first = table[0]
        print_table(f"{first['array'][0]}x{first['array'][1]} {first['dataflow']}, "
                    f"{first['sram_kb']} kB SRAMs, {first['bandwidth']} words/cycle", table)
    summary = summarize(results)
    print_summary(summary)
    if args.json:
        write_json(args.json, {"summary": summary, "layers": results})
        checkpoint.remove()
        print(f"wrote {args.json} (checkpoint {checkpoint.path} removed)")
    return 0 if summary["total_within_5_percent"] == summary["layers"] else 1


if __name__ == "__main__":
    sys.exit(main())
