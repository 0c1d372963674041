"""Assembling environments: exported sources, wheels cached by tree hash, envs by lock hash."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from fakestack import commit, git, make_stack, release, workspace, write_module
from stackci import cli
from stackci.sources.build import COMPLETE_MARKER, BuildError, ensure_environment, export_source
from stackci.sources.resolve import resolve
from stackci.workspace import MODULES

REAL_REPO = Path(__file__).resolve().parents[3]


def make_fake_stack(tmp_path):
    repo = make_stack(tmp_path)
    # One third-party dependency, pinned, so the lock has something to record.
    write_module(repo, "driver", third_party=("packaging",))
    (repo / "constraints.txt").write_text("packaging==26.3\n")
    commit(repo, "driver needs packaging")
    return repo, workspace(repo, tmp_path / "home")


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("stackci-cache")


@pytest.fixture
def stack(tmp_path, shared_cache):
    """A fake stack whose wheel cache is shared between tests: the fake modules' trees are the
    same in every test, so each wheel is built once (tests that count builds use fresh_stack)."""
    repo, ws = make_fake_stack(tmp_path)
    (ws.home / "cache").symlink_to(shared_cache, target_is_directory=True)
    return repo, ws


@pytest.fixture
def fresh_stack(tmp_path):
    return make_fake_stack(tmp_path)


def wheel_mtimes(ws) -> dict[str, float]:
    return {p.name: p.stat().st_mtime_ns for p in (ws.cache / "wheels").glob("*/*.whl")}


def run_in(env, code: str) -> str:
    return subprocess.run([str(env.python), "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_environment_installs_the_combination_and_writes_its_lock(fresh_stack):
    repo, ws = fresh_stack
    old = release(repo, "runtime", "1.0.0")
    release(repo, "runtime", "1.1.0")
    combo = resolve(ws, "master", ["runtime=1.0.0"])
    steps = []
    env = ensure_environment(ws, combo, progress=steps.append)

    assert env.path.parent == ws.home / "envs" and (env.path / COMPLETE_MARKER).is_file()
    assert run_in(env, "import npu_runtime, npu_serving; print(npu_runtime.__version__)") == "1.0.0"
    lock = json.loads((env.path / "lock.json").read_text())
    assert lock == env.lock
    assert lock["combination"] == "master+runtime=1.0.0"
    assert lock["modules"]["runtime"] == {
        "module": "runtime", "version": "1.0.0", "commit": old,
        "tree_hash": git(repo, "rev-parse", f"{old}:modules/runtime"),
        "wheel": "npu_runtime-1.0.0-py3-none-any.whl"}
    assert lock["third_party"] == {"packaging": "26.3"}
    assert sum("build wheel" in s for s in steps) == len(MODULES)
    assert (env.sources["runtime"] / "pyproject.toml").read_text().count('version = "1.0.0"') == 1
    assert (env.sources["driver"] / "contract.yaml").is_file()


def test_second_build_reuses_everything(stack):
    _, ws = stack
    combo = resolve(ws)
    first = ensure_environment(ws, combo)
    built = wheel_mtimes(ws)
    steps = []
    again = ensure_environment(ws, combo, progress=steps.append)
    assert again.path == first.path and again.lock == first.lock
    assert wheel_mtimes(ws) == built
    assert not any(s.startswith(("build wheel", "create environment")) for s in steps)
    assert sum(s.startswith("reuse wheel") for s in steps) == len(MODULES)


def test_changing_one_module_rebuilds_only_its_wheel(fresh_stack):
    repo, ws = fresh_stack
    first = ensure_environment(ws, resolve(ws))
    built = wheel_mtimes(ws)
    release(repo, "compiler", "1.0.0")
    steps = []
    second = ensure_environment(ws, resolve(ws), progress=steps.append)
    assert second.path != first.path
    assert [s for s in steps if s.startswith("build wheel")] == ["build wheel compiler 1.0.0"]
    assert {n: t for n, t in wheel_mtimes(ws).items() if n in built} == built
    assert first.path.is_dir()  # the old environment stays usable for its combination


def test_an_unfinished_environment_is_rebuilt_not_reused(stack):
    _, ws = stack
    env = ensure_environment(ws, resolve(ws))
    (env.path / COMPLETE_MARKER).unlink()  # as if the build had been killed before the end
    (env.path / "lock.json").write_text("half written")
    steps = []
    again = ensure_environment(ws, resolve(ws), progress=steps.append)
    assert f"create environment {env.path}" in steps
    assert again.lock["modules"]["driver"]["version"] == "0.1.0.dev0"


def test_a_module_that_does_not_build_names_module_and_commit(stack):
    repo, ws = stack
    write_module(repo, "opslib", "0.2.0", broken=True)
    bad = commit(repo, "break opslib")
    with pytest.raises(BuildError, match=f"build of opslib failed: opslib 0.2.0 at {bad[:12]}: "
                                         ".*missing_backend.*log: ") as caught:
        ensure_environment(ws, resolve(ws))
    assert caught.value.module == "opslib"
    log = Path(str(caught.value).rsplit("log: ", 1)[1].rstrip(")"))
    assert "uv build" in log.read_text()
    assert not (ws.cache / "wheels" / resolve(ws).modules["opslib"].tree_hash).exists()


def test_an_unsatisfiable_environment_is_a_build_error(stack):
    repo, ws = stack
    (repo / "constraints.txt").write_text("packaging==0.0.1\n")
    with pytest.raises(BuildError, match="build of environment failed: master: .*packaging"):
        ensure_environment(ws, resolve(ws))


def test_export_is_the_subtree_at_the_commit(stack):
    repo, ws = stack
    combo = resolve(ws)
    (repo / "modules" / "driver" / "uncommitted.txt").write_text("not in git")
    source = export_source(ws, combo.modules["driver"])
    assert source == ws.cache / "src" / combo.modules["driver"].tree_hash
    exported = sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())
    assert exported == ["contract.yaml", "pyproject.toml", "src/npu_driver/__init__.py"]
    assert not list((ws.cache / "src").glob(".tmp-*"))


def test_worktree_combination_builds_without_git(tmp_path):
    repo = make_stack(tmp_path, git_init=False)
    ws = workspace(repo, tmp_path / "home")
    env = ensure_environment(ws, resolve(ws, "worktree"))
    assert env.lock["modules"]["serving"]["commit"] == "worktree"
    assert run_in(env, "import npu_serving; print(npu_serving.__version__)") == "0.1.0.dev0"


def test_build_command_prints_the_environment(stack, monkeypatch, capsys):
    repo, ws = stack
    monkeypatch.chdir(repo)
    assert cli.main(["build", "--home", str(ws.home)]) == 0
    out, err = capsys.readouterr()
    path = Path(out.strip())
    assert path.parent == ws.home / "envs" and "stackci: create environment" in err
    assert cli.main(["build", "--json", "--home", str(ws.home)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["path"] == str(path) and report["lock"]["third_party"] == {"packaging": "26.3"}
    assert cli.main(["build", "--pin", "driver=7.0.0", "--home", str(ws.home)]) == 2
    assert "stackci: error: driver has no release 7.0.0" in capsys.readouterr().err


def test_real_modules_build_and_second_build_is_a_cache_hit(tmp_path):
    """The five real pyprojects (copied into a fresh repo) build into one locked environment."""
    repo = tmp_path / "stack"
    shutil.copytree(REAL_REPO / "modules", repo / "modules",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache"))
    (repo / "integration").mkdir()
    shutil.copy(REAL_REPO / "constraints.txt", repo / "constraints.txt")
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    git(repo, "-c", "user.email=t@example.com", "-c", "user.name=T", "add", "-A")
    git(repo, "-c", "user.email=t@example.com", "-c", "user.name=T", "commit", "-q", "-m", "copy")
    ws = workspace(repo, tmp_path / "home")
    combo = resolve(ws)
    env = ensure_environment(ws, combo)
    pins = dict(line.split("==") for line in (repo / "constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert env.lock["third_party"]["numpy"] == pins["numpy"]
    assert env.lock["third_party"]["pyyaml"] == pins["PyYAML"]
    assert {m: v["version"] for m, v in env.lock["modules"].items()} == \
        {m: mv.version for m, mv in combo.modules.items()}
    built = wheel_mtimes(ws)
    steps = []
    assert ensure_environment(ws, combo, progress=steps.append).path == env.path
    assert wheel_mtimes(ws) == built and f"reuse environment {env.path}" in steps


@pytest.mark.parametrize("data_filter", [True, False], ids=["data-filter", "python-3.11.2"])
def test_archive_extraction_refuses_members_outside_the_folder(tmp_path, monkeypatch, data_filter):
    # Debian 12's python3 (3.11.2) has no tarfile.data_filter: the same refusals by hand there.
    import io
    import tarfile

    from stackci.sources import build

    if not data_filter:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)

    def archive(*members):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for member in members:
                data = b"x"
                member.size = len(data) if member.isfile() else 0
                tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
        buffer.seek(0)
        return tarfile.open(fileobj=buffer)

    fine = archive(tarfile.TarInfo("modules/m/a.py"))
    build._extract(fine, tmp_path / "ok")
    assert (tmp_path / "ok" / "modules/m/a.py").read_bytes() == b"x"
    link = tarfile.TarInfo("modules/m/link")
    link.type, link.linkname = tarfile.SYMTYPE, "../../../../etc/passwd"
    for bad in (tarfile.TarInfo("../escape.py"), link):
        with pytest.raises((BuildError, tarfile.TarError)):
            build._extract(archive(bad), tmp_path / "bad")
    assert not (tmp_path / "escape.py").exists()
