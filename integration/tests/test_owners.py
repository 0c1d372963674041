"""The OWNERS file: CODEOWNERS-style patterns to teams, last match wins, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackci.owners import load_owners, parse_owners
from stackci.errors import UsageError

REPO = Path(__file__).resolve().parents[2]


def test_the_repository_owners_file_routes_every_module_to_its_team():
    owners = load_owners(REPO / "OWNERS")
    for module in ("driver", "runtime", "opslib", "compiler", "serving"):
        assert owners.owner_of_module(module).name == module
    assert owners.owner_of("modules/driver/src/npu_driver/skus/npu-dc.yaml").name == "hardware"
    assert owners.owner_of("modules/driver/src/npu_driver/perf.py").name == "driver"
    assert owners.owner_of("integration/src/stackci/cli.py").name == "harness"
    assert owners.owner_of("workloads/suite.yaml").name == "architecture"
    assert owners.owner_of("noxfile.py").name == "harness"  # the catch-all first rule
    assert all("@" in contact for contact in owners.teams().values())


@pytest.mark.parametrize("pattern, path, matches", [
    ("modules/opslib/", "modules/opslib/src/npu_opslib/ops/nn.py", True),
    ("modules/opslib/", "modules/opslibx/a.py", False),
    ("modules/**/tests/", "modules/driver/tests/test_perf.py", True),
    ("modules/**/tests/", "modules/tests/x.py", True),
    ("*.yaml", "modules/driver/src/npu_driver/skus/npu-dc.yaml", True),
    ("*.yaml", "modules/driver/perf.py", False),
    ("docs/*.md", "docs/design.md", True),
    ("docs/*.md", "docs/sub/design.md", False),
    ("skus", "modules/driver/src/npu_driver/skus/npu-dc.yaml", True),
    ("perf.p?", "modules/driver/src/npu_driver/perf.py", True),
])
def test_patterns(pattern, path, matches):
    owners = parse_owners(f"{pattern} team", "OWNERS")
    assert (owners.owner_of(path) is not None) is matches


def test_the_last_matching_rule_wins():
    owners = parse_owners("* everyone\nmodules/ modules a@b.io\nmodules/x/ x-team  # mine\n",
                          "OWNERS")
    assert owners.owner_of("modules/x/y.py").name == "x-team"
    assert owners.owner_of("modules/z.py").to_dict() == {"name": "modules", "contact": "a@b.io"}
    assert owners.owner_of("README.md").name == "everyone"


@pytest.mark.parametrize("text, message", [
    ("modules/", "line 1: expected 'PATTERN TEAM [CONTACT]'"),
    ("# only a comment\n\n", "no ownership rules"),
    ("a/ Team", "team 'Team' must be lowercase"),
    ("a/ team not-an-address", "contact 'not-an-address' must be an e-mail"),
    ("a/ team x@y.z extra", "line 1: expected"),
    ("ok/ team\n*** team", "line 2: pattern '***'"),
])
def test_bad_lines_are_one_line_errors_naming_file_and_line(text, message, tmp_path):
    path = tmp_path / "OWNERS"
    path.write_text(text)
    with pytest.raises(UsageError) as error:
        load_owners(path)
    assert message in str(error.value) and str(path) in str(error.value)
    assert "\n" not in str(error.value)


def test_a_missing_or_binary_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load_owners(tmp_path / "OWNERS")
    (tmp_path / "OWNERS").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UsageError, match="cannot read ownership file"):
        load_owners(tmp_path / "OWNERS")
