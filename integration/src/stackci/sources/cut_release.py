"""Cutting a module release: the version in pyproject.toml changes and the CHANGELOG's
"Unreleased" lines move under the new version, in one commit (which is what makes it a release:
see docs/design.md), tagged `<module>/v<version>`."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from stackci.errors import UsageError
from stackci.sources.modules import version_from_pyproject
from stackci.workspace import MODULES, Workspace

UNRELEASED = "## Unreleased"
VERSION_LINE = re.compile(r'^version\s*=\s*"[^"]*"\s*$', re.MULTILINE)


@dataclass(frozen=True)
class Release:
    module: str
    previous: str
    version: str
    notes: list[str]
    commit: str | None = None


def cut_release(ws: Workspace, module: str, version: str, *, commit: bool = False,
                today: dt.date | None = None) -> Release:
    if module not in MODULES:
        raise UsageError(f"unknown module {module!r} (expected one of: {', '.join(MODULES)})")
    root = ws.repo / "modules" / module
    pyproject, changelog = root / "pyproject.toml", root / "CHANGELOG.md"
    previous = version_from_pyproject(pyproject.read_text(), str(pyproject))
    new = _newer_version(version, previous, module)
    if commit:
        _require_clean(ws, root)
    text, notes = _move_unreleased(changelog, new, today or dt.date.today())
    pyproject.write_text(VERSION_LINE.sub(f'version = "{new}"', pyproject.read_text(), count=1))
    changelog.write_text(text)
    done = Release(module, previous, new, notes)
    if commit:
        ws.git("add", str(pyproject), str(changelog))
        ws.git("commit", "-q", "-m", f"Release {module} {new}\n\n" + "\n".join(notes))
        ws.git("tag", f"{module}/v{new}")
        done = Release(module, previous, new, notes, ws.git("rev-parse", "HEAD").strip())
    return done


def _newer_version(version: str, previous: str, module: str) -> str:
    try:
        new = Version(version)
    except InvalidVersion:
        raise UsageError(f"release version {version!r} is not a PEP 440 version") from None
    if new.is_devrelease or new.is_prerelease or len(new.release) != 3:
        raise UsageError(f"release version {version!r}: expected MAJOR.MINOR.PATCH")
    if new <= Version(previous):
        raise UsageError(f"release version {version} is not newer than {module}'s {previous}")
    return str(new)


def _move_unreleased(changelog: Path, version: str, today: dt.date) -> tuple[str, list[str]]:
    lines = changelog.read_text().splitlines()
    if UNRELEASED not in lines:
        raise UsageError(f"{changelog}: no '{UNRELEASED}' heading")
    start = lines.index(UNRELEASED) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    notes = [line for line in lines[start:end] if line.strip()]
    if not notes:
        raise UsageError(f"{changelog}: nothing under '{UNRELEASED}' to release")
    body = [UNRELEASED, "", f"## {version} - {today.isoformat()}", "", *notes, ""]
    return "\n".join(lines[:start - 1] + body + lines[end:]).rstrip("\n") + "\n", notes


def _require_clean(ws: Workspace, root: Path) -> None:
    dirty = ws.git("status", "--porcelain", "--", str(root)).strip()
    if dirty:
        raise UsageError(f"{root.relative_to(ws.repo)} has uncommitted changes: commit them "
                         "first, so that the release commit holds exactly the released code")

