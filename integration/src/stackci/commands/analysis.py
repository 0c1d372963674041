"""Commands for the architecture team: `analyze`, `explore`, `advice`.

The stack does the analysis (`python -m npu_compiler analyze | explore | plan-diff --json` in
the combination's interpreter; the harness never imports module code); the harness prepares the
suite's models, keeps the documents (stackci.analysis.records) and turns them into advice routed
by the OWNERS file (stackci.analysis.advice).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stackci.analysis import advise, load_owners, markdown_by_team, steps
from stackci.analysis import records
from stackci.analysis.advice import suite_time_us
from stackci.cli import arg, command, db_argument, interpreter_arguments
from stackci.errors import UsageError
from stackci.results.store import Store
from stackci.stack.interpreter import choose_python
from stackci.stack.port import StackPort
from stackci.workspace import Workspace
from stackci.workloads.suite import TIERS

PRECISIONS = ["fp32", "fp16", "bf16", "int8"]
_SUITE = arg("--suite", default=None, metavar="SUITE.yaml",
             help="suite manifest (default: workloads/suite.yaml of the repository)")


def analysis_dir(ws: Workspace) -> Path:
    return ws.home / "analysis"


def open_store(ws: Workspace, url: str | None) -> Store:
    """The results store, with the JSON files older harnesses kept imported into it once."""
    store = Store.open(ws, url)
    records.import_files(store, analysis_dir(ws))
    return store


def _workload(args, suite_path, name: str, precision: str | None):
    from stackci.workloads.suite import load_suite

    suite = load_suite(suite_path)
    workload = suite.get(name)
    if precision and precision != workload.precision:
        variant = f"{workload.model or workload.name}-{precision}"
        if variant not in suite.names() and workload.model:
            variant = f"{workload.model}-{precision}"
        workload = suite.get(variant) if variant in suite.names() else None
        if workload is None:
            raise UsageError(f"workload {name} is not run at {precision} in the suite")
    return workload


@command("analyze", "where a workload's cycles go on a SKU, what bounds them, what to change",
         [arg("workload", metavar="WORKLOAD", help="a workload of the suite (see `stackci "
                                                    "workloads list`)"),
          arg("--sku", required=True, help="hardware SKU (e.g. npu-dc) or a SKU YAML file"),
          arg("--precision", default=None, choices=PRECISIONS,
              help="default: the workload's own"),
          arg("--batch-sweep", action="store_true",
              help="also cost batches 1, 2, 4, ... and report the sweet spots"),
          arg("--max-batch", type=int, default=256),
          arg("--latency-bound-ms", type=float, default=None,
              help="the Server scenario's latency bound (default: the suite's latency_bound_ms)"),
          arg("--skip-pass", action="append", default=[], metavar="PASS",
              help="compile without this pass of the compiler's pipeline (what-if)"),
          arg("--compare-plan", default=None, metavar="DIR",
              help="a plan directory (or plan.json) of an earlier combination: diff it"),
          arg("--compare-previous", action="store_true",
              help="diff against the newest stored plan of this workload, SKU and precision"),
          arg("--label", default="current", help="this combination's label in the plan diff"),
          arg("--timeout", type=float, default=None, help="seconds before the stack is stopped"),
          _SUITE, *interpreter_arguments(), db_argument(),
          arg("--json", action="store_true", help="print the analysis document")])
def analyze_command(args: argparse.Namespace) -> int:
    from stackci.workloads.prepare import prepare

    ws = Workspace.discover(args.home)
    workload = _workload(args, args.suite, args.workload, args.precision)
    store = open_store(ws, args.db)
    model = prepare(ws, workload).model_path
    python = choose_python(args.home, args.python, args.combination, args.pin)
    port = StackPort()
    sku_name = Path(args.sku).stem if args.sku.endswith((".yaml", ".yml")) else args.sku
    plan_dir = analysis_dir(ws) / "plans" / args.label / f"{workload.name}__{sku_name}"
    bound = args.latency_bound_ms if args.latency_bound_ms is not None \
        else workload.latency_bound_ms
    doc = steps.analyze(port, python, model, sku=args.sku, precision=workload.precision,
                        batch=workload.batch, plan_dir=plan_dir, batch_sweep=args.batch_sweep,
                        max_batch=args.max_batch, latency_bound_ms=bound,
                        skip_passes=args.skip_pass, timeout=args.timeout)
    doc["workload"] = workload.name
    if doc.get("batch_sweep"):
        doc["batch_sweep"]["confirmed"] = steps.confirm_sweet_spot(
            port, python, model, sku=args.sku, precision=workload.precision,
            sweep=doc["batch_sweep"], skip_passes=args.skip_pass, timeout=args.timeout)
    earlier, earlier_label = None, None
    if args.compare_plan:
        earlier = Path(args.compare_plan)
        earlier_label = earlier.parent.name if earlier.name == "plan.json" else earlier.name
    elif args.compare_previous:
        stored = store.previous_plan(workload.name, doc["sku"], workload.precision, None)
        if stored is None:
            raise UsageError(f"no stored plan of {workload.name} on {doc['sku']} "
                             f"({workload.precision}) to compare with")
        earlier = steps.write_plan(stored["plan"], plan_dir.parent / f"stored-{stored['id']}")
        earlier_label = stored["label"] or f"analysis {stored['id']}"
    if earlier is not None:
        doc["plan_diff"] = steps.plan_diff(port, python, earlier, plan_dir, a_label=earlier_label,
                                           b_label=args.label, sku=args.sku)
    store.record_analysis(doc, label=args.label, plan=steps.read_plan(plan_dir))
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        _print_analysis(doc)
    return 0


def _print_analysis(doc: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    split = doc["cycles"]["split"]
    console.print(f"{doc['workload']} on {doc['sku']} ({doc['precision']}): "
                  f"{doc['modelled_cycles']} cycles, {doc['latency_us']:.1f} us; compute "
                  f"{split.get('compute', 0)}, fill/drain {split.get('fill_drain', 0)}, stall "
                  f"{split.get('stall', 0)}")
    shares = doc["roofline"]["bound_share"]
    console.print("bound: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in shares.items()))
    bounds = {op["name"]: op for op in doc["roofline"]["ops"]}
    table = Table("op", "type", "unit", "cycles", "share", "bound", "x2 helps",
                  title="top ops")
    for op in doc["cycles"]["top_ops"]:
        bound = bounds.get(op["name"], {})
        table.add_row(op["name"], op["op_type"], op["unit"], str(op["total"]),
                      f"{100 * op['share']:.1f}%", bound.get("bound", "-"),
                      f"{bound.get('helped_by') or '-'} ({100 * bound.get('gain', 0):.0f}%)")
    console.print(table)
    for item in doc.get("fusion_opportunities", [])[:5]:
        console.print(f"fusion {item['pattern']} at {item['producer']}: saves "
                      f"{item['saving_cycles']} cycles ({item['owner']})")
    sweep = doc.get("batch_sweep")
    if sweep:
        table = Table("batch", "latency ms", "throughput/s", "per sample us", "array util",
                      title=f"batch sweep ({sweep['stopped']})")
        for p in sweep["points"]:
            table.add_row(str(p["batch"]), f"{p['latency_ms']:.3f}",
                          f"{p['throughput_per_s']:.1f}", f"{p['per_sample_latency_us']:.1f}",
                          f"{100 * p['array_utilization']:.1f}%")
        console.print(table)
        console.print(f"sweet spots: offline {sweep['offline']}, knee {sweep['knee']}, server "
                      f"{sweep['server']} (bound {sweep['latency_bound_ms']} ms)")
        confirmed = sweep.get("confirmed")
        if confirmed:
            verdict = "matches" if confirmed["matches"] else "[red]DIFFERS[/red]"
            console.print(f"functional run at batch {confirmed['batch']}: "
                          f"{confirmed['run_cycles']} cycles, the sweep's "
                          f"{confirmed['sweep_cycles']}: {verdict}")


@command("explore", "price the suite's compiled plans over a grid of design points",
         [arg("--sku", required=True, help="the base SKU whose fields vary"),
          arg("--vary", action="append", default=[], metavar="NAME=V1,V2",
              help="array=32x32,64x64 sram=1MiB,4MiB dram_bandwidth=400,800 ...; repeatable"),
          arg("--tier", default="smoke", choices=TIERS),
          arg("--workload", action="append", default=[], metavar="NAME",
              help="only these workloads (default: every one of the tier at --precision)"),
          arg("--precision", default="fp32", choices=PRECISIONS),
          arg("--plan-tiles", action="store_true",
              help="keep the plans' SRAM tiles (default: re-chosen at each point)"),
          arg("--name", default=None, help="name the stored sweep (default: SKU and axes)"),
          arg("--timeout", type=float, default=None),
          _SUITE, *interpreter_arguments(), db_argument(),
          arg("--json", action="store_true", help="print the sweep document")])
def explore_command(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from stackci.workloads.prepare import prepare
    from stackci.workloads.suite import load_suite

    ws = Workspace.discover(args.home)
    chosen = [w for w in load_suite(args.suite).select(args.tier, args.workload or None)
              if w.precision == args.precision]
    if not chosen:
        raise UsageError(f"no workloads of tier {args.tier} at {args.precision}")
    models = []
    with Progress(transient=True) as progress:
        task = progress.add_task("preparing models", total=len(chosen))
        for workload in chosen:
            models.append(str(prepare(ws, workload).model_path))
            progress.advance(task)
    python = choose_python(args.home, args.python, args.combination, args.pin)
    doc = steps.explore(StackPort(), python, {w.name: m for w, m in zip(chosen, models)},
                        sku=args.sku, precision=args.precision, vary=args.vary,
                        plan_tiles=args.plan_tiles, timeout=args.timeout)
    name = args.name or "_".join([args.sku, *args.vary]) or args.sku
    open_store(ws, args.db).record_design_sweep(doc, name=name, label="explore")
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        _print_sweep(doc)
    return 0


def _print_sweep(doc: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("point", "array", "cores", "SRAM B", "DRAM GB/s", "suite cycles",
                  "latency us", "array util", "area",
                  title=f"Pareto front: {len(doc['pareto'])} of {len(doc['points'])} points "
                        f"(priced in {doc['pricing_seconds']} s)")
    for index in doc["pareto"]:
        p = doc["points"][index]
        table.add_row(str(p["point"]), p["array"], str(p["cores"]), str(p["sram_bytes"]),
                      f"{p['dram_bandwidth_gbps']:g}", str(p["total_cycles"]),
                      f"{p['latency_us']:.1f}", f"{100 * p['array_utilization']:.1f}%",
                      f"{p['area']:.0f}")
    Console().print(table)


@command("advice", "advice for the module teams from the stored analyses, routed by OWNERS",
         [arg("--team", default=None, help="only this team's items"),
          arg("--owners", default=None, metavar="FILE",
              help="ownership file (default: OWNERS at the repository root)"),
          arg("--markdown", default=None, metavar="DIR",
              help="write one Markdown file per team here"),
          db_argument(),
          arg("--json", action="store_true", help="print the items as JSON")])
def advice_command(args: argparse.Namespace) -> int:
    ws = Workspace.discover(args.home)
    owners = load_owners(args.owners or ws.repo / "OWNERS")
    store = open_store(ws, args.db)
    docs, previous, sweeps = records.stored_inputs(store)
    if not docs:
        raise UsageError(f"no analyses stored in {store.url} "
                         "(run `stackci analyze WORKLOAD --sku SKU` first)")
    items = advise(docs, owners, sweeps=sweeps, previous=previous)
    teams = list(owners.teams())
    if args.team:
        if args.team not in teams:
            raise UsageError(f"unknown team {args.team!r} (teams in {owners.source}: "
                             f"{', '.join(teams)})")
        items = [i for i in items if i["team"] == args.team]
    if args.markdown:
        out = Path(args.markdown)
        out.mkdir(parents=True, exist_ok=True)
        pages = markdown_by_team(items, [args.team] if args.team else teams, suite_time_us(docs))
        for team, text in pages.items():
            (out / f"{team}.md").write_text(text)
    if args.json:
        print(json.dumps({"suite_us": suite_time_us(docs), "documents": len(docs),
                          "items": items}, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table("team", "gain us", "suite %", "what to change",
                  title=f"advice from {len(docs)} analyses ({suite_time_us(docs):.0f} us modelled)")
    for item in items:
        table.add_row(item["team"], f"{item['gain_us']:.1f}", f"{100 * item['gain_share']:.2f}",
                      item["change"])
    Console().print(table)
    return 0
