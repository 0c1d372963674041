"""The batch-size sweet spot: a model compiled at batch 1, 2, 4, ... (up to what device memory
holds) and costed on the cost model from each plan, with no functional execution; then the
best batch under a latency bound (MLPerf Server), the throughput-optimal one (Offline) and the
knee of the throughput curve."""

from __future__ import annotations

from npu_compiler.analysis.pricing import io_cost, price_steps

DEFAULT_MAX_BATCH = 256
KNEE_FRACTION = 0.9  # the knee: the smallest batch reaching this share of the best throughput


def plan_point(plan, sku, batch: int) -> dict:
    """Latency, throughput and utilization of one plan (one batch) on the cost model."""
    steps = price_steps(plan, sku)
    io = io_cost(plan, sku)
    cycles = io.total_cycles + sum(s.cost.total_cycles for s in steps)
    latency_us = cycles / (sku.clock_ghz * 1e3)
    pe_cycles = sum(s.cost.macs / sku.multiplier(s.key.precision) for s in steps
                    if s.cost.macs and s.key.precision in sku.precisions)
    pes = sku.array_rows * sku.array_cols * sku.cores
    memory = plan.memory or {}
    return {"batch": batch, "cycles": cycles, "latency_us": latency_us,
            "latency_ms": latency_us / 1e3,
            "throughput_per_s": batch / (latency_us * 1e-6) if latency_us else None,
            "per_sample_latency_us": latency_us / batch,
            "array_utilization": pe_cycles / (cycles * pes) if cycles else 0.0,
            "peak_device_bytes": memory.get("peak_bytes")}


def batches(max_batch: int) -> list[int]:
    found, batch = [], 1
    while batch <= max_batch:
        found.append(batch)
        batch *= 2
    return found


def batch_sweep(compile_at, sku, *, max_batch: int = DEFAULT_MAX_BATCH,
                latency_bound_ms: float | None = None, progress=None) -> dict:
    """`compile_at(batch) -> Plan` for batch 1, 2, 4, ... while the plan fits device memory."""
    points, stopped = [], f"max batch {max_batch}"
    for batch in batches(max_batch):
        if progress:
            progress(f"batch {batch}")
        try:
            plan = compile_at(batch)
        except Exception as exc:  # a batch the model cannot take (fixed shapes) ends the sweep
            if not points:
                raise
            stopped = f"batch {batch} does not compile: {' '.join(str(exc).split())}"
            break
        peak = (plan.memory or {}).get("peak_bytes")
        if peak is not None and peak > sku.device_memory_bytes:
            stopped = (f"batch {batch} needs {peak} bytes of device memory, "
                       f"{sku.name} has {sku.device_memory_bytes}")
            break
        points.append(plan_point(plan, sku, batch))
    return {"sku": sku.name, "points": points, "stopped": stopped,
            **sweet_spots(points, latency_bound_ms)}


def sweet_spots(points: list[dict], latency_bound_ms: float | None) -> dict:
    """Offline (throughput-optimal), Server (best throughput within the latency bound) and
    the knee (smallest batch with KNEE_FRACTION of the best throughput)."""
    if not points:
        return {"offline": None, "server": None, "knee": None,
                "latency_bound_ms": latency_bound_ms}
    offline = max(points, key=lambda p: (p["throughput_per_s"], -p["batch"]))
    best = offline["throughput_per_s"]
    knee = next(p for p in points if p["throughput_per_s"] >= KNEE_FRACTION * best)
    server = None
    if latency_bound_ms is not None:
        within = [p for p in points if p["latency_ms"] <= latency_bound_ms]
        server = max(within, key=lambda p: (p["throughput_per_s"], -p["batch"]))["batch"] \
            if within else None
    return {"offline": offline["batch"], "server": server, "knee": knee["batch"],
            "latency_bound_ms": latency_bound_ms}
