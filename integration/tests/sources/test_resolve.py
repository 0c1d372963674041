"""Resolving combinations from git history: master, releases, manifests, pins."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given, strategies as st

from fakestack import commit, git, make_stack, release, workspace, write_module
from stackci import cli
from stackci.sources.combination import Combination
from stackci.sources.build import export_source
from stackci.sources.releases import releases
from stackci.sources.resolve import parse_pin, resolve
from stackci.errors import UsageError
from stackci.workspace import MODULES


@pytest.fixture
def stack(tmp_path):
    repo = make_stack(tmp_path)
    return repo, workspace(repo, tmp_path / "home")


def test_master_is_head_of_every_module(stack):
    repo, ws = stack
    combo = resolve(ws)
    head = git(repo, "rev-parse", "HEAD")
    assert combo.name == "master"
    assert list(combo.modules) == list(MODULES)
    for module, mv in combo.modules.items():
        assert (mv.module, mv.version, mv.commit) == (module, "0.1.0.dev0", head)
        assert mv.tree_hash == git(repo, "rev-parse", f"HEAD:modules/{module}")


def test_key_follows_module_content_not_commits(stack):
    repo, ws = stack
    before = resolve(ws)
    (repo / "README.md").write_text("outside every module\n")
    commit(repo, "docs only")
    same = resolve(ws)
    assert same.modules["driver"].commit != before.modules["driver"].commit
    assert same.key == before.key
    write_module(repo, "opslib", third_party=("packaging",))
    commit(repo, "opslib change")
    changed = resolve(ws)
    assert changed.key != before.key
    assert changed.modules["driver"].tree_hash == same.modules["driver"].tree_hash


def test_combination_round_trips_through_dict(stack):
    _, ws = stack
    combo = resolve(ws)
    again = Combination.from_dict(json.loads(json.dumps(combo.to_dict())))
    assert again == combo and again.key == combo.key


def test_releases_are_first_commits_of_non_dev_versions(stack):
    repo, ws = stack
    first = release(repo, "driver", "1.0.0")
    write_module(repo, "driver", "1.0.0", third_party=("packaging",))  # same version: no release
    commit(repo, "driver dependency")
    second = release(repo, "driver", "1.1.0")
    release(repo, "driver", "1.2.0.dev0")
    found = releases(ws, "driver")
    assert [(mv.version, mv.commit) for mv in found] == [("1.0.0", first), ("1.1.0", second)]
    assert found[0].tree_hash == git(repo, "rev-parse", f"{first}:modules/driver")
    assert releases(ws, "runtime") == []


def test_releases_sorted_by_version_not_date(stack):
    repo, ws = stack
    release(repo, "runtime", "2.0.0")
    release(repo, "runtime", "1.5.0")  # a backport cut after 2.0.0
    assert [mv.version for mv in releases(ws, "runtime")] == ["1.5.0", "2.0.0"]
    assert resolve(ws, "release:latest", ["driver=master", "opslib=master", "compiler=master",
                                          "serving=master"]).modules["runtime"].version == "2.0.0"


def test_release_latest_needs_a_release_of_every_module(stack):
    repo, ws = stack
    for module in MODULES[:-1]:
        release(repo, module, "1.0.0")
    with pytest.raises(UsageError, match="serving has no release yet"):
        resolve(ws, "release:latest")
    tagged = release(repo, "serving", "1.0.0")
    combo = resolve(ws, "release:latest")
    assert combo.modules["serving"].commit == tagged
    assert {mv.version for mv in combo.modules.values()} == {"1.0.0"}


def test_pins_replace_single_modules(stack):
    repo, ws = stack
    old = release(repo, "driver", "1.0.0")
    release(repo, "driver", "1.1.0")
    combo = resolve(ws, "master", ["driver=1.0.0", "runtime=master"])
    assert combo.name == "master+driver=1.0.0+runtime=master"
    assert (combo.modules["driver"].version, combo.modules["driver"].commit) == ("1.0.0", old)
    assert resolve(ws, "master", ["driver=1.0"]).modules["driver"].commit == old
    assert resolve(ws, "master", ["driver=latest"]).modules["driver"].version == "1.1.0"
    by_commit = resolve(ws, "master", [f"opslib={old[:10]}"]).modules["opslib"]
    assert by_commit.commit == old


@pytest.mark.parametrize("pin, message", [
    ("driver", "malformed pin 'driver'"),
    ("gpu=1.0.0", "unknown module 'gpu'"),
    ("driver=not a version", "malformed pin"),
    ("driver=v1_x", "'v1_x' is not a release version"),
    ("driver=9.9.9", r"driver has no release 9.9.9 \(releases: 1.0.0\)"),
    ("driver=deadbeef", "no commit 'deadbeef'"),
])
def test_bad_pins_name_the_problem(stack, pin, message):
    repo, ws = stack
    release(repo, "driver", "1.0.0")
    with pytest.raises(UsageError, match=message):
        resolve(ws, "master", [pin])


def test_pin_to_a_commit_before_the_module_existed(tmp_path):
    repo = make_stack(tmp_path)
    ws = workspace(repo, tmp_path / "home")
    git(repo, "rm", "-r", "-q", "modules/serving")
    commit(repo, "no serving")
    write_module(repo, "serving")
    commit(repo, "serving back")
    without = git(repo, "rev-parse", "HEAD~1")
    with pytest.raises(UsageError, match=f"module serving does not exist at commit {without[:12]}"):
        resolve(ws, "master", [f"serving={without}"])


def test_stack_in_a_subdirectory_of_its_git_repository(tmp_path):
    repo = make_stack(tmp_path, git_init=False)
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "config", "user.email", "test@example.com")
    git(tmp_path, "config", "user.name", "Test")
    commit(tmp_path, "stack under stack/")
    first = release(repo, "driver", "1.0.0")
    ws = workspace(repo, tmp_path / "home")
    assert [mv.commit for mv in releases(ws, "driver")] == [first]
    driver = resolve(ws).modules["driver"]
    assert driver.tree_hash == git(tmp_path, "rev-parse", "HEAD:stack/modules/driver")
    source = export_source(ws, driver)
    assert (source / "pyproject.toml").read_text().count('version = "1.0.0"') == 1


def test_unknown_combination_name(stack):
    _, ws = stack
    with pytest.raises(UsageError, match="unknown combination 'nightly'"):
        resolve(ws, "nightly")


def test_manifest_names_one_release_per_module(stack):
    repo, ws = stack
    for module in MODULES:
        release(repo, module, "1.0.0")
    release(repo, "compiler", "1.1.0")
    manifests = repo / "contracts" / "releases"
    manifests.mkdir(parents=True)
    versions = {m: "1.0.0" for m in MODULES}
    (manifests / "stack-1.yaml").write_text(json.dumps({"name": "stack-1", "modules": versions}))
    combo = resolve(ws, "release:stack-1")
    assert {m: mv.version for m, mv in combo.modules.items()} == versions
    (manifests / "partial.yaml").write_text("modules: {driver: 1.0.0}\n")
    with pytest.raises(UsageError, match=r"partial.yaml: modules: missing \['runtime'"):
        resolve(ws, "release:partial")
    with pytest.raises(UsageError,
                       match=r"no release manifest 'absent' in contracts/releases/ "
                             r"\(known: partial, stack-1\)"):
        resolve(ws, "release:absent")
    # A manifest is a shipped set: pins may repeat it, not change it.
    assert resolve(ws, "release:stack-1", ["driver=1.0.0"]).modules["driver"].version == "1.0.0"
    with pytest.raises(UsageError, match="pin compiler=1.1.0 conflicts with "
                                         "contracts/releases/stack-1.yaml, which ships compiler 1.0.0"):
        resolve(ws, "release:stack-1", ["compiler=1.1.0"])
    assert resolve(ws, "release:latest", ["compiler=1.0.0"]).modules["compiler"].version == "1.0.0"


def test_conflicting_pins_are_refused(stack):
    _, ws = stack
    with pytest.raises(UsageError, match="conflicting pins driver=master and driver=worktree"):
        resolve(ws, "master", ["driver=master", "driver=worktree"])


def test_tag_that_disagrees_with_the_version_history(stack):
    repo, ws = stack
    release(repo, "driver", "1.0.0")
    git(repo, "tag", "driver/v1.0.0")
    assert [mv.version for mv in releases(ws, "driver")] == ["1.0.0"]
    release(repo, "driver", "1.0.1")
    git(repo, "tag", "driver/v1.0.1", "HEAD~1")
    with pytest.raises(UsageError, match="tag driver/v1.0.1 .* disagrees"):
        releases(ws, "driver")


def test_without_git_master_is_the_working_tree(tmp_path, caplog):
    repo = make_stack(tmp_path, git_init=False)
    ws = workspace(repo, tmp_path / "home")
    with caplog.at_level(logging.WARNING, logger="stackci"):
        combo = resolve(ws)
    assert "not a git checkout" in caplog.text
    driver = combo.modules["driver"]
    assert (driver.commit, driver.version) == ("worktree", "0.1.0.dev0")
    cache = repo / "modules" / "driver" / "src" / "npu_driver" / "__pycache__"
    cache.mkdir()
    (cache / "x.pyc").write_bytes(b"\0")
    assert resolve(ws).modules["driver"].tree_hash == driver.tree_hash
    write_module(repo, "driver", "0.2.0")
    assert resolve(ws).modules["driver"].tree_hash != driver.tree_hash
    assert releases(ws, "driver") == []


def test_worktree_name_includes_uncommitted_changes(stack):
    repo, ws = stack
    write_module(repo, "compiler", "0.3.0")
    combo = resolve(ws, "worktree")
    assert combo.modules["compiler"].version == "0.3.0"
    assert resolve(ws).modules["compiler"].version == "0.1.0.dev0"


def test_versions_command_lists_releases(stack, monkeypatch, capsys):
    repo, ws = stack
    first = release(repo, "driver", "1.0.0")
    monkeypatch.chdir(repo)
    assert cli.main(["versions", "--json", "--home", str(ws.home)]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["history_missing"] is None
    table = listing["modules"]
    assert [r["commit"] for r in table["driver"]["releases"]] == [first]
    assert table["driver"]["releases"][0]["provides"] == "driver-api 1.0"
    assert table["serving"]["releases"] == []
    assert cli.main(["versions", "--home", str(ws.home)]) == 0
    assert "1.0.0" in capsys.readouterr().out


# --- the pin parser --------------------------------------------------------------------------

versions = st.builds(lambda *parts: ".".join(map(str, parts)),
                     st.integers(0, 30), st.integers(0, 30), st.integers(0, 30))
commits = st.text("0123456789abcdef", min_size=4, max_size=40)
values = st.one_of(versions, commits, st.sampled_from(["master", "latest", "worktree"]))


@given(module=st.sampled_from(MODULES), value=values,
       spaces=st.sampled_from(["", " "]))
def test_valid_pins_parse_to_module_and_value(module, value, spaces):
    assert parse_pin(f"{spaces}{module}{spaces}={spaces}{value}") == (module, value)


@given(st.text(max_size=40))
def test_any_text_parses_or_is_a_usage_error(text):
    try:
        module, value = parse_pin(text)
    except UsageError as exc:
        assert repr(text) in str(exc) or "unknown module" in str(exc)
    else:
        assert module in MODULES and value and "=" in text
