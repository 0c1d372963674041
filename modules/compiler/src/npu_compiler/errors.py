"""Errors of the compiler; each message is one line naming the file, node or value at fault."""

from __future__ import annotations

import npu_opslib


class CompileError(Exception):
    """Base of the errors the compiler raises on purpose."""


class ModelLoadError(CompileError):
    """The model file is missing, unreadable or not a valid ONNX model."""


class UnsupportedOperator(CompileError, npu_opslib.UnsupportedOperator):
    """An operator opslib has no kernel for, found at compile time (before anything runs)."""

    def __init__(self, op_type: str, node: str = "", detail: str = ""):
        self.op_type = op_type
        self.node = node
        message = f"unsupported operator {op_type!r}"
        if node:
            message += f" (node {node!r})"
        if detail:
            message += f": {detail}"
        Exception.__init__(self, message)


class InputError(CompileError):
    """Feeds that do not match the plan's inputs (missing, extra, wrong shape)."""


class UnsupportedPrecision(CompileError):
    """A precision the compiler cannot lower to yet."""


class UsageError(Exception):
    """Bad command line or bad input file of the CLI: exit 2 (not a CompileError: nothing was
    compiled)."""
