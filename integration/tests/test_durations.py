import pytest

from stackci.durations import format_duration, parse_duration
from stackci.nightly.budget import Budget
from stackci.errors import UsageError


@pytest.mark.parametrize("text,seconds", [("90", 90), ("90s", 90), ("30m", 1800),
                                          ("24h", 86400), ("1d", 86400), ("1h30m", 5400),
                                          ("0.5h", 1800), (" 2H ", 7200)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "10x", "h", "5m garbage", "0", "-5"])
def test_bad_durations_name_the_option(text):
    with pytest.raises(UsageError, match="--budget"):
        parse_duration(text, "--budget")


def test_format_duration():
    assert [format_duration(s) for s in (None, 5.25, 125, 86400)] == ["-", "5.2s", "2m05s",
                                                                        "24h00m"]


def test_budget_counts_earlier_sessions():
    now = [100.0]
    budget = Budget(60.0, used_before=50.0, clock=lambda: now[0])
    now[0] += 5
    assert budget.used() == 55.0
    assert budget.fits(5.0) and not budget.fits(5.1)
