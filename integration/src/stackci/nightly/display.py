"""What the nightly shows a person: a live progress bar while it runs, a summary table at the end."""

from __future__ import annotations

import threading

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn)
from rich.table import Table

from stackci.durations import format_duration
from stackci.model import ERROR, FAILED, NOT_RUN, OUTCOMES, PASSED, STAGES, TIMEOUT, Job

STYLES = {PASSED: "green", FAILED: "red", ERROR: "red", TIMEOUT: "yellow", NOT_RUN: "dim"}


class ProgressDisplay:
    """A live bar of jobs done out of total, naming the jobs running now."""

    def __init__(self, console: Console):
        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                  BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                  console=console, transient=False)
        self._task = None
        self._running: list[str] = []
        self._lock = threading.Lock()

    def begin(self, total: int, already_done: int, **_plan) -> None:
        self._task = self._progress.add_task("nightly", total=total, completed=already_done)
        self._progress.start()

    def close(self) -> None:
        self._progress.stop()

    def started(self, job: Job) -> None:
        with self._lock:
            self._running.append(job.key)
            self._describe()

    def finished(self, job: Job, status: str) -> None:
        with self._lock:
            if job.key in self._running:
                self._running.remove(job.key)
            if status not in (PASSED, NOT_RUN):
                self._progress.console.print(f"[{STYLES[status]}]{status}[/] {job.key}")
            self._progress.advance(self._task)
            self._describe()

    def _describe(self) -> None:
        running = ", ".join(self._running[:3]) + (" ..." if len(self._running) > 3 else "")
        self._progress.update(self._task, description=f"running: {running}" if running
                              else "nightly")


def print_p0(console: Console, summary: dict) -> None:
    """First of all: what does not fit the day."""
    p0 = summary.get("p0")
    if not p0:
        return
    console.print(f"[bold red]P0: the night does not fit its budget[/]: predicted to end at "
                  f"{format_duration(p0.get('predicted_end_s'))} of a "
                  f"{format_duration(p0.get('budget_s'))} budget; stage {p0['stage']} pushes "
                  f"it over with {p0['count']} job(s): " + ", ".join(p0["jobs"][:10])
                  + (" ..." if p0["count"] > 10 else ""))
    if p0.get("gating"):
        console.print(f"[bold red]P0: gating job(s) cannot fit[/]: " + ", ".join(p0["gating"]))


def print_summary(console: Console, run_id: int, summary: dict) -> None:
    print_p0(console, summary)
    table = Table(title=f"run {run_id}: jobs by stage and outcome")
    table.add_column("stage")
    for outcome in OUTCOMES:
        table.add_column(outcome.replace("_", " "), justify="right", style=STYLES[outcome])
    stages = sorted(summary["by_stage"], key=lambda s: STAGES.index(s) if s in STAGES else 99)
    for stage in stages:
        counts = summary["by_stage"][stage]
        table.add_row(stage, *(str(counts.get(outcome, 0) or "") for outcome in OUTCOMES))
    console.print(table)
    console.print(f"time used {format_duration(summary['used_s'])} of a "
                  f"{format_duration(summary['budget_s'])} budget")
    if summary["slowest"]:
        slow = Table(title="slowest jobs")
        slow.add_column("job")
        slow.add_column("outcome")
        slow.add_column("duration", justify="right")
        for job in summary["slowest"]:
            slow.add_row(job["key"], job["status"], format_duration(job["duration_s"]))
        console.print(slow)
    left_out = summary["out_of_budget"]
    if left_out:
        deferred = summary.get("deferred_combinations")
        console.print(f"[bold yellow]{len(left_out)} job(s) not run: out of budget[/], carried "
                      "over to the next night"
                      + (f" ({deferred} combination(s) beyond --max-combinations)" if deferred
                         else "") + ": " + ", ".join(left_out[:10])
                      + (" ..." if len(left_out) > 10 else ""))
    reused = summary.get("reused") or {}
    if reused.get("count"):
        console.print(f"{reused['count']} job(s) reused (same inputs as a stored pass) from "
                      f"run(s) {', '.join(map(str, reused['from_runs']))}, saving "
                      f"{format_duration(reused['saved_s'])}; --no-reuse runs them all")
    waited = [job for job in summary.get("carried", []) if job["status"] != NOT_RUN]
    if waited:
        console.print(f"{len(waited)} carried-over job(s) ran tonight, after waiting up to "
                      f"{max(job['nights'] for job in waited)} night(s)")
    for job in summary["bad"]:
        console.print(f"[{STYLES[job['status']]}]{job['status']}[/] {job['key']}: "
                      f"{job['message']}")
    if summary["dashboard"]:
        console.print(f"dashboard: {summary['dashboard']}")
    print_regressions(console, summary.get("regressions") or [], summary.get("team_reports"))


def print_regressions(console: Console, found: list[dict], reports=None) -> None:
    """The end of the summary: the night's new regressions and their culprits."""
    if not found:
        console.print("regressions: none new")
        return
    # One line each, not a table: the series keys are long and a log is 80 columns wide.
    console.print(f"[bold red]{len(found)} new regression(s)[/]")
    for entry in found:
        commits = ", ".join(c[:12] for c in entry["commits"]) or "not known yet"
        console.print(f"  {entry['id']} {entry['series']}: {entry['size']}; culprit "
                      f"{entry['culprit']}; commit {commits}; team "
                      f"{', '.join(entry['teams'])}", soft_wrap=True, highlight=False)
    if reports:
        console.print("team reports: " + ", ".join(reports))
