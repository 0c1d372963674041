"""The workload analysis's rows in the store: analysed documents with their ops and sweet
spots, design sweeps, and advice reports (docs/design.md, "Workload analysis").

Plain dicts in and out, so the store stays below `stackci.analysis`. A mixin of `Store`: it
shares the store's sessions and its one write lock. A document is written in one transaction
with its ops and its sweet spots, so a crash never leaves half of one.
"""

from __future__ import annotations

from sqlalchemy import func, select

from stackci.results.schema import (AdviceItemRow, AnalysisDocumentRow, AnalysisOpRow,
                                    DesignSweepRow, SweetSpotRow)


def _row(row) -> dict:
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}


def _op_rows(document_id: int, doc: dict) -> list[AnalysisOpRow]:
    """The roofline's ops (bound, counterfactual), joined by name with the cycle breakdown's
    layers (compute / fill-drain / stall); plan order."""
    layers = {layer["name"]: layer for layer in (doc.get("cycles") or {}).get("by_layer", [])}
    rows = []
    for idx, op in enumerate((doc.get("roofline") or {}).get("ops", [])):
        layer = layers.get(op["name"], {})
        rows.append(AnalysisOpRow(
            document_id=document_id, idx=idx, name=op["name"], op_type=op.get("op_type", ""),
            unit=op.get("unit", ""), kernel=op.get("kernel") or "",
            cycles=op.get("cycles", layer.get("total", 0)), compute=layer.get("compute", 0),
            fill_drain=layer.get("fill_drain", 0), stall=layer.get("stall", 0),
            intensity=op.get("intensity"), achieved_ops_per_cycle=op.get("achieved_ops_per_cycle"),
            bound=op.get("bound", ""), roofline_bound=op.get("roofline_bound") or "",
            helped_by=op.get("helped_by") or "", gain=op.get("gain") or 0.0,
            counterfactual_cycles=op.get("counterfactual_cycles") or {}))
    return rows


class AnalysisStore:
    """Store methods for the workload analysis (mixed into results.store.Store)."""

    # -- writing -----------------------------------------------------------------------------

    def record_analysis(self, doc: dict, *, label: str = "", plan: dict | None = None,
                        run_id: int | None = None, job_key: str | None = None,
                        combination_id: int | None = None) -> int:
        """One analysed document (`workload`, `sku`, `precision` set), its ops and its sweet
        spots; returns its id."""
        with self._write_lock, self._sessions.begin() as session:
            row = AnalysisDocumentRow(
                run_id=run_id, job_key=job_key, combination_id=combination_id, label=label,
                workload=doc.get("workload") or doc.get("model", ""), sku=doc["sku"],
                precision=doc["precision"], modelled_cycles=doc.get("modelled_cycles"),
                latency_us=doc.get("latency_us"), document=doc, plan=plan)
            session.add(row)
            session.flush()
            session.add_all(_op_rows(row.id, doc))
            sweep = doc.get("batch_sweep")
            if sweep:
                confirmed = sweep.get("confirmed")
                session.add(SweetSpotRow(
                    document_id=row.id, workload=row.workload, sku=row.sku,
                    precision=row.precision, label=label, offline=sweep.get("offline"),
                    server=sweep.get("server"), knee=sweep.get("knee"),
                    latency_bound_ms=sweep.get("latency_bound_ms"),
                    stopped=sweep.get("stopped") or "",
                    confirmed=None if not confirmed else bool(confirmed.get("matches")),
                    points=sweep.get("points", [])))
            return row.id

    def record_analysis_outcome(self, run_id: int, job_key: str, combination_id: int | None,
                                found: dict) -> None:
        """What a nightly analysis job returned (Outcome.analysis): a document with its plan,
        a design sweep, or an advice report."""
        label = found.get("label", "")
        if "document" in found:
            self.record_analysis(found["document"], label=label, plan=found.get("plan"),
                                 run_id=run_id, job_key=job_key, combination_id=combination_id)
        if "sweep" in found:
            self.record_design_sweep(found["sweep"], name=found.get("name", job_key),
                                     label=label, run_id=run_id)
        if "advice" in found:
            self.record_advice(found["advice"], run_id=run_id)

    def record_design_sweep(self, doc: dict, *, name: str, label: str = "",
                            run_id: int | None = None) -> int:
        with self._write_lock, self._sessions.begin() as session:
            row = DesignSweepRow(run_id=run_id, label=label, name=name,
                                 sku=doc.get("sku", ""), precision=doc.get("precision", "fp32"),
                                 points=len(doc.get("points", [])), document=doc)
            session.add(row)
            session.flush()
            return row.id

    def record_advice(self, items: list[dict], *, run_id: int | None = None) -> int:
        """One advice report (a new batch); returns the batch number."""
        with self._write_lock, self._sessions.begin() as session:
            batch = (session.scalar(select(func.max(AdviceItemRow.batch))) or 0) + 1
            for item in items:
                session.add(AdviceItemRow(
                    batch=batch, run_id=run_id, team=item.get("team", ""),
                    kind=item.get("kind", ""), change=item.get("change", ""),
                    gain_us=item.get("gain_us", 0.0), gain_share=item.get("gain_share", 0.0),
                    item=item))
            return batch

    # -- reading -----------------------------------------------------------------------------

    def analysis_documents(self, *, run_id: int | None = None, workload: str | None = None,
                           sku: str | None = None, precision: str | None = None,
                           with_plan: bool = False) -> list[dict]:
        """Stored documents, oldest first (each row's fields; `document` is the JSON)."""
        query = select(AnalysisDocumentRow).order_by(AnalysisDocumentRow.id)
        for column, value in ((AnalysisDocumentRow.run_id, run_id),
                              (AnalysisDocumentRow.workload, workload),
                              (AnalysisDocumentRow.sku, sku),
                              (AnalysisDocumentRow.precision, precision)):
            if value is not None:
                query = query.where(column == value)
        with self._sessions() as session:
            rows = [_row(r) for r in session.scalars(query)]
        if not with_plan:
            for row in rows:
                row.pop("plan")
        return rows

    def latest_analyses(self, before_run: int | None = None) -> tuple[list[dict], list[dict]]:
        """(the newest row of each workload x SKU x precision, the one before each where
        there is one). `before_run`: only rows of earlier runs (or of no run)."""
        newest: dict[tuple, dict] = {}
        previous: dict[tuple, dict] = {}
        for row in self.analysis_documents():
            if before_run is not None and row["run_id"] is not None and \
                    row["run_id"] >= before_run:
                continue
            key = (row["workload"], row["sku"], row["precision"])
            if key in newest:
                previous[key] = newest[key]
            newest[key] = row
        return list(newest.values()), [previous[k] for k in newest if k in previous]

    def previous_plan(self, workload: str, sku: str, precision: str,
                      before_run: int | None) -> dict | None:
        """The newest stored plan (row with `plan` and `label`) of this workload x SKU x
        precision from a run before `before_run` (the previous night), or None."""
        query = (select(AnalysisDocumentRow)
                 .where(AnalysisDocumentRow.workload == workload,
                        AnalysisDocumentRow.sku == sku,
                        AnalysisDocumentRow.precision == precision,
                        AnalysisDocumentRow.plan.is_not(None))
                 .order_by(AnalysisDocumentRow.id.desc()))
        if before_run is not None:
            query = query.where(AnalysisDocumentRow.run_id < before_run)
        with self._sessions() as session:
            for row in session.scalars(query):
                if row.plan:
                    return _row(row)
        return None

    def analysis_ops(self, document_id: int) -> list[dict]:
        with self._sessions() as session:
            return [_row(r) for r in session.scalars(
                select(AnalysisOpRow).where(AnalysisOpRow.document_id == document_id)
                .order_by(AnalysisOpRow.idx))]

    def sweet_spots(self, workload: str | None = None) -> list[dict]:
        """Every stored sweet spot, oldest first, with its document's run and time."""
        query = (select(SweetSpotRow, AnalysisDocumentRow.run_id, AnalysisDocumentRow.created_at)
                 .join(AnalysisDocumentRow, AnalysisDocumentRow.id == SweetSpotRow.document_id)
                 .order_by(SweetSpotRow.document_id))
        if workload is not None:
            query = query.where(SweetSpotRow.workload == workload)
        with self._sessions() as session:
            return [{**_row(spot), "run_id": run_id, "created_at": created}
                    for spot, run_id, created in session.execute(query)]

    def design_sweeps(self, *, run_id: int | None = None) -> list[dict]:
        query = select(DesignSweepRow).order_by(DesignSweepRow.id)
        if run_id is not None:
            query = query.where(DesignSweepRow.run_id == run_id)
        with self._sessions() as session:
            return [_row(r) for r in session.scalars(query)]

    def latest_design_sweeps(self) -> list[dict]:
        """The newest sweep of each name."""
        newest: dict[str, dict] = {}
        for row in self.design_sweeps():
            newest[row["name"]] = row
        return list(newest.values())

    def advice(self, batch: int | None = None, team: str | None = None) -> list[dict]:
        """The items of one advice report (default: the newest), largest gain first."""
        with self._sessions() as session:
            if batch is None:
                batch = session.scalar(select(func.max(AdviceItemRow.batch)))
            if batch is None:
                return []
            query = select(AdviceItemRow).where(AdviceItemRow.batch == batch)
            if team is not None:
                query = query.where(AdviceItemRow.team == team)
            return [_row(r) for r in session.scalars(
                query.order_by(AdviceItemRow.gain_us.desc(), AdviceItemRow.id))]
