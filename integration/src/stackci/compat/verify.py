"""Verified compatibility: run each consumer's contract tests against each provider version.

For every pair on a contract edge (see compat.py) the consumer's tests, taken as of the
consumer's version, run with pytest in the provider's pair environment (the provider and its
dependencies, nothing of the consumer). Each verdict is stored in a batch; a pair whose tests
(git blob) and environment (lock hash) already have a verdict is not run again.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable

from stackci.compat.catalog import (DEFAULT_WINDOW, Candidate, Catalog, Edge, consumer_tests,
                                    declared_ok, pair_environment)
from stackci.errors import StackciError
from stackci.sources import build
from stackci.stack.port import StackPort
from stackci.stack.pytest import pytest_outcome
from stackci.stack.runner import tail

DEFAULT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Pair:
    edge: Edge
    consumer: Candidate
    provider: Candidate

    @property
    def name(self) -> str:
        return (f"{self.edge.consumer} {self.consumer.label} x {self.edge.provider} "
                f"{self.provider.label} ({self.edge.interface})")


def window_pairs(catalog: Catalog) -> list[Pair]:
    """Every pair of versions in the window along every contract edge."""
    pairs = []
    for edge in catalog.edges:
        for consumer in catalog.in_window[edge.consumer]:
            if edge.interface not in consumer.contract.requires:
                continue
            for provider in catalog.in_window[edge.provider]:
                if edge.interface in provider.contract.provides:
                    pairs.append(Pair(edge, consumer, provider))
    return pairs


class Verifier:
    """Runs pairs and stores their verdicts in one batch. Environments are built once each."""

    def __init__(self, ws, store, catalog: Catalog, *, python: str | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, port: StackPort | None = None):
        self.ws, self.store, self.catalog = ws, store, catalog
        self.port = port or StackPort()
        self.python = python or sys.executable
        self.timeout_s = timeout_s
        self.batch = store.next_verdict_batch()
        constraints = ws.repo / "constraints.txt"
        self._constraints = constraints.read_text() if constraints.is_file() else ""
        self._python_version = build.python_version(self.python)
        self._environments: dict[str, object] = {}

    def run(self, pairs: list[Pair], progress: Callable[[Pair, dict], None] | None = None
            ) -> list[dict]:
        verdicts = []
        for pair in pairs:
            verdict = self.verify(pair)
            verdicts.append(verdict)
            if progress:
                progress(pair, verdict)
        return verdicts

    def verify(self, pair: Pair) -> dict:
        fields = self._identity(pair)
        tests = consumer_tests(self.ws, pair.consumer.mv, pair.edge)
        if tests is None:
            return self._store(fields, "untested", f"no contract tests {pair.edge.tests_file} "
                               f"for {pair.consumer.contract.label} in contracts/consumers/"
                               f"{pair.edge.consumer}/")
        fields.update(tests_commit=tests.commit, tests_hash=tests.blob)
        try:
            combination = pair_environment(self.catalog, pair.provider)
        except StackciError as exc:
            return self._store(fields, "error", str(exc))
        fields["environment_key"] = build.lock_hash(combination, self._constraints,
                                                    self._python_version)
        fields["details"] = {"environment": {m: mv.version for m, mv in
                                             combination.modules.items()}}
        cached = self.store.cached_verdict(tests.blob, fields["environment_key"])
        if cached is not None:
            return self._store(fields, cached["status"], cached["message"],
                               cached_from=cached["id"], duration_s=cached["duration_s"])
        started = time.monotonic()
        status, message, output = self._run_tests(combination, tests, pair)
        fields["details"]["output"] = output
        return self._store(fields, status, message, duration_s=time.monotonic() - started)

    def _run_tests(self, combination, tests, pair: Pair) -> tuple[str, str, str]:
        try:
            env = self._environment(combination)
        except StackciError as exc:
            return "error", str(exc), ""
        workdir = self.ws.home / "contract-tests" / f"{tests.blob[:16]}-{env.path.name}"
        workdir.mkdir(parents=True, exist_ok=True)
        test_file = workdir / pair.edge.tests_file
        test_file.write_text(tests.text)
        junit = workdir / "junit.xml"
        junit.unlink(missing_ok=True)
        try:
            done = self.port.pytest(env.python, ["-q", "-p", "no:cacheprovider", "--rootdir",
                                                 str(workdir), f"--junitxml={junit}",
                                                 str(test_file)], self.timeout_s, cwd=workdir)
        except Exception as exc:  # subprocess.TimeoutExpired, OSError
            return "error", f"contract tests did not finish: {exc}", ""
        outcome = pytest_outcome(done.returncode, junit, done.stdout + done.stderr)
        output = (outcome.details or {}).get("output", "") or tail(done.stdout + done.stderr)
        if done.returncode == 2 and junit.exists():
            # The tests could not even be collected against this provider: what they import
            # from it is missing, which is the plainest incompatibility there is.
            reason = _collection_error(done.stdout + done.stderr)
            return "failed", f"contract tests do not import against it: {reason}", output
        if outcome.status == "failed" and output:
            failing = [line for line in output.splitlines() if line.startswith("FAILED")]
            if failing:
                outcome.message += ": " + "; ".join(line.removeprefix("FAILED ").strip()
                                                    for line in failing[:3])
        return outcome.status, outcome.message, output

    def _environment(self, combination):
        key = combination.key
        if key not in self._environments:
            self._environments[key] = self.port.environment(self.ws, combination,
                                                            python=self.python)
        return self._environments[key]

    def _identity(self, pair: Pair) -> dict:
        consumer, provider = pair.consumer, pair.provider
        return {
            "batch": self.batch, "interface": pair.edge.interface,
            "consumer": pair.edge.consumer, "consumer_version": consumer.mv.version,
            "consumer_label": consumer.label, "consumer_commit": consumer.mv.commit,
            "consumer_tree": consumer.mv.tree_hash,
            "provider": pair.edge.provider, "provider_version": provider.mv.version,
            "provider_label": provider.label, "provider_commit": provider.mv.commit,
            "provider_tree": provider.mv.tree_hash,
            "declared": declared_ok(consumer.contract, provider.contract, pair.edge.interface),
            "details": {},
        }

    def _store(self, fields: dict, status: str, message: str, **extra) -> dict:
        row = {**fields, "status": status, "message": message, **extra}
        row["id"] = self.store.add_verdict(**row)
        return row


def _collection_error(output: str) -> str:
    for line in output.splitlines():
        if line.startswith("E ") and ("Error" in line or "error" in line):
            return line[1:].strip()
    return "collection error"



def verify_window(ws, store, report: Callable[[Pair, dict], None] | None = None,
                  window: int = DEFAULT_WINDOW) -> list[dict]:
    """Contract-test every pair of the support window not verified yet (stored verdicts of
    unchanged pairs are reused), so that the nightly's coverage is of what is
    verified-compatible today."""
    catalog = Catalog(ws, window)
    return Verifier(ws, store, catalog).run(window_pairs(catalog), report)
