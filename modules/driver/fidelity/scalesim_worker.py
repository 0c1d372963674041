"""Run SCALE-Sim v3 on a list of GEMMs; executed by the SCALE-Sim interpreter, not ours.

Reads one JSON job on stdin: {"array": [rows, cols], "dataflow": "os"|"ws"|"is",
"sram_kb": [ifmap, filter, ofmap], "bandwidth": words per cycle per port,
"layers": [{"name", "M", "N", "K"}, ...]} and prints one JSON line per layer as it finishes:
{"name", "M", "N", "K", "compute_cycles", "stall_cycles", "total_cycles",
"total_cycles_with_prefetch", "seconds", "peak_rss_mb"}. Each layer runs alone so that a slow
layer reports its own wall time and a crash names the layer; peak_rss_mb is the process's peak
so far (run_fidelity.py gives every layer a process of its own, so it is that layer's).
"""

import contextlib
import csv
import io
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from scalesim.scale_sim import scalesim

CONFIG = """[general]
run_name = fidelity

[architecture_presets]
ArrayHeight : {rows}
ArrayWidth : {cols}
IfmapSramSzkB : {ifmap_kb}
FilterSramSzkB : {filter_kb}
OfmapSramSzkB : {ofmap_kb}
IfmapOffset : 0
FilterOffset : 10000000
OfmapOffset : 20000000
Bandwidth : {bandwidth}
Dataflow : {dataflow}
MemoryBanks : 1
ReadRequestBuffer : 32
WriteRequestBuffer : 32

[layout]
IfmapCustomLayout : False
IfmapSRAMBankBandwidth : {bandwidth}
IfmapSRAMBankNum : 1
IfmapSRAMBankPort : 2
FilterCustomLayout : False
FilterSRAMBankBandwidth : {bandwidth}
FilterSRAMBankNum : 1
FilterSRAMBankPort : 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth : USER
UseRamulatorTrace : False
"""


def run_layer(job: dict, layer: dict, workdir: Path) -> dict:
    rows, cols = job["array"]
    ifmap_kb, filter_kb, ofmap_kb = job["sram_kb"]
    config = workdir / "fidelity.cfg"
    config.write_text(CONFIG.format(rows=rows, cols=cols, ifmap_kb=ifmap_kb, filter_kb=filter_kb,
                                    ofmap_kb=ofmap_kb, bandwidth=job["bandwidth"],
                                    dataflow=job["dataflow"]))
    topology = workdir / "topology.csv"
    topology.write_text(f"Layer, M, N, K,\n{layer['name']}, {layer['M']}, {layer['N']}, {layer['K']},\n")
    layout = workdir / "layout.csv"
    layout.write_text("Layer,\n")
    started = time.perf_counter()
    # SCALE-Sim prints progress to stdout, which is our result channel.
    with contextlib.redirect_stdout(io.StringIO()):
        sim = scalesim(save_disk_space=True, verbose=False, config=str(config),
                       topology=str(topology), layout=str(layout), input_type_gemm=True)
        sim.run_scale(top_path=str(workdir))
    seconds = time.perf_counter() - started
    with open(workdir / "fidelity" / "COMPUTE_REPORT.csv", newline="") as report:
        row = next(csv.DictReader(report, skipinitialspace=True))
    total = int(row["Total Cycles"])
    stall = int(row["Stall Cycles"])
    return {"name": layer["name"], "M": layer["M"], "N": layer["N"], "K": layer["K"],
            "compute_cycles": total - stall, "stall_cycles": stall, "total_cycles": total,
            "total_cycles_with_prefetch": int(row["Total Cycles (incl. prefetch)"]),
            "seconds": round(seconds, 3),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}


def main() -> int:
    job = json.load(sys.stdin)
    for layer in job["layers"]:
        with tempfile.TemporaryDirectory(prefix="scalesim-") as workdir:
            print(json.dumps(run_layer(job, layer, Path(workdir))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
