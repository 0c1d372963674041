"""`python -m npu_compiler`: compile and run a model on the simulated NPU (what the harness
drives), or compile it to a saved plan. Errors are one line; with --json also a JSON object."""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from npu_compiler.errors import (CompileError, InputError, ModelLoadError, UnsupportedOperator,
                                 UnsupportedPrecision, UsageError)

EXIT_OTHER, EXIT_USAGE, EXIT_UNSUPPORTED, EXIT_OUT_OF_MEMORY = 1, 2, 3, 4
WARM_RUNS = 2  # timed runs after the first; warm_run_s is the fastest


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m npu_compiler",
                     description="Compile ONNX models for the simulated NPU and run them.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="compile MODEL and run it once")
    run.add_argument("model", help="ONNX model file")
    run.add_argument("--sku", required=True, help="SKU name or YAML file")
    run.add_argument("--precision", default="fp32", help="fp32 (default), fp16, bf16 or int8")
    run.add_argument("--calibration", metavar="FILE.npz",
                     help="int8 calibration inputs by name (default: seeded random inputs)")
    run.add_argument("--no-cache", action="store_true",
                     help="compile afresh (plans are cached in $NPU_PLAN_CACHE or "
                          "~/.cache/npu-compiler)")
    run.add_argument("--explain", action="store_true",
                     help="print what each compiler pass did")
    run.add_argument("--batch", type=int, default=None, help="batch size of the inputs")
    run.add_argument("--inputs", help="npz of input arrays keyed by input name (their shapes "
                     "bind the model's symbolic dimensions)")
    _shape_argument(run)
    run.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    run.add_argument("--save-outputs", help="write the outputs to this npz, keyed by name")
    run.add_argument("--trace", help="write the Chrome trace (Perfetto) JSON here")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    compile_ = commands.add_parser("compile", help="compile MODEL to a plan directory")
    compile_.add_argument("model", help="ONNX model file")
    compile_.add_argument("--sku", required=True, help="SKU name or YAML file")
    compile_.add_argument("--precision", default="fp32")
    compile_.add_argument("--calibration", metavar="FILE.npz")
    compile_.add_argument("--batch", type=int, default=None)
    _shape_argument(compile_)
    compile_.add_argument("--out", required=True, help="directory for plan.json + constants.npz")
    compile_.add_argument("--json", action="store_true", help="print one JSON object")
    from npu_compiler.analysis.cli import add_commands  # analyze, plan-diff, explore

    add_commands(commands)
    return parser


def parse_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """NAME=1x3x640x640 -> (NAME, (1, 3, 640, 640)); NAME= is a scalar."""
    name, sep, dims = text.rpartition("=")
    try:
        if not sep or not name:
            raise ValueError
        shape = tuple(int(d) for d in dims.lower().split("x")) if dims else ()
        if any(d < 0 for d in shape):
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--shape {text!r}: expected NAME=DIMxDIM... (e.g. images=1x3x640x640)") from None
    return name, shape


def _shape_argument(parser) -> None:
    parser.add_argument("--shape", type=parse_shape, action="append", default=[],
                        metavar="NAME=1x3x640x640",
                        help="the shape of input NAME (repeatable): binds its symbolic "
                             "dimensions; the plan is specialized and cached per signature")


def random_feeds(plan, seed: int) -> dict[str, np.ndarray]:
    """Standard normal floats; integers (indices, token ids) are 0, valid for any table."""
    from npu_compiler.passes.precision import random_feeds as seeded

    return seeded(plan.inputs, seed)


def command_run(args) -> dict:
    from npu_driver import load_sku

    from npu_compiler import cache
    from npu_compiler.compile import compile_cached, read_npz
    from npu_compiler.engine import Engine

    sku = load_sku(args.sku)  # a name or a YAML file: the engine needs the same SKU object
    given = read_npz(args.inputs, "inputs") if args.inputs else None
    started = time.perf_counter()
    plan, cached = compile_cached(
        args.model, sku, precision=args.precision, batch=args.batch,
        calibration=args.calibration, cache_dir=None if args.no_cache else cache.default_dir(),
        shapes=dict(args.shape),
        feed_shapes={n: a.shape for n, a in given.items()} if given else None)
    compile_s = time.perf_counter() - started
    feeds = given if given is not None else random_feeds(plan, args.seed)
    started = time.perf_counter()
    engine = Engine(plan, sku=sku)
    outputs, profile = engine.run(feeds)
    run_s = time.perf_counter() - started
    if args.save_outputs:
        np.savez(args.save_outputs, **outputs)
    if args.trace:
        engine.ctx.timeline.save(args.trace)
    # Runs as a served model runs (engine built, weights prepacked, arena touched): what
    # compares with onnxruntime's warmed-up session. The faster of two, as machine load only
    # ever adds time.
    warm_run_s = min(_timed_run(engine, feeds) for _ in range(WARM_RUNS))
    return {
        "model": str(args.model), "sku": engine.ctx.sku.name, "precision": args.precision,
        "compile_s": round(compile_s, 6), "run_s": round(run_s, 6),
        "warm_run_s": round(warm_run_s, 6),
        "outputs": [{"name": n, "shape": list(a.shape), "dtype": a.dtype.name}
                    for n, a in outputs.items()],
        "simulated": {"total_cycles": profile["total_cycles"],
                      "latency_us": profile["latency_us"],
                      "batch": profile["batch"],
                      "throughput_per_s": profile["throughput_per_s"],
                      "clock_ghz": profile["clock_ghz"],
                      "peak_device_bytes": profile["peak_device_bytes"],
                      "ops": profile["ops"]},
        "memory": {k: v for k, v in plan.memory.items() if k != "offsets"},
        "plan_cache": cached,
        "passes": plan.pass_log,
        "explain": bool(args.explain),
    }


def _timed_run(engine, feeds) -> float:
    started = time.perf_counter()
    engine.run(feeds)
    return time.perf_counter() - started


def command_compile(args) -> dict:
    from npu_compiler.compile import compile_model

    started = time.perf_counter()
    plan = compile_model(args.model, args.sku, precision=args.precision, batch=args.batch,
                         calibration=args.calibration, shapes=dict(args.shape))
    compile_s = time.perf_counter() - started
    out = plan.save(args.out)
    return {"model": str(args.model), "sku": plan.sku, "precision": plan.precision,
            "compile_s": round(compile_s, 6), "plan": str(out), "steps": len(plan.steps),
            "passes": plan.pass_log}


def _human(result: dict) -> str:
    if "simulated" not in result:
        return f"compiled {result['model']} for {result['sku']}: {result['steps']} steps -> " \
               f"{result['plan']}"
    sim = result["simulated"]
    lines = [f"{result['model']} on {result['sku']} ({result['precision']}): "
             f"{sim['total_cycles']} cycles, {sim['latency_us']:.1f} us, peak device memory "
             f"{sim['peak_device_bytes']} bytes; compile {result['compile_s']:.2f} s, "
             f"run {result['run_s']:.2f} s"]
    lines += [f"  output {o['name']}: {o['shape']} {o['dtype']}" for o in result["outputs"]]
    memory = result.get("memory") or {}
    if memory:
        lines.append(f"  memory plan: {memory['arena_bytes']}-byte arena for intermediates "
                     f"({memory['unplanned_bytes']} without reuse), peak {memory['peak_bytes']}"
                     f" bytes; plan cache {result.get('plan_cache')}")
    if result.get("explain"):
        lines.append(explain_table(result["passes"]))
    return "\n".join(lines)


def explain_table(pass_log: list[dict]) -> str:
    """What each pass did, one row per pass: nodes before and after, and its notes."""
    rows = [("pass", "nodes", "ms", "what it did")]
    for entry in pass_log:
        rows.append((entry["name"], f"{entry['nodes_before']} -> {entry['nodes_after']}",
                     f"{1000 * entry.get('seconds', 0):.1f}",
                     "; ".join(entry.get("changes") or []) or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths))
                     + "  " + row[3])
        if index == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 11)
    return "\n".join(lines)


def classify(exc: BaseException) -> tuple[str, int]:
    """(kind, exit code) of an error."""
    from npu_driver import OutOfDeviceMemory, UnknownSKU
    from npu_driver.errors import InvalidSKU

    if isinstance(exc, UsageError):
        return "usage", EXIT_USAGE
    if isinstance(exc, (ModelLoadError, UnknownSKU, InvalidSKU)):
        return "bad_input", EXIT_USAGE
    if isinstance(exc, InputError):
        return "bad_input", EXIT_USAGE
    if isinstance(exc, UnsupportedPrecision):
        return "unsupported_precision", EXIT_USAGE
    if isinstance(exc, UnsupportedOperator):
        return "unsupported_operator", EXIT_UNSUPPORTED
    if isinstance(exc, OutOfDeviceMemory):
        return "out_of_memory", EXIT_OUT_OF_MEMORY
    if isinstance(exc, CompileError):
        return "compile_error", EXIT_OTHER
    return "error", EXIT_OTHER


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    want_json = "--json" in argv
    try:
        args = build_parser().parse_args(argv)
        handler = getattr(args, "handler", None)
        result = handler(args) if handler else \
            command_run(args) if args.command == "run" else command_compile(args)
    except Exception as exc:  # every failure ends as one line (and JSON), never a traceback
        kind, code = classify(exc)
        message = " ".join(str(exc).split()) or type(exc).__name__
        if kind == "error":
            message = f"{type(exc).__name__}: {message}"
        print(f"npu-compiler: error: {message}", file=sys.stderr)
        if want_json:
            print(json.dumps({"error": message, "kind": kind}))
        return code
    print(json.dumps(result) if args.json else getattr(args, "human", _human)(result))
    return 0
