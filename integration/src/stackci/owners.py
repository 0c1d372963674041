"""The ownership file (OWNERS at the repository root, CODEOWNERS style): path patterns to a
team and its contact. `load_owners` checks every line and names the file and line of a problem
in one line; `Owners.owner_of(path)` is the team of the last rule matching `path`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from stackci.errors import UsageError

FILENAME = "OWNERS"
_TEAM = re.compile(r"^[a-z][a-z0-9_-]*$")
_CONTACT = re.compile(r"^([^@\s]+@[^@\s]+\.[^@\s]+|https?://\S+)$")
# Modules of the stack, by directory: what the regressions' owner_of(module) asks about.
MODULE_PATH = "modules/{module}/"


@dataclass(frozen=True)
class Rule:
    pattern: str
    team: str
    contact: str
    line: int

    def matches(self, path: str) -> bool:
        return _regex(self.pattern).match(path.lstrip("/")) is not None


@dataclass(frozen=True)
class Team:
    name: str
    contact: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "contact": self.contact}


@dataclass(frozen=True)
class Owners:
    source: str
    rules: tuple[Rule, ...]

    def owner_of(self, path: str) -> Team | None:
        """The team of the last rule matching `path` (repository-relative), or None."""
        for rule in reversed(self.rules):
            if rule.matches(path):
                return Team(rule.team, rule.contact)
        return None

    def owner_of_module(self, module: str) -> Team | None:
        return self.owner_of(MODULE_PATH.format(module=module))

    def teams(self) -> dict[str, str]:
        """Every team named, with its contact (the last one given)."""
        found: dict[str, str] = {}
        for rule in self.rules:
            found[rule.team] = rule.contact or found.get(rule.team, "")
        return found


def _regex(pattern: str) -> re.Pattern:
    """CODEOWNERS-style glob -> anchored regex."""
    anchored = "/" in pattern.rstrip("/")
    body = pattern.strip("/")
    out, i = "", 0
    while i < len(body):
        if body.startswith("**", i):
            out += ".*"
            i += 2
            if body.startswith("/", i):
                out, i = out + "(?:/)?", i + 1
            continue
        char = body[i]
        out += "[^/]*" if char == "*" else "[^/]" if char == "?" else re.escape(char)
        i += 1
    prefix = "^" if anchored else r"^(?:.*/)?"
    # A name or a directory matches everything under it.
    return re.compile(prefix + out + r"(?:/.*)?$")


def parse_owners(text: str, source: str) -> Owners:
    rules = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        fields = line.split()
        if len(fields) not in (2, 3):
            raise UsageError(f"{source} line {number}: expected 'PATTERN TEAM [CONTACT]', "
                             f"got {raw.strip()!r}")
        pattern, team, contact = fields[0], fields[1], fields[2] if len(fields) == 3 else ""
        if not _TEAM.match(team):
            raise UsageError(f"{source} line {number}: team {team!r} must be lowercase "
                             "letters, digits, '-' or '_'")
        if contact and not _CONTACT.match(contact):
            raise UsageError(f"{source} line {number}: contact {contact!r} must be an e-mail "
                             "address or an http(s) URL")
        if "***" in pattern:
            raise UsageError(f"{source} line {number}: pattern {pattern!r} has '***'")
        rules.append(Rule(pattern, team, contact, number))
    if not rules:
        raise UsageError(f"{source}: no ownership rules (expected lines 'PATTERN TEAM [CONTACT]')")
    return Owners(source, tuple(rules))


def load_owners(path: str | Path) -> Owners:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"ownership file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read ownership file {path}: {exc}") from None
    return parse_owners(text, str(path))
