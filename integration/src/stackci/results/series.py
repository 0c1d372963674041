"""The store's side of the dashboard at a year's scale: the series the pages chart, read as
plain columns and aggregated in SQL (old runs by month, old trend points by week, the newest
figure per workload x SKU by one GROUP BY), so publishing does not grow with every stored
value (docs/design.md, "A dashboard that scales with the history")."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, literal, or_, select, text

from stackci.results.schema import CombinationRow, MetricRow, Run


def as_dicts(result) -> list[dict]:
    """The rows of `result` as dicts: zipped with its keys once (a RowMapping per row cost
    more than the query for the hundreds of thousands of rows of a year's trends)."""
    keys = list(result.keys())
    return [dict(zip(keys, row)) for row in result]


def bucket_of(run_id, buckets: list[tuple[int, int]]):
    """The index of the bucket `run_id` falls in, as a CASE that halves the buckets at each
    step (the buckets are consecutive ranges in order; the query's WHERE keeps run ids within
    them): about log2(buckets) comparisons a row, where a flat CASE of a year's 52 weeks tried
    26 on average, for each of the hundreds of thousands of rows a trend aggregates."""
    def node(first: int, last: int):
        if first == last:
            return literal(first)
        middle = (first + last + 1) // 2
        return case((run_id < buckets[middle][0], node(first, middle - 1)),
                    else_=node(middle, last))
    return node(0, len(buckets) - 1)


class SeriesStore:
    """Mixed into results.store.Store (its `engine`)."""

    def run_months(self, before_run: int) -> list[dict]:
        """Runs older than `before_run` per calendar month, newest month first: `{month,
        runs, first, last, statuses: {status: runs}}`; the index summarises old runs so."""
        months: dict[str, dict] = {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(Run.id, Run.started_at, Run.status)
                                .where(Run.id < before_run).order_by(Run.id.desc()))
            for run_id, started, status in rows:
                month = months.setdefault(f"{started:%Y-%m}", {
                    "month": f"{started:%Y-%m}", "runs": 0, "first": run_id, "last": run_id,
                    "statuses": {}})
                month["runs"] += 1
                month["first"] = run_id
                month["statuses"][status] = month["statuses"].get(status, 0) + 1
        return list(months.values())

    def combination_names(self) -> set[str]:
        return set(self._combination_names_by_id().values())

    def run_starts(self) -> list[tuple[int, Any]]:
        """(run id, started_at) of every run, oldest first: what the dashboard buckets by."""
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(
                select(Run.id, Run.started_at).order_by(Run.started_at, Run.id))]

    def metric_buckets(self, name: str, buckets: list[tuple[int, int]], *,
                       points_from: int | None = None,
                       points_of: tuple[str, ...] | None = None) -> list[dict]:
        """Metric `name` aggregated over runs in bucket ranges `[(first run id, last run id)]`
        (a week's runs, say), per workload x SKU x combination, in SQL: `{bucket, workload,
        sku, combination, combination_id, mean, runs, run_id (the bucket's newest)}` by
        bucket, workload, SKU and combination; the trends' older points, without reading
        every stored value. Left out:
        the runs from `points_from` on of the combinations named in `points_of` (None: of
        every combination), which the trends draw point by point (metric_series)."""
        if not buckets:
            return []
        names = self._combination_names_by_id()
        bucket = bucket_of(MetricRow.run_id, buckets).label("bucket")
        drawn = () if points_from is None else (or_(
            MetricRow.run_id < points_from,
            *(() if points_of is None else (MetricRow.combination_id.is_(None),
                                            MetricRow.combination_id.not_in(
                                                [i for i, n in names.items()
                                                 if n in points_of])))),)
        # No join for the combination's name (a dict of a few rows) and the order of the
        # GROUP BY's own sort: SQLite's time here is sorting a year of rows into groups.
        group = (bucket, MetricRow.workload, MetricRow.sku, MetricRow.combination_id)
        with self.engine.connect() as conn:
            rows = as_dicts(conn.execute(
                select(*group, func.avg(MetricRow.value).label("mean"),
                       func.count(func.distinct(MetricRow.run_id)).label("runs"),
                       func.max(MetricRow.run_id).label("run_id"))
                .where(MetricRow.name == name,
                       MetricRow.run_id.between(buckets[0][0], buckets[-1][1]), *drawn)
                .group_by(*group).order_by(*group)))
        for row in rows:
            row["combination"] = names.get(row["combination_id"])
        return [row for row in rows if row["bucket"] is not None]

    def _combination_names_by_id(self) -> dict[int, str]:
        with self.engine.connect() as conn:
            return dict(conn.execute(select(CombinationRow.id, CombinationRow.name)).all())

    def metric_series(self, name: str, since_run: int | None = None,
                      combinations: tuple[str, ...] | None = None) -> list[dict]:
        """Every value of metric `name` (from run `since_run` on; of the combinations named
        in `combinations`, None: all) with its run and combination, oldest run first:
        `{run_id, job_id, started_at, combination_id, combination, combination_key, workload,
        sku, value, unit}`: the points of the trends. Plain columns, not ORM objects: a year
        of nights is hundreds of thousands of rows, and an object per row was most of the
        dashboard's publish time."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(MetricRow.run_id, MetricRow.job_id, Run.started_at,
                       MetricRow.combination_id, CombinationRow.name.label("combination"),
                       CombinationRow.key.label("combination_key"), MetricRow.workload,
                       MetricRow.sku, MetricRow.value, MetricRow.unit)
                .join(Run, Run.id == MetricRow.run_id)
                .outerjoin(CombinationRow, CombinationRow.id == MetricRow.combination_id)
                .where(MetricRow.name == name,
                       *(() if since_run is None else (MetricRow.run_id >= since_run,)),
                       *(() if combinations is None else
                         (CombinationRow.name.in_(combinations),)))
                .order_by(Run.started_at, Run.id, MetricRow.id))
            return as_dicts(rows)

    def latest_metrics(self, names: tuple[str, ...]) -> list[dict]:
        """The newest value of each metric in `names` per workload x SKU (the row of the
        newest run, the last one stored within it): `{name, run_id, job_id, workload, sku,
        value}`. Rows are numbered in the order they are stored, so the newest is the
        greatest id; NEWEST_IDS finds them by index seeks."""
        with self.engine.connect() as conn:
            ids = [found for name in names
                   for found in conn.scalars(NEWEST_IDS, {"name": name}) if found is not None]
            return as_dicts(conn.execute(
                select(MetricRow.name, MetricRow.run_id, MetricRow.job_id, MetricRow.workload,
                       MetricRow.sku, MetricRow.value)
                .where(MetricRow.id.in_(ids)).order_by(MetricRow.id)))


# The id of the newest row of metric :name per workload x SKU, by a skip scan of
# ix_metrics_series (name, workload, sku): `w` walks from each workload to the next, `g`
# within each from SKU to SKU, each step one index seek (the min or max of the column after
# the ones held equal), and a group's greatest id is one seek more. A GROUP BY read every
# entry of the index for the figure (757k a figure for a year of nights: 0.5 s for six
# figures with the index in the page cache, 3 s without); this reads a few pages a group.
# NULL SKUs apart (no comparison passes over them): the second half, NULL where none.
# Recursive CTEs with correlated scalar subqueries: the same SQL on SQLite and PostgreSQL.
NEWEST_IDS = text("""
WITH RECURSIVE w(workload) AS (
    SELECT min(workload) FROM metrics WHERE name = :name
  UNION ALL
    SELECT (SELECT min(m.workload) FROM metrics m
            WHERE m.name = :name AND m.workload > w.workload)
    FROM w WHERE w.workload IS NOT NULL
), g(workload, sku) AS (
    SELECT w.workload, (SELECT min(m.sku) FROM metrics m
                        WHERE m.name = :name AND m.workload = w.workload)
    FROM w WHERE w.workload IS NOT NULL
  UNION ALL
    SELECT g.workload, (SELECT min(m.sku) FROM metrics m
                        WHERE m.name = :name AND m.workload = g.workload AND m.sku > g.sku)
    FROM g WHERE g.sku IS NOT NULL
)
SELECT (SELECT max(m.id) FROM metrics m
        WHERE m.name = :name AND m.workload = g.workload AND m.sku = g.sku)
FROM g WHERE g.sku IS NOT NULL
UNION ALL
SELECT (SELECT max(m.id) FROM metrics m
        WHERE m.name = :name AND m.workload = w.workload AND m.sku IS NULL)
FROM w WHERE w.workload IS NOT NULL
""")
