"""The real tier's models (workloads/suite.yaml, pypi: sources) on the real stack, matched
against onnxruntime, wherever the harness's cache already holds them: this test downloads
nothing (`stackci workloads prepare --tier real` fetches them where PyPI is reachable, into
$STACKCI_HOME/cache or the repository's .stackci/cache)."""

import os
import sys
from pathlib import Path

import pytest

from stackci.errors import StackError
from stackci.workloads import wheels
from stackci.workloads.prepare import prepare
from stackci.workloads.run import run_model
from stackci.workloads.suite import load_suite
from stackci.workspace import Workspace, find_repo_root

SUITE = load_suite(find_repo_root() / "workloads" / "suite.yaml")
REAL = [w for w in SUITE.workloads if w.source.startswith("pypi:")]


def cache_dirs() -> list[Path]:
    homes = [os.environ.get("STACKCI_HOME"), find_repo_root() / ".stackci"]
    return [Path(home) / "cache" for home in homes if home]


def cached(workload) -> Path | None:
    """The cache whose copy of the member has the pinned digest, if any."""
    for cache in cache_dirs():
        member = cache / "real" / workload.sha256[:16] / Path(workload.member).name
        if member.is_file() and wheels.file_sha256(member) == workload.sha256:
            return cache
    return None


def test_the_real_tier_has_twelve_models_or_more_of_several_packages():
    assert len(REAL) >= 12
    assert len({w.source for w in REAL}) >= 8
    assert all(w.in_tier("real") and not w.in_tier("smoke") for w in REAL)
    assert all(w.inputs for w in REAL)  # every real model is fed what it was made for


@pytest.mark.parametrize("workload", REAL, ids=[w.name for w in REAL])
def test_a_cached_real_model_matches_onnxruntime(workload, tmp_path):
    pytest.importorskip("npu_compiler")  # the harness's test env holds the stack
    cache = cached(workload)
    if cache is None:
        pytest.skip(f"{workload.source} {workload.member} is not in the cache (offline; "
                    "`stackci workloads prepare --tier real` fetches it)")
    ws = Workspace.discover(cache.parent)
    prepared = prepare(ws, workload)
    sku = workload.skus[-1]
    try:
        document = run_model(sys.executable, prepared.model_path, sku,
                             inputs=prepared.inputs_path, expected=prepared.expected_path,
                             atol=workload.atol, rtol=workload.rtol,
                             min_cosine=workload.min_cosine, time_reference=False,
                             workdir=tmp_path)
    except StackError as exc:
        if workload.expects(sku, exc.kind, str(exc)):
            return
        raise
    assert workload.expected_failure(sku) is None, "ran although a failure was expected"
    assert document["match"], document.get("outputs")
