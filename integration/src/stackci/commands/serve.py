"""`stackci serve-bench`: load a KServe v2 server the way perf_analyzer does (concurrency or
request-rate ranges, windows until stable) and print the table, optionally perf_analyzer's CSV.

It starts `python -m npu_serving` of the chosen stack on a model repository (or measures a
running server, `--url`), and talks to it over HTTP only."""

from __future__ import annotations

import argparse
import sys

from stackci.cli import arg, command, interpreter_arguments
from stackci.errors import UsageError
from stackci.stack.interpreter import choose_python


def parse_range(text: str, what: str, cast=int) -> list:
    """perf_analyzer's `start:end:step` (step added), or a list `1,4,16`."""
    try:
        if "," in text or ":" not in text:
            values = [cast(part) for part in text.split(",")]
        else:
            parts = [cast(part) for part in text.split(":")]
            start, end = parts[0], parts[1] if len(parts) > 1 else parts[0]
            step = parts[2] if len(parts) > 2 else 1
            if step <= 0 or end < start:
                raise ValueError
            values, value = [], start
            while value <= end:
                values.append(value)
                value += step
    except ValueError:
        raise UsageError(f"{what} {text!r}: expected start:end:step or a list like 1,4,16 "
                         "of positive numbers") from None
    if not values or any(v <= 0 for v in values):
        raise UsageError(f"{what} {text!r}: expected positive numbers")
    return values


@command("serve-bench", "measure a model served over KServe v2 like perf_analyzer: latency "
         "percentiles, throughput, server queue/compute, perf_analyzer's CSV",
         [arg("--model", "-m", required=True, help="model name in the repository"),
          arg("--model-repository", default=None, metavar="DIR",
              help="serve this repository with the stack's npu_serving for the measurement"),
          arg("--url", default=None, metavar="HOST:PORT",
              help="measure a running server instead of starting one"),
          arg("--sku", default="npu-edge", help="SKU the started server compiles for"),
          arg("--server-arg", action="append", default=[], metavar="ARG",
              help="extra argument of the started server (e.g. --server-arg=--pace-device-time)"),
          arg("--concurrency-range", default=None, metavar="START:END:STEP",
              help="closed-loop concurrency levels (default 1)"),
          arg("--request-rate-range", default=None, metavar="START:END:STEP",
              help="open-loop request rates per second instead of concurrency"),
          arg("--request-distribution", default="constant", choices=["constant", "poisson"]),
          arg("--batch-size", "-b", type=int, default=1),
          arg("--shape", action="append", default=[], metavar="NAME:D1,D2,...",
              help="the shape sent for an input with variable dimensions (past the batch "
                   "dimension of a batching model), as perf_analyzer's; repeatable"),
          arg("--input-data", default="random", metavar="random|zero|FILE",
              help="the data sent: seeded random, zeros, or perf_analyzer's JSON input data "
                   "(one entry per request, sent in turn)"),
          arg("--measurement-interval", "-p", type=int, default=5000, metavar="MS",
              help="measurement window in milliseconds (default 5000)"),
          arg("--stability-percentage", "-s", type=float, default=10.0),
          arg("--max-trials", "-r", type=int, default=10),
          arg("--max-threads", type=int, default=64, help="senders in request-rate mode"),
          arg("--csv", "-f", default=None, metavar="FILE", help="write perf_analyzer's CSV"),
          *interpreter_arguments("npu_serving")])
def serve_bench_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    from stackci.loadgen import Settings, measure_concurrency, measure_rate, write_csv
    from stackci.loadgen.report import table

    if (args.url is None) == (args.model_repository is None):
        raise UsageError("give either --model-repository DIR (a server is started) or --url")
    if args.concurrency_range and args.request_rate_range:
        raise UsageError("--concurrency-range and --request-rate-range exclude each other")
    if args.batch_size <= 0 or args.measurement_interval <= 0 or args.max_trials <= 0:
        raise UsageError("--batch-size, --measurement-interval and --max-trials must be > 0")
    rates = parse_range(args.request_rate_range, "--request-rate-range", float) \
        if args.request_rate_range else None
    levels = parse_range(args.concurrency_range or "1", "--concurrency-range")
    shapes = tuple(parse_shape(text) for text in args.shape)
    console = Console(stderr=True)

    def run(url: str) -> list:
        settings = Settings(url, args.model, args.batch_size, args.measurement_interval / 1e3,
                            args.stability_percentage, max_trials=args.max_trials,
                            max_threads=args.max_threads, distribution=args.request_distribution,
                            shapes=shapes, input_data=args.input_data)

        def progress(window, n):
            console.print(f"  {window.mode} {window.level:g}: window {n}: "
                          f"{window.throughput:.1f} infer/s, avg {window.avg_us / 1e3:.1f} ms")

        if rates:
            return [measure_rate(settings, rate, progress) for rate in rates]
        return [measure_concurrency(settings, level, progress) for level in levels]

    if args.url:
        results = run(args.url)
    else:
        from stackci.stack.server import ServerProcess

        with ServerProcess(choose_python(args.home, args.python, args.combination, args.pin,
                                         "npu_serving"), args.model_repository, args.sku,
                           args.server_arg) as server:
            results = run(server.url)
    Console(width=None if sys.stdout.isatty() else 160).print(
        table(results, f"{args.model} (batch {args.batch_size})"))
    if args.csv:
        write_csv(args.csv, results)
    for m in results:  # why requests failed, as perf_analyzer says it
        for message in m.error_messages:
            console.print(f"{m.mode} {m.level:g}: {m.errors} requests failed: {message}",
                          markup=False, highlight=False, soft_wrap=True)
    return 1 if any(m.errors for m in results) else 0


def parse_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """perf_analyzer's `--shape NAME:D1,D2,...` (the name may hold colons)."""
    name, _, dims = text.rpartition(":")
    try:
        shape = tuple(int(d) for d in dims.split(",")) if dims else ()
    except ValueError:
        shape = None
    if not name or shape is None or any(d <= 0 for d in shape):
        raise UsageError(f"--shape {text!r}: expected NAME:D1,D2,... with positive sizes, "
                         "e.g. --shape input:1,3,224,224")
    return name, shape
