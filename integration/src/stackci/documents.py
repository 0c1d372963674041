"""Reading the harness's input files totally: any bytes give the text (or the parsed YAML or
TOML) or a one-line UsageError naming the file as the user knows it (a repository path, with
`@ <commit>` when read at a commit; never a cache copy), what is wrong and what was expected.

Loaders (suite.yaml, release manifests, contract.yaml, pyprojects, ...) read through here and
then check the parsed value's shape field by field themselves.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml

from stackci.errors import UsageError


def one_line(text: object, limit: int = 200) -> str:
    return " ".join(str(text).split())[:limit]


def read_text(path: str | Path, shown: str | None = None) -> str:
    shown = shown or str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{shown}: not found") from None
    except IsADirectoryError:
        raise UsageError(f"{shown}: is a directory, expected a file") from None
    except OSError as exc:
        raise UsageError(f"{shown}: cannot read ({exc.strerror or exc})") from None
    return decode(data, shown)


def decode(data: bytes | str, shown: str) -> str:
    """UTF-8 text; a str from git (read with surrogateescape) is checked the same way."""
    if isinstance(data, str):
        try:
            data.encode("utf-8")
            return data
        except UnicodeEncodeError:
            data = data.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{shown}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                         f"{exc.start}); expected a UTF-8 text file") from None


def parse_yaml(text: str, shown: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"{shown}: not valid YAML ({one_line(first)})") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        # PyYAML's constructors raise these for e.g. a date like 2001-13-45 or deep nesting.
        raise UsageError(f"{shown}: not valid YAML ({type(exc).__name__}: "
                         f"{one_line(exc)})") from None


def load_yaml(path: str | Path, shown: str | None = None) -> Any:
    shown = shown or str(path)
    return parse_yaml(read_text(path, shown), shown)


def parse_toml(text: str, shown: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{shown}: not valid TOML ({one_line(exc)})") from None
    except RecursionError:
        raise UsageError(f"{shown}: not valid TOML (nested too deeply)") from None
