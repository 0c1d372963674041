"""The public entry points of the project: thin sessions over the `stackci` harness.

    nox -s nightly            the nightly on embedded defaults (master, smoke tier, every SKU)
    nox -s tests              the whole test suite (every module and the harness)
    nox -s module_tests-3.11(module='driver')   one module's tests
    nox -s build -- --pin driver=master         assemble a combination, print its environment
    nox -s dashboard          publish the dashboard from the results database
    nox -s stackci -- run-model MODEL.onnx --sku npu-edge --json    any stackci command
    nox -s fidelity [-- --full]   the driver's scalesim mode against SCALE-Sim v3, layer by layer
    nox -s faults             the fault-injection suite alone (also in tests), with its table

Arguments after `--` go to stackci. Every session installs with uv against constraints.txt.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["tests"]
nox.options.reuse_venv = "yes"

ROOT = Path(__file__).parent
MODULES = ("driver", "runtime", "opslib", "compiler", "serving")
CONSTRAINTS = ("-c", str(ROOT / "constraints.txt"))
# importlib mode: every module has its own tests/ with overlapping file names.
PYTEST_ARGS = ("-p", "no:cacheprovider", "--import-mode=importlib")


def install_harness(session: nox.Session) -> None:
    session.install(*CONSTRAINTS, "-e", str(ROOT / "integration[test]"))


def install_modules(session: nox.Session, modules=MODULES) -> None:
    # All five by default: module pyprojects name their siblings without versions, so a
    # module installed alone would pull its siblings from an index.
    targets = []
    for module in modules:
        targets += ["-e", f"{ROOT / 'modules' / module}[test]"]
    session.install(*CONSTRAINTS, *targets)


def stackci(session: nox.Session, *args: str) -> None:
    session.run("stackci", *args, *session.posargs, env={"STACKCI_REPO": str(ROOT)})


@nox.session
def nightly(session: nox.Session) -> None:
    """Build master from git, check contracts, run module tests and smoke workloads, publish."""
    install_harness(session)
    stackci(session, "nightly")


@nox.session
def build(session: nox.Session) -> None:
    """Assemble a combination (default master; pass --combination/--pin) and print its env."""
    install_harness(session)
    stackci(session, "build")


@nox.session
def dashboard(session: nox.Session) -> None:
    """Publish the static dashboard from the results database."""
    install_harness(session)
    stackci(session, "dashboard")


@nox.session(name="stackci")
def stackci_command(session: nox.Session) -> None:
    """Run any stackci command with the working-tree stack installed: `nox -s stackci -- ...`."""
    install_harness(session)
    install_modules(session)
    session.run("stackci", *session.posargs, env={"STACKCI_REPO": str(ROOT)})


@nox.session
def tests(session: nox.Session) -> None:
    """The harness's and the compiler's dependency rules (import-linter), then every module's
    tests, the consumer contract tests and the harness's, on the working tree."""
    install_harness(session)
    install_modules(session)
    for rules in (ROOT / "integration" / ".importlinter", ROOT / "modules" / "compiler" /
                  ".importlinter"):
        session.run("lint-imports", "--no-cache", "--config", str(rules))
    paths = [str(ROOT / "modules" / m / "tests") for m in MODULES]
    paths += [str(ROOT / "contracts" / "consumers"), str(ROOT / "integration" / "tests")]
    session.run("pytest", *PYTEST_ARGS, "--benchmark-skip", *paths, *session.posargs)


@nox.session
def faults(session: nox.Session) -> None:
    """The fault-injection suite alone (it is part of `tests` too): real nights in
    subprocesses, killed, stopped, starved and fed bad input; each fault's recorded cause and
    that no finished result is lost, printed as a table."""
    install_harness(session)
    session.run("pytest", *PYTEST_ARGS, "-q", str(ROOT / "integration" / "tests" / "faults"),
                *session.posargs)


@nox.session
@nox.parametrize("module", MODULES)
def module_tests(session: nox.Session, module: str) -> None:
    """One module's tests, with the whole working-tree stack installed."""
    install_modules(session)
    session.run("pytest", *PYTEST_ARGS, str(ROOT / "modules" / module / "tests"),
                *session.posargs)


@nox.session
def benchmarks(session: nox.Session) -> None:
    """Speed and memory goals, as ratios against named baselines (pytest-benchmark)."""
    install_harness(session)
    install_modules(session)
    session.run("pytest", *PYTEST_ARGS, "--benchmark-only",
                str(ROOT / "integration" / "benchmarks"), *session.posargs)


# SCALE-Sim needs an older numpy than the stack: it lives in its own environment.
SCALESIM_REQUIREMENTS = ("scalesim==3.0.0", "numpy<2.4")


@nox.session
def fidelity(session: nox.Session) -> None:
    """The driver's scalesim mode and SCALE-Sim v3 side by side (quick subset; -- --full: all
    of ResNet-50's layers; -- --jobs N: N SCALE-Sim processes at once). Writes fidelity.json in
    the session's directory and stores it in the results database as a weekly run (`stackci
    fidelity record`; STACKCI_DB chooses the database). Finished rows are checkpointed in nox's
    cache directory, which nox never wipes (unlike a session's virtualenv): rerunning the same
    command after a kill or a crash simulates only the rows that are missing."""
    install_harness(session)
    session.install(*CONSTRAINTS, "-e", str(ROOT / "modules" / "driver"), "onnx")
    scalesim_env = Path(session.cache_dir) / "scalesim-3.0.0"
    scalesim_python = scalesim_env / "bin" / "python"
    if not scalesim_python.exists():
        session.run("uv", "venv", "--quiet", str(scalesim_env), external=True)
        session.run("uv", "pip", "install", "--quiet", "-p", str(scalesim_python),
                    *SCALESIM_REQUIREMENTS, external=True)
    results = Path(session.virtualenv.location) / "fidelity.json"
    checkpoint = Path(session.cache_dir) / "fidelity.partial.jsonl"
    results.unlink(missing_ok=True)
    # Exit 1 means a layer missed its bound: the table is still recorded (record fails then).
    session.run("python", str(ROOT / "modules" / "driver" / "fidelity" / "run_fidelity.py"),
                "--scalesim-python", str(scalesim_python), "--json", str(results),
                "--checkpoint", str(checkpoint), *session.posargs, success_codes=[0, 1])
    session.run("stackci", "fidelity", "record", str(results))
