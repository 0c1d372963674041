"""Errors of the server: each carries the HTTP status it is answered with."""

from __future__ import annotations

import reprlib

# A client's value as an error message shows it: bounded, as a tensor's whole `data` (or a
# shape of a million entries) was echoed into the error whatever its size.
_SHOWN = reprlib.Repr()
_SHOWN.maxlist = _SHOWN.maxdict = _SHOWN.maxtuple = _SHOWN.maxset = 8
_SHOWN.maxstring = _SHOWN.maxother = 80
_SHOWN.maxlevel = 3
shown = _SHOWN.repr

# The longest error message answered: client values are shown bounded, but names (of inputs,
# datatypes, models) can be any length; one line, whatever an exception's text held.
MAX_ERROR_CHARS = 2000


def one_line(message: str) -> str:
    line = " ".join(str(message).split("\n"))
    if len(line) > MAX_ERROR_CHARS:
        line = f"{line[:MAX_ERROR_CHARS]}... ({len(line) - MAX_ERROR_CHARS} more characters)"
    return line


class ServingError(Exception):
    """An error answered to a client as KServe's `{"error": message}` with `status`."""

    status = 500

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


class BadRequest(ServingError):
    status = 400


class NotFound(ServingError):
    status = 404


class Unavailable(ServingError):
    status = 503


class ClientGone(ServingError):
    """The client closed its connection before its answer (nginx's 499: nobody receives it)."""

    status = 499


class RepositoryError(Exception):
    """A model repository entry that cannot be served; the message names the path."""
