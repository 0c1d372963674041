"""A load generator for KServe v2 / Triton servers, in the manner of Triton's perf_analyzer
(which cannot be installed here): closed-loop concurrency and open-loop request rates (constant
or Poisson arrivals), measurement windows repeated until stable, latency percentiles,
throughput, the server's queue and compute breakdown from its statistics extension, and CSV in
perf_analyzer's columns.

It is a client of the server over HTTP (tritonclient): it never imports the server's code;
`stackci.stack.server.ServerProcess` starts `python -m npu_serving` of a built environment.
"""

from stackci.loadgen.measure import Measurement, Settings, measure_concurrency, measure_rate
from stackci.loadgen.report import csv_text, write_csv

__all__ = ["Measurement", "Settings", "csv_text", "measure_concurrency", "measure_rate",
           "write_csv"]
