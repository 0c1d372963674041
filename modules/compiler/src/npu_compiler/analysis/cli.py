"""`python -m npu_compiler analyze | plan-diff | explore`: the analysis subcommands, added to
the compiler's parser by `add_commands` (their results are one JSON object with --json)."""

from __future__ import annotations

import sys
import time

from npu_compiler.analysis import plandiff
from npu_compiler.analysis.explore import ExploreError
from npu_compiler.errors import UsageError


def add_commands(commands) -> None:
    analyze = commands.add_parser("analyze", help="where MODEL's cycles go on SKU, and why")
    analyze.add_argument("model", help="ONNX model file")
    analyze.add_argument("--sku", required=True, help="SKU name or YAML file")
    analyze.add_argument("--precision", default="fp32")
    analyze.add_argument("--calibration", metavar="FILE.npz")
    analyze.add_argument("--batch", type=int, default=None, help="batch size to analyse")
    analyze.add_argument("--skip-pass", action="append", default=[], metavar="PASS",
                         help="compile without this pass of the default pipeline (what-if)")
    analyze.add_argument("--no-run", action="store_true",
                         help="no functional run (no utilization timeline, no launch gaps)")
    analyze.add_argument("--batch-sweep", action="store_true",
                         help="also cost batches 1, 2, 4, ... on the cost model")
    analyze.add_argument("--max-batch", type=int, default=256)
    analyze.add_argument("--latency-bound-ms", type=float, default=None,
                         help="latency bound of the Server sweet spot")
    analyze.add_argument("--save-plan", metavar="DIR", help="save the analysed plan here")
    analyze.add_argument("--json", action="store_true", help="print one JSON object")
    analyze.set_defaults(handler=command_analyze, human=human_analyze)
    diff = commands.add_parser("plan-diff", help="what changed between two compiled plans")
    diff.add_argument("a", help="plan.json (or its directory) of the earlier plan")
    diff.add_argument("b", help="plan.json (or its directory) of the later plan")
    diff.add_argument("--a-label", default="A")
    diff.add_argument("--b-label", default="B")
    diff.add_argument("--json", action="store_true")
    diff.set_defaults(handler=command_plan_diff, human=human_plan_diff)
    explore = commands.add_parser("explore", help="price compiled MODELS over design points")
    explore.add_argument("models", nargs="+", metavar="MODEL", help="ONNX model files")
    explore.add_argument("--sku", required=True, help="the base SKU the points vary")
    explore.add_argument("--vary", action="append", default=[], metavar="NAME=V1,V2",
                         help="array=32x32,64x64 sram=1MiB,4MiB dram_bandwidth=100,800 "
                              "cores=... dataflow=os,ws ...; repeatable (a grid)")
    explore.add_argument("--precision", default="fp32")
    explore.add_argument("--plan-tiles", action="store_true",
                         help="keep the plans' SRAM tiles (default: re-chosen per point)")
    explore.add_argument("--json", action="store_true")
    explore.set_defaults(handler=command_explore, human=human_explore)


def _usage(message: str):
    return UsageError(message)


def _pipeline(skipped: list[str]):
    if not skipped:
        return None
    from npu_compiler import DEFAULT_PIPELINE

    unknown = [name for name in skipped if name not in DEFAULT_PIPELINE]
    if unknown:
        raise _usage(f"--skip-pass {unknown[0]}: not a pass of the default pipeline "
                     f"({', '.join(dict.fromkeys(DEFAULT_PIPELINE))})")
    return [name for name in DEFAULT_PIPELINE if name not in skipped]


def _progress(message: str) -> None:
    print(f"npu-compiler: {message}", file=sys.stderr, flush=True)


def command_analyze(args) -> dict:
    from npu_compiler import cache
    from npu_compiler.analysis.analyze import analyze

    if args.batch is not None and args.batch < 1:
        raise _usage(f"--batch must be a positive integer, got {args.batch}")
    if args.max_batch < 1:
        raise _usage(f"--max-batch must be a positive integer, got {args.max_batch}")
    started = time.perf_counter()
    document, plan = analyze(args.model, args.sku, precision=args.precision, batch=args.batch,
                             pipeline=_pipeline(args.skip_pass), calibration=args.calibration,
                             cache_dir=cache.default_dir(), run=not args.no_run,
                             batch_sweep=args.batch_sweep, max_batch=args.max_batch,
                             latency_bound_ms=args.latency_bound_ms, progress=_progress)
    if args.save_plan:
        document["plan"] = str(plan.save(args.save_plan))
    document["model"] = str(args.model)
    document["skipped_passes"] = list(args.skip_pass)
    document["analysis_s"] = round(time.perf_counter() - started, 3)
    return document


def command_plan_diff(args) -> dict:
    try:
        a, b = plandiff.load_plan_json(args.a), plandiff.load_plan_json(args.b)
        return plandiff.plan_diff(a, b, a_label=args.a_label, b_label=args.b_label)
    except plandiff.PlanDiffError as exc:
        raise _usage(str(exc)) from None


def command_explore(args) -> dict:
    from npu_driver import load_sku

    from npu_compiler import cache
    from npu_compiler.analysis.analyze import compile_for
    from npu_compiler.analysis.explore import design_points, explore, parse_vary, prepare_plan

    base = load_sku(args.sku)
    try:
        points = design_points(base, parse_vary(args.vary)) if args.vary else [base]
    except ExploreError as exc:
        raise _usage(str(exc)) from None
    plans = []
    for index, model in enumerate(args.models):
        _progress(f"compiling {index + 1}/{len(args.models)}: {model}")
        plan = compile_for(model, base, precision=args.precision, cache_dir=cache.default_dir())
        plans.append(prepare_plan(str(model), plan, base))
    _progress(f"pricing {len(plans)} plans at {len(points)} design points")
    try:
        return explore(plans, base, points, plan_tiles=args.plan_tiles)
    except ExploreError as exc:
        raise _usage(str(exc)) from None


def _table(rows: list[list]) -> str:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def human_analyze(doc: dict) -> str:
    cycles = doc["cycles"]
    split = cycles["split"]
    lines = [f"{doc['model']} on {doc['sku']} ({doc['precision']}, batch {doc['batch']}): "
             f"{doc['modelled_cycles']} cycles, {doc['latency_us']:.1f} us "
             f"(compute {split.get('compute', 0)}, fill/drain {split.get('fill_drain', 0)}, "
             f"stall {split.get('stall', 0)})"]
    shares = doc["roofline"]["bound_share"]
    lines.append("bound share: " + ", ".join(f"{b} {100 * s:.0f}%" for b, s in shares.items()))
    bounds = {op["name"]: op["bound"] for op in doc["roofline"]["ops"]}
    rows = [["op", "type", "unit", "cycles", "share", "bound"]]
    rows += [[op["name"], op["op_type"], op["unit"], op["total"], f"{100 * op['share']:.1f}%",
              bounds.get(op["name"], "-")] for op in cycles["top_ops"]]
    lines.append(_table(rows))
    for item in doc["fusion_opportunities"][:5]:
        lines.append(f"fusion: {item['producer']} + {item['consumer']} ({item['pattern']}) "
                     f"saves {item['saving_cycles']} cycles [{item['owner']}]")
    sweep = doc.get("batch_sweep")
    if sweep:
        rows = [["batch", "latency ms", "throughput/s", "per-sample us", "array util"]]
        rows += [[p["batch"], f"{p['latency_ms']:.3f}", f"{p['throughput_per_s']:.1f}",
                  f"{p['per_sample_latency_us']:.1f}", f"{100 * p['array_utilization']:.1f}%"]
                 for p in sweep["points"]]
        lines.append(_table(rows))
        lines.append(f"sweet spots: offline {sweep['offline']}, knee {sweep['knee']}, "
                     f"server {sweep['server']} (bound {sweep['latency_bound_ms']} ms)")
    return "\n".join(lines)


def human_plan_diff(doc: dict) -> str:
    if doc["identical"]:
        return f"{doc['a']} and {doc['b']}: the same steps, fusions, kernels and layouts"
    lines = [f"{doc['a']} -> {doc['b']}: {doc['steps'][doc['a']]} -> {doc['steps'][doc['b']]} steps"]
    for f in doc["fusions_lost"]:
        lines.append(f"lost fusion at {f['step']}: {f[doc['a']]} -> {f[doc['b']]}")
    for f in doc["fusions_made"]:
        lines.append(f"new fusion at {f['step']}: {f[doc['a']]} -> {f[doc['b']]}")
    for k in doc["kernels_changed"]:
        lines.append(f"kernel at {k['step']}: {k[doc['a']]} -> {k[doc['b']]}")
    for k in doc["layouts_changed"]:
        lines.append(f"layout at {k['step']}: {k[doc['a']]} -> {k[doc['b']]}")
    return "\n".join(lines)


def human_explore(doc: dict) -> str:
    rows = [["point", "array", "cores", "SRAM", "DRAM GB/s", "cycles", "latency us", "util",
             "area", "pareto"]]
    for p in sorted(doc["points"], key=lambda p: (not p["pareto"], p["latency_us"]))[:20]:
        rows.append([p["point"], p["array"], p["cores"], p["sram_bytes"],
                     p["dram_bandwidth_gbps"], p["total_cycles"] if p["feasible"] else "-",
                     f"{p['latency_us']:.1f}", f"{100 * p['array_utilization']:.1f}%",
                     f"{p['area']:.0f}", "*" if p["pareto"] else ""])
    return (f"{len(doc['points'])} design points of {doc['base']} over {len(doc['models'])} "
            f"models, priced in {doc['pricing_seconds']} s; Pareto front of "
            f"{len(doc['pareto'])}\n" + _table(rows))
