"""What every page shares: where the templates and Plotly's local copy are, labels, slugs,
the line chart, and how numbers print."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from stackci.errors import StackciError
from stackci.workspace import find_repo_root


def site_dir() -> Path:
    """The repository's dashboards/ directory (templates and static assets)."""
    beside_package = Path(__file__).resolve().parents[3] / "dashboards"
    if (beside_package / "templates").is_dir():
        return beside_package
    return find_repo_root() / "dashboards"


def plotly_js() -> Path:
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise StackciError(f"plotly's JavaScript is missing at {path}; reinstall plotly")
    return path


def slug(*parts: str) -> str:
    return "__".join(re.sub(r"[^A-Za-z0-9_.-]+", "_", part) for part in parts)


def combination_label(name: str | None, key: str | None) -> str:
    return f"{name} {key[:8]}" if name and key else "-"


def point_label(run_id: int, started_at: datetime, name: str | None, key: str | None) -> str:
    """An x-axis position of a trend: which run, when it started, which combination it ran."""
    return f"#{run_id} {started_at:%Y-%m-%d %H:%M} {combination_label(name, key)}"


def line_figure(title: str, y_title: str, traces: dict[str, list[dict]], *,
                floors: tuple = ()) -> dict:
    """Lines of points `{x, value}` per trace name, with optional dashed horizontal floors."""
    return {
        "data": [{"type": "scatter", "mode": "lines+markers", "name": name,
                  "x": [p["x"] for p in points], "y": [p["value"] for p in points]}
                 for name, points in sorted(traces.items())],
        "layout": {"title": {"text": title, "x": 0.02, "xanchor": "left"},
                   "xaxis": {"type": "category", "title": {"text": "run / combination"}},
                   "yaxis": {"title": {"text": y_title}, "rangemode": "tozero"},
                   "shapes": [{"type": "line", "xref": "paper", "x0": 0, "x1": 1,
                               "y0": floor, "y1": floor, "line": {"dash": "dash"}}
                              for floor in sorted(set(floors))],
                   "margin": {"t": 40, "b": 90}, "height": 340},
    }


def run_order(traces: dict[str, list[dict]]) -> list[str]:
    """Every x label of the traces in run order: a category axis otherwise orders them by
    first appearance, which puts a run only a later trace has after the runs of the first."""
    labels = {p["x"]: p["run_id"] for points in traces.values() for p in points}
    return sorted(labels, key=lambda x: labels[x])


def goal_label(text: str, y: float) -> dict:
    """A note just above the right end of a dashed horizontal line at `y`."""
    return {"xref": "paper", "x": 1, "xanchor": "right", "y": y, "yanchor": "bottom",
            "text": text, "showarrow": False}


def number(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{int(value):,}"
