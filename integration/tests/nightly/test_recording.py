"""A database that fails mid-run (nightly/recording.py): the night goes on, on its journal,
says so once, ends with one line naming the journal, and the journal replays every result."""

import pytest
from sqlalchemy.exc import OperationalError

from fakes import FakePort
from stackci.errors import StackciError
from stackci.nightly.plan import NightlyOptions
from stackci.nightly.run import Nightly
from stackci.results.journal import journal_path, read_journal
from stackci.results.store import Store


class FailingStore(Store):
    """Its job writes fail from the `after`-th finished job on (a page gone bad mid-run)."""

    def __init__(self, url, after: int):
        super().__init__(url)
        self.after, self.finished = after, 0

    def finish_job(self, *args, **kwargs):
        self.finished += 1
        if self.finished > self.after:
            raise OperationalError("UPDATE jobs", {}, Exception("database disk image is "
                                                                "malformed"))
        return super().finish_job(*args, **kwargs)

    def start_job(self, *args, **kwargs):
        if self.finished >= self.after:
            raise OperationalError("UPDATE jobs", {}, Exception("database disk image is "
                                                                "malformed"))
        return super().start_job(*args, **kwargs)


def test_the_night_goes_on_on_its_journal(ws, tmp_path, capsys):
    store = FailingStore(f"sqlite:///{tmp_path / 'results.db'}", after=2)
    port = FakePort(tmp_path)
    nightly = Nightly(ws, store, port=port, suite=port.suite_path(),
                      dashboard_dir=ws.home / "site")
    with pytest.raises(StackciError, match=r"the results database failed during the run "
                       r"\(writing the (start|result) of workloads:.*database disk image is "
                       r"malformed\); \d+ finished result\(s\) are in .*journal.jsonl"):
        nightly.start(NightlyOptions(tier="smoke", no_tests=True), [port.combination()])
    err = capsys.readouterr().err
    assert err.count("the results database failed") == 1
    assert port.count("run_model") == 4  # every workload ran although the store had failed
    entries = read_journal(journal_path(ws.home, 1))
    jobs = {e["key"]: e["status"] for e in entries if e["type"] == "job"}
    assert set(jobs) == {job.key for job in store.jobs(1) if job.stage != "publish"}
    assert {status for key, status in jobs.items() if key.startswith(("build", "contracts",
                                                                      "workloads"))} == {"passed"}
    fresh = Store(f"sqlite:///{tmp_path / 'fresh.db'}")
    assert fresh.replay(entries)[1] == 0
    assert {job.status for job in fresh.jobs(1) if job.stage != "bisect"} == {"passed"}
