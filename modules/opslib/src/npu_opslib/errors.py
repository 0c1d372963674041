"""Errors of the kernel library."""


class OpslibError(Exception):
    """Base of the errors opslib raises on purpose."""


class UnsupportedOperator(OpslibError):
    """An operator no registered kernel implements; the message names it."""

    def __init__(self, op_type: str, detail: str = ""):
        self.op_type = op_type
        message = f"unsupported operator {op_type!r}"
        if detail:
            message += f" ({detail})"
        super().__init__(message)


class KernelError(OpslibError):
    """A kernel was given what it cannot run (bad attribute, precision, fusion...)."""
