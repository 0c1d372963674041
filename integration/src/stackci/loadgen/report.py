"""Results as perf_analyzer writes them (CSV, latencies in microseconds) and as a table."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from stackci.loadgen.measure import Measurement

# perf_analyzer's CSV columns; the first is "Request Rate" in request-rate mode. The client's
# own send and receive times are not separated from the network's here: they are 0, and
# included in "Network+Server Send/Recv" (latency minus the server's queue and compute).
COLUMNS = ["Inferences/Second", "Client Send", "Network+Server Send/Recv", "Server Queue",
           "Server Compute Input", "Server Compute Infer", "Server Compute Output",
           "Client Recv", "p50 latency", "p90 latency", "p95 latency", "p99 latency",
           "Avg latency", "request/response", "response wait"]


def _row(m: Measurement) -> list:
    level = int(m.level) if m.mode == "concurrency" else round(m.level, 3)
    return [level, round(m.throughput, 3), 0, round(m.network_us), round(m.server_queue_us),
            round(m.server_compute_input_us), round(m.server_compute_infer_us),
            round(m.server_compute_output_us), 0, round(m.p50_us), round(m.p90_us),
            round(m.p95_us), round(m.p99_us), round(m.avg_us), round(m.network_us),
            round(m.avg_us - m.network_us)]


def csv_text(measurements: list[Measurement]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    mode = measurements[0].mode if measurements else "concurrency"
    writer.writerow(["Concurrency" if mode == "concurrency" else "Request Rate"] + COLUMNS)
    for m in measurements:
        writer.writerow(_row(m))
    return out.getvalue()


def write_csv(path: str | Path, measurements: list[Measurement]) -> None:
    Path(path).write_text(csv_text(measurements))


def table(measurements: list[Measurement], title: str):
    from rich.table import Table

    mode = measurements[0].mode if measurements else "concurrency"
    result = Table("concurrency" if mode == "concurrency" else "req/s", "infer/s", "p50 ms",
                   "p90 ms", "p95 ms", "p99 ms", "avg ms", "queue ms", "compute ms",
                   "avg batch", "errors", "windows", title=title)
    for m in measurements:
        compute = m.server_compute_input_us + m.server_compute_infer_us + \
            m.server_compute_output_us
        result.add_row(f"{m.level:g}", f"{m.throughput:.1f}", *(f"{v / 1e3:.1f}" for v in (
            m.p50_us, m.p90_us, m.p95_us, m.p99_us, m.avg_us, m.server_queue_us, compute)),
            f"{m.avg_batch:.1f}", str(m.errors),
            f"{m.windows}{'' if m.stable else ' (unstable)'}")
    return result
