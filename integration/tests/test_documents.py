"""Every loader is total (stackci/documents.py and the loaders reading through it): any bytes
give a valid object or a one-line UsageError that names the file as the user knows it.
Fuzzed with hypothesis: random bytes, random YAML trees, boundary numbers, non-UTF-8."""

import math
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from stackci.compat.contracts import load_contract
from stackci.durations import parse_duration
from stackci.errors import UsageError
from stackci.sources.modules import version_from_pyproject
from stackci.sources.resolve import load_manifest, parse_pin
from stackci.workloads.npz import load_npz
from stackci.workloads.suite import load_suite
from stackci.workspace import Workspace

FUZZ = settings(max_examples=50, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
NUMBERS = st.one_of(st.integers(min_value=-2**70, max_value=2**70),
                    st.sampled_from([0, -1, 1, 2**63, -2**63, 1e308, -1e308, 5e-324]),
                    st.floats(allow_nan=True, allow_infinity=True))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=12),
                    st.sampled_from(["smoke", "file:x.onnx", "driver", "1.0", ">=1.0,<2",
                                     "master", "edge"]))
KEYS = st.one_of(st.sampled_from(["workloads", "defaults", "name", "source", "tiers", "skus",
                                  "tolerance", "modules", "module", "provides", "requires",
                                  "driver", "runtime", "opslib", "compiler", "serving",
                                  "conformance", "precision", "atol"]), st.text(max_size=6),
                 st.integers(min_value=-3, max_value=3))
TREES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=5)), max_leaves=25)
BYTES = st.one_of(st.binary(max_size=300),
                  st.sampled_from([b"\xff\xfe\x00", b"caf\xe9: 1\n", b"a: 2001-13-45\n",
                                   b"[" * 2000, b"a: &x [*x]\n", b"\x00", b"---\n...\n"]))


def one_line_naming(error: UsageError, shown: str) -> None:
    text = str(error)
    assert "\n" not in text and text.startswith(shown), text


def check(load, path: Path, shown: str, raw: bytes) -> None:
    path.write_bytes(raw)
    try:
        load()
    except UsageError as error:
        one_line_naming(error, shown)


def dumped(tree) -> bytes:
    return yaml.safe_dump(tree, allow_unicode=True).encode()


@given(st.one_of(BYTES, TREES.map(dumped)))
@FUZZ
def test_suite(tmp_path, raw):
    path = tmp_path / "suite.yaml"
    check(lambda: load_suite(path), path, str(path), raw)


@given(st.one_of(BYTES, TREES.map(dumped), st.fixed_dictionaries(
    {"modules": st.dictionaries(st.sampled_from(["driver", "runtime", "opslib", "compiler",
                                                 "serving", "x"]), SCALARS)}).map(dumped)))
@FUZZ
def test_release_manifest(tmp_path, raw):
    releases = tmp_path / "contracts" / "releases"
    releases.mkdir(parents=True, exist_ok=True)
    ws = Workspace(repo=tmp_path, home=tmp_path / "home")
    check(lambda: load_manifest(ws, "fuzz"), releases / "fuzz.yaml",
          "contracts/releases/fuzz.yaml", raw)


@given(st.one_of(BYTES, TREES.map(dumped), st.fixed_dictionaries(
    {"module": SCALARS, "provides": TREES, "requires": TREES}).map(dumped)))
@FUZZ
def test_contract(tmp_path, raw):
    shown = "modules/runtime/contract.yaml @ 0123456789ab"
    path = tmp_path / "contract.yaml"
    check(lambda: load_contract(path, shown=shown), path, shown, raw)


@given(st.one_of(BYTES, st.builds(lambda v: f'[project]\nname = "x"\nversion = {v}\n'.encode(),
                                  st.sampled_from(['"1.0"', '"x"', "1", "[1]", "{}",
                                                   '"1.0.0.dev0"', "true", "1e400"]))))
@FUZZ
def test_pyproject_at_a_commit(raw):
    where = "modules/driver/pyproject.toml at 0123456789ab"
    try:
        # git hands the text over with surrogate escapes for bytes that are not UTF-8
        version_from_pyproject(raw.decode("utf-8", "surrogateescape"), where)
    except UsageError as error:
        one_line_naming(error, where)


def test_pyproject_blames_the_right_field():
    where = "modules/driver/pyproject.toml at 0123456789ab"
    for text, blamed in (("[project\n", "not valid TOML"), ("x = 1\n", "[project]"),
                         ('[project]\nversion = 1\n', "project.version: expected"),
                         ('[project]\nversion = "x.y"\n', "is not a PEP 440 version")):
        try:
            version_from_pyproject(text, where)
        except UsageError as error:
            assert str(error).startswith(f"{where}: ") and blamed in str(error), error
        else:
            raise AssertionError(text)


@given(BYTES)
@FUZZ
def test_npz_inputs(tmp_path, raw):
    path = tmp_path / "inputs.npz"
    path.write_bytes(raw)
    try:
        load_npz(path)
    except UsageError as error:
        assert "\n" not in str(error) and str(path) in str(error)


@given(st.one_of(st.text(max_size=20), NUMBERS.map(str),
                 st.sampled_from(["1e400s", "nan", "inf", "-0", "0s", "1h30m", "99999999999d"])))
@FUZZ
def test_durations(text):
    try:
        seconds = parse_duration(text, "--budget")
    except UsageError as error:
        assert "\n" not in str(error) and str(error).startswith("--budget")
    else:
        assert math.isfinite(seconds) and seconds > 0


@given(st.text(max_size=40))
@FUZZ
def test_pins(text):
    try:
        parse_pin(text)
    except UsageError as error:
        assert "\n" not in str(error)
