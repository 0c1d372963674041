"""Errors of the server: each carries the HTTP status it is answered with."""

from __future__ import annotations


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


class RepositoryError(Exception):
    """A model repository entry that cannot be served; the message names the path."""
