"""FakePort's answers to `python -m npu_compiler analyze | plan-diff | explore --json`: small
documents of the stack's shapes (compiler-api 1.4), consistent in themselves (cycles add up,
the bound is the counterfactual that helps most, sweet spots follow from the points), so the
harness's stage, store and pages see what the real stack would give. The real documents are
checked on the real stack in tests/commands/test_analysis.py and tests/analysis/."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

# name, op type, unit, compute, fill/drain, stall, counterfactual cycles (x2 of each)
OPS = [("conv0", "Conv+Relu", "array", 2000, 200, 800,
        {"dram_bandwidth_x2": 2600, "sram_x2": 3000, "array_x2": 2000, "vector_x2": 3000}),
       ("gemm0", "Gemm", "array", 600, 100, 300,
        {"dram_bandwidth_x2": 700, "sram_x2": 1000, "array_x2": 1000, "vector_x2": 1000}),
       ("softmax0", "Softmax", "vector", 500, 0, 0,
        {"dram_bandwidth_x2": 500, "sram_x2": 500, "array_x2": 500, "vector_x2": 490})]
BOUNDS = {"dram_bandwidth_x2": "memory-bound", "sram_x2": "memory-bound",
          "array_x2": "array-bound", "vector_x2": "vector-bound"}
CLOCK_GHZ = 1.0


def factor(batch: int) -> Fraction:
    """Cycles at `batch` over batch 1's: sub-linear to batch 8, then linear (throughput
    saturates at 8); exact integers for every op at batches 1 to 64."""
    return Fraction(batch + 3, 4) if batch <= 8 else Fraction(11, 4) * Fraction(batch, 8)


def _scaled(value: int, batch: int) -> int:
    return int(value * factor(batch))


def total_cycles(batch: int) -> int:
    return sum(_scaled(c, batch) + _scaled(f, batch) + _scaled(s, batch)
               for _, _, _, c, f, s, _ in OPS)


def _argument(argv: list[str], name: str, default=None):
    return argv[argv.index(name) + 1] if name in argv else default


def _op(name, op_type, unit, compute, fill, stall, counterfactual):
    cycles = compute + fill + stall
    helped = min(counterfactual, key=counterfactual.get)
    gain = (cycles - counterfactual[helped]) / cycles
    return {"name": name, "op_type": op_type, "unit": unit, "kernel": op_type.split("+")[0],
            "cycles": cycles, "operations": compute * 64, "bytes": stall * 32 + 1,
            "intensity": compute * 64 / (stall * 32 + 1), "achieved_ops_per_cycle": 64.0 * compute
            / cycles, "counterfactual_cycles": counterfactual,
            "bound": BOUNDS[helped] if gain >= 0.05 else "latency-bound",
            "helped_by": helped if gain >= 0.05 else None, "gain": gain,
            "roofline_bound": "memory-bound" if stall else "vector-bound"}


def analyze(argv: list[str], skipped: bool = False) -> dict:
    sku, precision = _argument(argv, "--sku"), _argument(argv, "--precision", "fp32")
    batch = int(_argument(argv, "--batch", 1))
    ops = [_op(*op) for op in OPS]
    total = total_cycles(batch)
    layers = [{"name": n, "op_type": t, "unit": u, "kernel": t, "compute": _scaled(c, batch),
               "fill_drain": _scaled(f, batch), "stall": _scaled(s, batch),
               "total": _scaled(c, batch) + _scaled(f, batch) + _scaled(s, batch)}
              for n, t, u, c, f, s, _ in OPS]
    split = {k: sum(layer[k] for layer in layers) for k in ("compute", "fill_drain", "stall")}
    base = sum(op["cycles"] for op in ops)
    shares = {b: sum(op["cycles"] for op in ops if op["bound"] == b) / base
              for b in ("array-bound", "vector-bound", "memory-bound", "latency-bound")}
    doc = {"model": argv[1], "sku": sku, "precision": precision, "batch": batch,
           "steps": len(ops), "modelled_cycles": total, "latency_us": total / (CLOCK_GHZ * 1e3),
           "cycles": {"total_cycles": total, "split": {**split, "total": total},
                      "by_op_type": {layer["op_type"]: layer for layer in layers},
                      "by_unit": {u: {"total": sum(layer["total"] for layer in layers
                                                   if layer["unit"] == u)}
                                  for u in ("array", "vector")},
                      "by_layer": layers,
                      "top_ops": [{**x, "share": x["total"] / total}
                                  for x in sorted(layers, key=lambda x: -x["total"])]},
           "roofline": {"ops": ops, "bound_share": shares,
                        "counterfactual_total_cycles": {
                            k: sum(op["counterfactual_cycles"][k] for op in ops)
                            for k in BOUNDS},
                        "roofs": {"dram_bytes_per_cycle": 32.0, "sram_bytes": 1 << 20,
                                  "peak_ops_per_cycle": {precision: 1024.0},
                                  "vector_ops_per_cycle": {precision: 16.0}}},
           "fusion_opportunities": [{"producer": "gemm0", "consumer": "softmax0",
                                     "pattern": "Gemm+Softmax", "separate_cycles": 1500,
                                     "fused_cycles": 1200, "saving_cycles": 300,
                                     "dram_bytes_saved": 4096, "owner": "opslib"}]
           if skipped else [],
           "layout_opportunities": [], "below_roofline": [],
           "run": {"total_cycles": total, "latency_us": total / (CLOCK_GHZ * 1e3),
                   "timeline": {"bin_cycles": total // 4,
                                "start_cycle": [i * (total // 4) for i in range(4)],
                                "array": [0.8, 0.6, 0.2, 0.0], "dram": [0.3, 0.5, 0.1, 0.0],
                                "dma": [0.1, 0.0, 0.0, 0.2]},
                   "launch_gap_cycles": 0, "copy_cycles": 0, "copy_cycles_not_overlapped": 0,
                   "launches": len(ops)},
           "skipped_passes": []}
    if "--batch-sweep" in argv:
        doc["batch_sweep"] = sweep(int(_argument(argv, "--max-batch", 256)),
                                   _argument(argv, "--latency-bound-ms"))
    plan_dir = _argument(argv, "--save-plan")
    if plan_dir:
        Path(plan_dir).mkdir(parents=True, exist_ok=True)
        steps = [{"name": n, "op_type": t.split("+")[0], "fusion": "" if skipped else
                  "+".join(t.split("+")[1:]), "kernel": t} for n, t, *_ in OPS]
        (Path(plan_dir) / "plan.json").write_text(json.dumps({"format": "npu-plan/1",
                                                              "steps": steps}))
    return doc


def sweep(max_batch: int, bound) -> dict:
    """Latency grows sub-linearly to batch 8, then linearly: throughput saturates at 8."""
    points, batch = [], 1
    while batch <= max_batch:
        cycles = total_cycles(batch)
        latency_us = cycles / (CLOCK_GHZ * 1e3)
        points.append({"batch": batch, "cycles": cycles, "latency_us": latency_us,
                       "latency_ms": latency_us / 1e3, "throughput_per_s": batch / latency_us
                       * 1e6, "per_sample_latency_us": latency_us / batch,
                       "array_utilization": min(0.9, 0.2 * batch ** 0.5)})
        batch *= 2
    best = max(points, key=lambda p: (p["throughput_per_s"], -p["batch"]))
    within = [p for p in points if bound is None or p["latency_ms"] <= float(bound)]
    server = max(within, key=lambda p: (p["throughput_per_s"], -p["batch"]))["batch"] \
        if bound is not None and within else None
    knee = next(p for p in points if p["throughput_per_s"] >= 0.9 * best["throughput_per_s"])
    return {"points": points, "offline": best["batch"], "server": server, "knee": knee["batch"],
            "latency_bound_ms": None if bound is None else float(bound),
            "stopped": f"max batch {max_batch}"}


def plan_diff(argv: list[str]) -> dict:
    def load(path):
        path = Path(path)
        return json.loads((path / "plan.json" if path.is_dir() else path).read_text())

    a, b = load(argv[1]), load(argv[2])
    a_label, b_label = _argument(argv, "--a-label", "A"), _argument(argv, "--b-label", "B")
    lost = [{"step": x["name"], "pattern": f"{x['op_type']}+{x['fusion']}"}
            for x, y in zip(a["steps"], b["steps"]) if x["fusion"] and not y["fusion"]]
    return {"a": a_label, "b": b_label, "identical": a == b, "fusions_lost": lost,
            "fusions_made": [], "kernels_changed": [], "layouts_changed": [],
            "lost_optimizations": [{"kind": "fusion", **f} for f in lost]}


def explore(argv: list[str]) -> dict:
    models = [a for a in argv[1:] if a.endswith(".onnx")]
    points = []
    for index, factor in enumerate((0.5, 1.0, 2.0, 4.0)):
        latency = 100.0 / factor ** 0.5
        points.append({"point": index, "array": f"{int(32 * factor)}x{int(32 * factor)}",
                       "cores": 1, "sram_bytes": 1 << 20, "dram_bandwidth_gbps": 25.6,
                       "total_cycles": int(latency * 1000), "latency_us": latency,
                       "array_utilization": 0.5, "area": 1024 * factor * factor + 1e6,
                       "feasible": True, "models": {m: int(latency * 1000) // len(models)
                                                    for m in models}})
    return {"base": _argument(argv, "--sku"), "sku": _argument(argv, "--sku"),
            "precision": _argument(argv, "--precision"),
            "models": models, "points": points, "pareto": [0, 1, 2, 3],
            "base_point": points[1], "pricing_seconds": 0.01}


def answer(argv: list[str], skipped_everywhere: bool = False) -> dict:
    if argv[0] == "analyze":
        return analyze(argv, skipped=skipped_everywhere or "--skip-pass" in argv)
    if argv[0] == "plan-diff":
        return plan_diff(argv)
    if argv[0] == "explore":
        return explore(argv)
    raise ValueError(f"the fake compiler has no {argv[0]}")
