"""Run journals (results/journal.py): every finished result on disk before the database,
replayed into a store that lacks it, never over a newer result."""

from pathlib import Path

import pytest

from fakes import FakePort
from stackci.nightly.plan import NightlyOptions
from stackci.nightly.run import Nightly
from stackci.results.journal import Journal, journal_path, read_journal
from stackci.results.store import Store
from stackci.workspace import Workspace

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def night(tmp_path):
    ws = Workspace(repo=REPO, home=tmp_path / "home")
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    port = FakePort(tmp_path, workloads=("resnet",))
    result = Nightly(ws, store, port=port, suite=port.suite_path(),
                     dashboard_dir=ws.home / "site").start(
        NightlyOptions(tier="smoke", no_tests=True), [port.combination()])
    yield ws, store, result.run_id
    store.close()


def test_every_finished_job_is_journaled_with_its_evidence(night):
    ws, store, run_id = night
    entries = read_journal(journal_path(ws.home, run_id))
    assert entries[0]["type"] == "run" and entries[0]["run_id"] == run_id
    jobs = {entry["key"]: entry for entry in entries[1:]}
    stored = {job.key: job for job in store.jobs(run_id)}
    assert set(jobs) == set(stored)
    for key, entry in jobs.items():
        assert (entry["status"], entry["message"]) == (stored[key].status, stored[key].message)
    build = next(entry for entry in jobs.values() if entry["stage"] == "build")
    assert build["lock"] and build["skus"]


def test_replay_into_a_fresh_store_rebuilds_the_run(night, tmp_path):
    ws, store, run_id = night
    fresh = Store(f"sqlite:///{tmp_path / 'fresh.db'}")
    replayed, kept = fresh.replay(read_journal(journal_path(ws.home, run_id)))
    assert (replayed, kept) == (len(store.jobs(run_id)), 0)
    assert {(j.key, j.status, j.message) for j in fresh.jobs(run_id)} == \
        {(j.key, j.status, j.message) for j in store.jobs(run_id)}
    assert len(fresh.metrics(run_id=run_id)) == len(store.metrics(run_id=run_id))
    assert fresh.skus() == store.skus()
    assert fresh.run(run_id).plan == store.run(run_id).plan
    # Replayed again: everything is there already.
    assert fresh.replay(read_journal(journal_path(ws.home, run_id))) == (0, replayed)


def test_replay_never_overwrites_a_newer_result(night):
    ws, store, run_id = night
    entries = read_journal(journal_path(ws.home, run_id))
    assert store.replay(entries) == (0, len(entries) - 1)


def test_a_torn_last_line_is_skipped(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append({"type": "job", "run_id": 1, "key": "a"})
    with open(journal.path, "a") as file:
        file.write('{"type": "job", "run_id": 1, "ke')
    assert [entry["key"] for entry in journal.entries()] == ["a"]
