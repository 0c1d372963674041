"""Lost optimizations across versions: two plans (plan.json documents, the public npu-plan/1
format) diffed step by step. Pure JSON: the harness may call it on stored plans.

Steps are matched by name (a fused step keeps its producer's name; an absorbed consumer's step
exists only in the plan that did not fuse it). Reported: fusions made or lost, kernels and tile
configurations changed, layout and precision changes, steps only in one plan, and the passes
that ran in one pipeline only.
"""

from __future__ import annotations

import json
from pathlib import Path


class PlanDiffError(ValueError):
    """A plan document that is not a plan."""


def load_plan_json(path) -> dict:
    """A plan.json (or a plan directory holding one) as a dict; one-line errors."""
    path = Path(path)
    if path.is_dir():
        path = path / "plan.json"
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise PlanDiffError(f"cannot read plan {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise PlanDiffError(f"plan {path} is not JSON (line {exc.lineno}: {exc.msg})") from None
    check_plan(doc, str(path))
    return doc


def check_plan(doc, source: str) -> None:
    if not isinstance(doc, dict) or not isinstance(doc.get("steps"), list):
        raise PlanDiffError(f"{source}: not a plan document (expected an object with 'steps')")
    for index, step in enumerate(doc["steps"]):
        for key in ("name", "op_type", "fusion"):
            if not isinstance(step, dict) or key not in step:
                raise PlanDiffError(f"{source}: step {index} has no {key!r}")


def _pattern(step: dict) -> str:
    return step["op_type"] + (f"+{step['fusion']}" if step.get("fusion") else "")


def plan_diff(a: dict, b: dict, *, a_label: str = "A", b_label: str = "B") -> dict:
    """What changed from plan `a` to plan `b`. `lost` lists what `a` did and `b` does not."""
    check_plan(a, a_label)
    check_plan(b, b_label)
    steps_a = {s["name"]: s for s in a["steps"]}
    steps_b = {s["name"]: s for s in b["steps"]}
    only_a = [n for n in steps_a if n not in steps_b]
    only_b = [n for n in steps_b if n not in steps_a]
    fusions_lost, fusions_made, kernels, layouts, precisions = [], [], [], [], []
    for name in (n for n in steps_a if n in steps_b):
        sa, sb = steps_a[name], steps_b[name]
        ops_a = set(filter(None, (sa.get("fusion") or "").split("+")))
        ops_b = set(filter(None, (sb.get("fusion") or "").split("+")))
        if sa.get("fusion") != sb.get("fusion"):
            entry = {"step": name, a_label: _pattern(sa), b_label: _pattern(sb)}
            if ops_a - ops_b:
                fusions_lost.append({**entry, "epilogues": sorted(ops_a - ops_b)})
            if ops_b - ops_a:
                fusions_made.append({**entry, "epilogues": sorted(ops_b - ops_a)})
        if (sa.get("kernel"), sa.get("config")) != (sb.get("kernel"), sb.get("config")):
            kernels.append({"step": name, a_label: [sa.get("kernel"), sa.get("config")],
                            b_label: [sb.get("kernel"), sb.get("config")]})
        if sa.get("layout") != sb.get("layout"):
            layouts.append({"step": name, a_label: sa.get("layout"), b_label: sb.get("layout")})
        if sa.get("precision") != sb.get("precision"):
            precisions.append({"step": name, a_label: sa.get("precision"),
                               b_label: sb.get("precision")})
    passes_a = [p.get("name") for p in a.get("pass_log", [])]
    passes_b = [p.get("name") for p in b.get("pass_log", [])]
    lost = [{"kind": "fusion", **f} for f in fusions_lost] + \
           [{"kind": "pass", "pass": p} for p in dict.fromkeys(passes_a) if p not in passes_b]
    return {
        "a": a_label, "b": b_label,
        "steps": {a_label: len(a["steps"]), b_label: len(b["steps"])},
        "fusions_lost": fusions_lost, "fusions_made": fusions_made,
        "kernels_changed": kernels, "layouts_changed": layouts,
        "precisions_changed": precisions,
        "only_in": {a_label: [_describe(steps_a[n]) for n in only_a],
                    b_label: [_describe(steps_b[n]) for n in only_b]},
        "passes_only_in": {a_label: [p for p in dict.fromkeys(passes_a) if p not in passes_b],
                           b_label: [p for p in dict.fromkeys(passes_b) if p not in passes_a]},
        "lost_optimizations": lost,
        "identical": not (fusions_lost or fusions_made or kernels or layouts or precisions
                          or only_a or only_b),
    }


def _describe(step: dict) -> dict:
    return {"step": step["name"], "pattern": _pattern(step), "kernel": step.get("kernel")}
