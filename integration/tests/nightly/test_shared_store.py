"""One store shared by a team: a night on PostgreSQL, and two nights writing one store at once
(SQLite and PostgreSQL) that lose nothing and never mix their runs."""

import multiprocessing
from pathlib import Path

from fakes import FakePort
from stackci.nightly.plan import NightlyOptions
from stackci.nightly.run import Nightly
from stackci.results.store import Store
from stackci.workspace import Workspace

REPO = Path(__file__).resolve().parents[3]
WORKLOADS = ("resnet", "bert")


def one_night(root: Path, url: str, latency_us: float = 100.0):
    """A night of the fake port's suite on its master combination, in its own workspace."""
    ws = Workspace(repo=REPO, home=root / "home")
    port = FakePort(root, workloads=WORKLOADS, latency_us=latency_us)
    store = Store(url)
    try:
        nightly = Nightly(ws, store, port=port, suite=port.suite_path(),
                          dashboard_dir=ws.home / "site")
        return nightly.start(NightlyOptions(tier="smoke", no_tests=True, bisect_probes=0),
                             [port.combination()])
    finally:
        store.close()


def test_a_night_on_postgresql_stores_every_job_and_publishes(postgres_url, tmp_path):
    result = one_night(tmp_path, postgres_url)
    assert result.ok
    store = Store(postgres_url)
    jobs = store.jobs(result.run_id)
    workloads = [job for job in jobs if job.stage == "workloads"]
    assert len(workloads) == 4 and {job.status for job in workloads} == {"passed"}
    assert store.run(result.run_id).status == "completed"
    latency = [m for m in store.metrics(run_id=result.run_id) if m["name"] == "latency_us"]
    assert sorted(m["value"] for m in latency) == [100.0] * 4
    assert store.op_profile(workloads[0].id)[0]["op_type"] == "Conv"
    assert "completed" in (tmp_path / "home" / "site" / "index.html").read_text()
    store.close()


def night_in_a_process(root, url, latency_us, start, results) -> None:
    try:
        start.wait(timeout=120)
        result = one_night(root, url, latency_us)
        results.put((latency_us, result.run_id, result.ok, ""))
    except BaseException as exc:  # the parent asserts that every night ended ok
        results.put((latency_us, None, False, f"{type(exc).__name__}: {exc}"))


def two_nights_at_once(tmp_path: Path, url: str) -> dict[float, tuple]:
    """Two processes each run a night into `url` at the same moment; {latency: result}.
    Their simulated latencies differ, so every stored figure says which night wrote it."""
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(2), context.Queue()
    children = [context.Process(target=night_in_a_process,
                                args=(tmp_path / f"night{n}", url, latency, start, results))
                for n, latency in enumerate((100.0, 200.0))]
    for child in children:
        child.start()
    found = {}
    for _ in children:
        latency, run_id, ok, error = results.get(timeout=300)
        found[latency] = (run_id, ok, error)
    for child in children:
        child.join(timeout=60)
    return found


def check_two_nights(url: str, found: dict) -> None:
    assert {latency: (ok, error) for latency, (_, ok, error) in found.items()} == {
        100.0: (True, ""), 200.0: (True, "")}
    store = Store(url)
    runs = {latency: run_id for latency, (run_id, _, _) in found.items()}
    assert len(set(runs.values())) == 2
    for latency, run_id in runs.items():
        jobs = store.jobs(run_id)
        assert store.run(run_id).status == "completed"
        assert {job.run_id for job in jobs} == {run_id}
        workloads = [job for job in jobs if job.stage == "workloads"]
        # Nothing lost: every planned job of each night is there, finished and passed.
        assert len(workloads) == len(WORKLOADS) * 2
        assert {(job.key, job.status, job.message) for job in jobs if job.status != "passed"} == set()
        metrics = store.metrics(run_id=run_id)
        job_ids = {job.id for job in jobs}
        # Never mixed: a night's figures hang on its own jobs and carry its own latency.
        assert {m["job_id"] for m in metrics} <= job_ids
        assert sorted(m["value"] for m in metrics if m["name"] == "latency_us") == \
            [latency] * len(workloads)
        for job in workloads:
            assert len(store.op_profile(job.id)) == 3
    # Both nights measured the same combination: one row for it, shared.
    combinations = {c["key"] for run_id in runs.values() for c in store.run_combinations(run_id)}
    assert len(combinations) == 1
    store.close()


def test_two_nights_writing_one_sqlite_store_at_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared' / 'results.db'}"
    check_two_nights(url, two_nights_at_once(tmp_path, url))


def test_two_nights_writing_one_postgresql_store_at_once(postgres_url, tmp_path):
    check_two_nights(postgres_url, two_nights_at_once(tmp_path, postgres_url))
