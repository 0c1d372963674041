"""Pytest's exit code and JUnit report as an outcome (stack/pytest.py)."""

from stackci.stack.pytest import junit_counts, pytest_outcome


def test_junit_and_exit_codes(tmp_path):
    junit = tmp_path / "junit.xml"
    junit.write_text('<testsuites><testsuite tests="5" failures="1" errors="1" skipped="1"/>'
                     '<testsuite tests="2" failures="0" errors="0" skipped="0"/></testsuites>')
    assert junit_counts(junit) == {"passed": 4, "failed": 2, "skipped": 1}
    assert pytest_outcome(1, junit, "").status == "failed"
    assert pytest_outcome(4, junit, "ERROR: usage\n").status == "error"
    assert pytest_outcome(0, tmp_path / "missing.xml", "boom").message == "pytest exited 0: boom"
    empty = tmp_path / "empty.xml"
    empty.write_text('<testsuites><testsuite tests="0"/></testsuites>')
    # A module that ships no runnable test is no evidence that it works.
    assert (pytest_outcome(5, empty, "").status, pytest_outcome(5, empty, "").message) == (
        "failed", "no tests collected")


def test_counts_become_metrics(tmp_path):
    junit = tmp_path / "junit.xml"
    junit.write_text('<testsuite tests="3" failures="0" errors="0" skipped="1"/>')
    outcome = pytest_outcome(0, junit, "")
    assert outcome.status == "passed" and outcome.message == "2 passed, 0 failed, 1 skipped"
    assert {m["name"]: m["value"] for m in outcome.metrics} == {
        "tests_passed": 2, "tests_failed": 0, "tests_skipped": 1}
