"""Errors the CLI turns into one line and an exit code, never a traceback."""


class StackciError(Exception):
    """A failure the user can act on; its message is one line."""

    exit_code = 1


class UsageError(StackciError):
    """Bad input: a missing file, a malformed manifest, an unknown name."""

    exit_code = 2


class StackError(StackciError):
    """The stack under test failed (compile error, unsupported operator, out of memory...).

    `kind` is the stack's own classification, e.g. "unsupported-operator".
    """

    def __init__(self, message: str, kind: str = "error", exit_code: int = 1):
        super().__init__(message)
        self.kind = kind
        self.exit_code = exit_code
