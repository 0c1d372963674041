"""Pytest in a stack environment, read back: its exit code and JUnit report as an outcome.

Used by the nightly's module tests and by contract verification alike.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from stackci.errors import StackciError
from stackci.model import TEST_COUNTS, Outcome, tests_metric
from stackci.stack.runner import last_line, tail


def pytest_outcome(returncode: int, junit: Path, output: str) -> Outcome:
    """Pytest's exit code and JUnit report as an outcome with test counts."""
    tail_text = tail(output)
    # pytest: 0 all passed, 1 some failed, 5 nothing collected; 2-4 it did not run properly.
    if returncode not in (0, 1, 5) or not junit.exists():
        return Outcome("error", f"pytest exited {returncode}: {last_line(output)}",
                       details={"output": tail_text})
    counts = junit_counts(junit)
    metrics = [{"name": tests_metric(kind), "value": counts[kind], "unit": "tests"}
               for kind in TEST_COUNTS]
    summary = (f"{counts['passed']} passed, {counts['failed']} failed, "
               f"{counts['skipped']} skipped" if returncode != 5 else "no tests collected")
    if returncode == 1 or counts["failed"]:
        return Outcome("failed", summary, metrics, details={"output": tail_text, **counts})
    if returncode == 5 or not counts["passed"]:
        # A module that ships no runnable tests is not evidence that it works.
        return Outcome("failed", summary or "no tests collected", metrics, details=counts)
    return Outcome("passed", summary, metrics, details=counts)


def junit_counts(path: Path) -> dict[str, int]:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise StackciError(f"{path}: unreadable JUnit XML: {exc}") from exc
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")

    def total(attribute: str) -> int:
        return sum(int(suite.get(attribute, 0)) for suite in suites)

    failed = total("failures") + total("errors")
    skipped = total("skipped")
    return {"passed": total("tests") - failed - skipped, "failed": failed, "skipped": skipped}
