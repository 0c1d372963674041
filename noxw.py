"""nox wrapper: `python3 noxw.py -s SESSION [...]` runs nox from a virtual environment it makes.

Why: a stock Debian or Ubuntu python3 refuses `pip install` outside a virtual environment
(PEP 668), and often ships without ensurepip (that is the separate python3-venv package), so
`python3 -m venv` fails there too. Like gradlew or mvnw, this file needs only the interpreter:
it creates `.venv/` beside itself (with pip from ensurepip, or from PyPI's pip wheel when
ensurepip is missing), installs nox and uv at the versions pinned in constraints.txt, and
hands over to nox. A second run finds the environment ready and starts nox at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import subprocess
import sys
import tempfile
import urllib.request
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
TOOLS = ("nox", "uv")  # their versions come from constraints.txt: one pin for every use
PIP_VERSION = "26.3"  # only used where the interpreter has no ensurepip
INDEX = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
# The bootstrap fetches what pip would, so it trusts what pip is told to trust.
TLS = ssl.create_default_context(cafile=os.environ.get("PIP_CERT") or None)


def fail(message: str) -> None:
    print(f"noxw: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def pinned_requirements() -> list[str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            pins[name.lower()] = f"{name}=={version}"
    missing = [tool for tool in TOOLS if tool not in pins]
    if missing:
        fail(f"constraints.txt: no '==' pin for {', '.join(missing)}")
    return [pins[tool] for tool in TOOLS]


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def has_ensurepip() -> bool:
    try:
        import ensurepip  # noqa: F401  (Debian strips it out of python3 without python3-venv)
    except ImportError:
        return False
    return True


def pip_wheel(dest: Path) -> Path:
    """Download pip's wheel from the package index (PEP 691 JSON) and check its sha256."""
    request = urllib.request.Request(f"{INDEX}/pip/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=60, context=TLS) as response:
            files = json.load(response)["files"]
    except (OSError, ValueError, KeyError) as exc:
        fail(f"cannot read pip's release list from {INDEX}: {exc}")
    name = f"pip-{PIP_VERSION}-py3-none-any.whl"
    entry = next((f for f in files if f.get("filename") == name), None)
    if entry is None:
        fail(f"{INDEX} has no {name}")
    target = dest / name
    with urllib.request.urlopen(entry["url"], timeout=120, context=TLS) as response:
        target.write_bytes(response.read())
    expected = entry.get("hashes", {}).get("sha256")
    if expected and hashlib.sha256(target.read_bytes()).hexdigest() != expected:
        fail(f"{name} from {INDEX} does not match its published sha256")
    return target


def create_venv(requirements: list[str]) -> None:
    print(f"noxw: creating {VENV} with {' '.join(requirements)}", file=sys.stderr, flush=True)
    with_pip = has_ensurepip()
    venv.EnvBuilder(with_pip=with_pip, clear=True).create(VENV)
    python = str(venv_python())
    if with_pip:
        subprocess.run([python, "-m", "pip", "install", "-q", *requirements], check=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        wheel = pip_wheel(Path(tmp))
        # A wheel of pip runs as pip itself: it installs pip, then what we need, into the venv.
        subprocess.run([python, f"{wheel}/pip", "install", "-q", str(wheel), *requirements],
                       check=True)


def ensure_tools() -> Path:
    requirements = pinned_requirements()
    stamp = VENV / "noxw.txt"
    wanted = "\n".join(requirements)
    nox_bin = VENV / ("Scripts" if os.name == "nt" else "bin") / "nox"
    if not (nox_bin.exists() and stamp.exists() and stamp.read_text() == wanted):
        try:
            create_venv(requirements)
        except subprocess.CalledProcessError as exc:
            fail(f"installing {' '.join(requirements)} into {VENV} failed (exit {exc.returncode})")
        stamp.write_text(wanted)
    return nox_bin


def main() -> None:
    if sys.version_info < (3, 11):
        fail(f"Python 3.11 or newer is needed, this is {sys.version.split()[0]}")
    nox_bin = ensure_tools()
    os.chdir(ROOT)
    args = [str(nox_bin), *sys.argv[1:]]
    if os.name == "nt":
        raise SystemExit(subprocess.call(args))
    os.execv(args[0], args)


if __name__ == "__main__":
    main()
