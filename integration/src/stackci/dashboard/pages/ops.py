"""The op-level breakdown of one workload on one SKU (ops/*.html)."""

from __future__ import annotations


def op_breakdown(ops: list[dict]) -> dict:
    total = sum(op["cycles"] for op in ops) or 1.0
    rows = [{**op, "share": op["cycles"] / total} for op in ops]
    by_type: dict[str, float] = {}
    for op in ops:
        by_type[op["op_type"]] = by_type.get(op["op_type"], 0.0) + op["cycles"]
    ordered = sorted(by_type.items(), key=lambda item: item[1], reverse=True)
    figure = {"data": [{"type": "bar", "x": [t for t, _ in ordered],
                        "y": [c for _, c in ordered]}],
              "layout": {"title": {"text": "cycles by op type", "x": 0.02, "xanchor": "left"},
                         "yaxis": {"title": {"text": "cycles"}}, "height": 360,
                         "margin": {"t": 40}}}
    return {"rows": rows, "total_cycles": sum(op["cycles"] for op in ops),
            "by_type": ordered, "figure": figure}
