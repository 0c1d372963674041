"""The store's side of the dashboard at a year's scale: the series the pages chart, read as
plain columns and aggregated in SQL (old runs by month, old trend points by week, the newest
figure per workload x SKU by one GROUP BY), so publishing does not grow with every stored
value (docs/design.md, "A dashboard that scales with the history")."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select

from stackci.results.schema import CombinationRow, MetricRow, Run


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

    def run_starts(self) -> list[tuple[int, Any]]:
        """(run id, started_at) of every run, oldest first: what the dashboard buckets by."""
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(
                select(Run.id, Run.started_at).order_by(Run.started_at, Run.id))]

    def metric_buckets(self, name: str, buckets: list[tuple[int, int]]) -> list[dict]:
        """Metric `name` aggregated over runs in bucket ranges `[(first run id, last run id)]`
        (a week's runs, say), per workload x SKU x combination, in SQL: `{bucket, workload,
        sku, combination, combination_id, mean, low, high, runs, run_id (the bucket's
        newest)}`; the trends' older points, without reading every stored value."""
        if not buckets:
            return []
        bucket = case(*((MetricRow.run_id.between(lo, hi), i)
                        for i, (lo, hi) in enumerate(buckets)), else_=None).label("bucket")
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(bucket, MetricRow.workload, MetricRow.sku, MetricRow.combination_id,
                       CombinationRow.name.label("combination"),
                       func.avg(MetricRow.value).label("mean"),
                       func.min(MetricRow.value).label("low"),
                       func.max(MetricRow.value).label("high"),
                       func.count(func.distinct(MetricRow.run_id)).label("runs"),
                       func.max(MetricRow.run_id).label("run_id"))
                .outerjoin(CombinationRow, CombinationRow.id == MetricRow.combination_id)
                .where(MetricRow.name == name,
                       MetricRow.run_id.between(buckets[0][0], buckets[-1][1]))
                .group_by(bucket, MetricRow.workload, MetricRow.sku, MetricRow.combination_id,
                          CombinationRow.name)
                .order_by(bucket, MetricRow.combination_id))
            return [dict(row._mapping) for row in rows if row.bucket is not None]

    def metric_series(self, name: str, since_run: int | None = None) -> list[dict]:
        """Every value of metric `name` with its run and combination, oldest run first:
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
                       *(() if since_run is None else (MetricRow.run_id >= since_run,)))
                .order_by(Run.started_at, Run.id, MetricRow.id))
            return [dict(row._mapping) for row in rows]

    def latest_metrics(self, names: tuple[str, ...]) -> list[dict]:
        """The newest value of each metric in `names` per workload x SKU (the row of the
        newest run, the last one stored within it): `{name, run_id, job_id, workload, sku,
        value}`, one GROUP BY instead of every stored value. Rows are numbered in the order
        they are stored, so the newest is the greatest id."""
        newest = (select(func.max(MetricRow.id).label("id"))
                  .where(MetricRow.name.in_(names), MetricRow.workload.is_not(None))
                  .group_by(MetricRow.name, MetricRow.workload, MetricRow.sku)
                  .subquery())
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(MetricRow.name, MetricRow.run_id, MetricRow.job_id, MetricRow.workload,
                       MetricRow.sku, MetricRow.value)
                .join(newest, newest.c.id == MetricRow.id)
                .order_by(MetricRow.id)).all()
        return [dict(row._mapping) for row in rows]
