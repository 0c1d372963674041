"""regressions.html (open ones first: culprit module, commit, owner, size, per-op diff, the
culprit search's evidence), the change points marked on the trends, and the trends' x labels
by version vector. Reads the stored rows only (the regressions' objects are JSON in them)."""

from __future__ import annotations

from stackci.results.store import Store

OPEN = ("new", "confirmed", "acknowledged")


def regressions_view(store: Store) -> dict:
    searches = store.bisection_rows()
    entries = [entry(row, searches.get(row.get("search_of") or row["id"]))
               for row in store.regression_rows()]
    entries.sort(key=lambda e: (not e["open"], OPEN.index(e["state"]) if e["open"] else 0,
                                -abs(e["relative"] or 0), e["id"]))
    return {"entries": entries, "open": sum(1 for e in entries if e["open"]),
            "by_team": _count_by_team(entries)}


def _count_by_team(entries: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in entries:
        for team in e["teams"] if e["open"] else ():
            counts[team] = counts.get(team, 0) + 1
    return dict(sorted(counts.items()))


def entry(row: dict, search: dict | None) -> dict:
    data = row["data"] or {}
    state = (search or {}).get("state") or {}
    modules = state.get("modules") or {}
    verdict = modules.get("verdict") or {}
    bisections = state.get("bisections") or []
    commits = [b["result"]["first_bad"] for b in bisections
               if b.get("result") and b["result"].get("first_bad")]
    untestable = [c for b in bisections if b.get("result") for c in b["result"]["untestable"]]
    skipped = [sha for b in bisections for sha, v in (b.get("verdicts") or {}).items()
               if v == "untestable"]
    op_diff = data.get("op_diff") or {}
    changes = sorted(op_diff.get("changes") or [], key=lambda c: -abs(c["delta_cycles"]))
    good, bad = data.get("last_good") or {}, data.get("first_bad") or {}
    return {
        "id": row["id"], "state": row["state"], "open": row["state"] in OPEN,
        "kind": row["kind"], "series": "/".join(p or "-" for p in (
            row["track"], row["workload"], row["sku"], row["precision"], row["metric"])),
        "summary": row["summary"], "relative": row["relative"], "size": data.get("size"),
        "teams": row["teams"] or [], "last_good_run": row["last_good_run"],
        "first_bad_run": row["first_bad_run"],
        "moved": moved_text(good.get("vector") or {}, bad.get("vector") or {}),
        "culprit": (search or {}).get("culprit") or _moved_only(good, bad),
        "modules": [m for group in verdict.get("groups") or [] for m in group],
        "verdict": verdict.get("kind", ""), "commits": commits, "untestable": untestable,
        "skipped": skipped, "probes": (search or {}).get("probes", 0),
        "searching": bool(search) and not search.get("done"),
        "op_changes": changes[:10], "op_hint": op_diff.get("hint", ""),
        "op_delta": (op_diff.get("total_after", 0) - op_diff.get("total_before", 0))
        if op_diff else None,
        "evidence": [*(modules.get("evidence") or []),
                     *(e for b in bisections for e in b.get("evidence") or [])],
        "anchor": f"r-{row['id']}",
    }


def _moved_only(good: dict, bad: dict) -> str:
    modules = moved(good.get("vector") or {}, bad.get("vector") or {})
    return modules[0] if len(modules) == 1 else "not known yet"


def moved(before: dict, after: dict) -> list[str]:
    """Modules whose tree differs; vectors as stored: {module: [version, commit, tree]} or
    {module: {version, commit, tree_hash}}."""
    tree = lambda entry: entry["tree_hash"] if isinstance(entry, dict) else entry[2]  # noqa
    return [m for m in [*after, *(m for m in before if m not in after)]
            if m not in before or m not in after or tree(before[m]) != tree(after[m])]


def moved_text(before: dict, after: dict) -> str:
    """`opslib 1.4.1 (abc1234)` for each module that moved, as on the trends' x-axes."""
    def version(entry) -> tuple[str, str]:
        return (entry["version"], entry["commit"]) if isinstance(entry, dict) else \
            (entry[0], entry[1])
    parts = []
    for module in moved(before, after):
        if module not in after:
            parts.append(f"{module} removed")
            continue
        number, commit = version(after[module])
        parts.append(f"{module} {number} ({commit[:7]})")
    return ", ".join(parts) or "no module moved"


class VectorLabels:
    """Trend x labels: the run and what moved since the previous run of the same track."""

    def __init__(self, store: Store):
        self.store = store
        self._vectors: dict[int, dict] = {}
        self._labels: dict[tuple[int, int | None], str] = {}
        self._last: dict[str, tuple[int, dict]] = {}

    def vector(self, combination_id: int | None) -> dict:
        if combination_id is None:
            return {}
        if combination_id not in self._vectors:
            found = self.store.combination(combination_id)
            self._vectors[combination_id] = (found or {}).get("modules", {})
        return self._vectors[combination_id]

    def label(self, row: dict) -> str:
        """Rows must come in run order (metric_series gives them so)."""
        key = (row["run_id"], row["combination_id"])
        if key not in self._labels:
            track = row["combination"] or ""
            vector = self.vector(row["combination_id"])
            previous = self._last.get(track)
            if previous is None:
                text = f"{track} first run"
            else:
                text = moved_text(previous[1], vector)
            self._last[track] = (row["run_id"], vector)
            self._labels[key] = f"#{row['run_id']} {text}"
        return self._labels[key]


def change_marks(store: Store, metric: str) -> dict[tuple[str, str], dict[int, str]]:
    """(workload, SKU) -> {first bad run: regression ids} of the stored regressions of
    `metric`, for the trends' markers."""
    marks: dict[tuple[str, str], dict[int, str]] = {}
    for row in store.regression_rows():
        if row["metric"] == metric and row["workload"]:
            runs = marks.setdefault((row["workload"], row["sku"]), {})
            runs[row["first_bad_run"]] = ", ".join(
                filter(None, [runs.get(row["first_bad_run"]), f"{row['id']} {row['state']}"]))
    return marks
