"""Which interpreter runs the stack for a command: the one given, this one when it has the
stack and no combination was asked for, else the environment built for the combination."""

from __future__ import annotations

import importlib.util
import sys

from stackci.sources.resolve import resolve
from stackci.stack.port import StackPort
from stackci.workspace import Workspace


def choose_python(home, python: str | None, combination: str | None, pins,
                  module: str = "npu_compiler") -> str:
    if python:
        return python
    if combination is None and not pins and importlib.util.find_spec(module):
        return sys.executable
    ws = Workspace.discover(home)
    chosen = resolve(ws, combination or "master", pins)
    return str(StackPort().environment(ws, chosen).python)
