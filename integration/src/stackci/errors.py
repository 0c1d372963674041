"""Errors the CLI turns into one line and an exit code, never a traceback."""

import signal


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


class Stopped(KeyboardInterrupt):
    """The run was told to stop by a signal (SIGINT, SIGTERM, SIGHUP); the CLI exits with
    128 + its number, as a shell reports a process a signal ended."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.name = signal.Signals(signum).name
