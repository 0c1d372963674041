"""Cutting a release: version, CHANGELOG, commit and tag, and the harness then finds it."""

from __future__ import annotations

import datetime as dt

import pytest
from fakestack import commit, git, make_stack, workspace

from stackci.sources.releases import releases
from stackci.errors import UsageError
from stackci.sources.cut_release import cut_release

TODAY = dt.date(2026, 11, 21)


@pytest.fixture
def stack(tmp_path):
    repo = make_stack(tmp_path)
    for module in ("driver", "runtime"):
        (repo / "modules" / module / "CHANGELOG.md").write_text(
            "# Changelog\n\n## Unreleased\n\n- first line\n- second line\n")
    commit(repo, "changelogs")
    return repo, workspace(repo, tmp_path / "home")


def test_a_release_moves_the_notes_commits_tags_and_is_found(stack):
    repo, ws = stack
    done = cut_release(ws, "driver", "1.0.0", commit=True, today=TODAY)
    assert (done.previous, done.version, done.notes) == ("0.1.0.dev0", "1.0.0",
                                                         ["- first line", "- second line"])
    changelog = (repo / "modules/driver/CHANGELOG.md").read_text()
    assert changelog == ("# Changelog\n\n## Unreleased\n\n## 1.0.0 - 2026-11-21\n\n"
                         "- first line\n- second line\n")
    assert 'version = "1.0.0"' in (repo / "modules/driver/pyproject.toml").read_text()
    assert git(repo, "rev-parse", "driver/v1.0.0^{commit}") == done.commit
    found = releases(ws, "driver")
    assert [(r.version, r.commit) for r in found] == [("1.0.0", done.commit)]


@pytest.mark.parametrize("version, message", [
    ("0.0.9", "not newer than driver's 0.1.0.dev0"),
    ("1.0", "expected MAJOR.MINOR.PATCH"),
    ("2.0.0rc1", "expected MAJOR.MINOR.PATCH"),
    ("one", "not a PEP 440 version"),
])
def test_bad_versions_are_refused(stack, version, message):
    _, ws = stack
    with pytest.raises(UsageError, match=message):
        cut_release(ws, "driver", version)


def test_nothing_to_release_and_dirty_trees_are_refused(stack):
    repo, ws = stack
    cut_release(ws, "driver", "1.0.0", commit=True, today=TODAY)
    with pytest.raises(UsageError, match="nothing under '## Unreleased'"):
        cut_release(ws, "driver", "1.0.1")
    (repo / "modules/runtime/src/npu_runtime/new.py").write_text("x = 1\n")
    with pytest.raises(UsageError, match="modules/runtime has uncommitted changes"):
        cut_release(ws, "runtime", "1.0.0", commit=True)
    with pytest.raises(UsageError, match="unknown module 'gpu'"):
        cut_release(ws, "gpu", "1.0.0")
