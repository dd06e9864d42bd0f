"""The error tree every layer raises; the API maps it to HTTP status codes in one place.

Each class names a *kind* of failure, not a place: code raises the kind with a message that
says what failed (``NotFound(f"No such container: {ref}")``), and ``berth.api`` turns the kind
into a status code. Messages are user-facing: they follow Docker's wording where clients
depend on it (the docker CLI pulls an image when it sees ``No such image: …``).
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "BerthError",
    "Conflict",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "NotImplementedYet",
    "PermissionDenied",
    "Unavailable",
]


class BerthError(Exception):
    """Base of every error berth raises on purpose; anything else is a bug (HTTP 500)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(BerthError):
    """The named object does not exist (404)."""


class AlreadyExists(BerthError):
    """An object with that name or id exists already (409)."""


class Conflict(BerthError):
    """The object's state forbids the request, e.g. removing a running container (409)."""


class InvalidArgument(BerthError):
    """The request itself is malformed or names impossible values (400)."""


class FailedPrecondition(BerthError):
    """The request is well-formed but the system is not ready for it (409/500 by context)."""


class PermissionDenied(BerthError):
    """The operation is refused by policy or by the kernel (403)."""


class Unavailable(BerthError):
    """A dependency (shim, launcher, registry) cannot be reached now; retrying may work (503)."""


class NotImplementedYet(BerthError):
    """A feature berth does not support (501)."""


class RuntimeFailure(BerthError):
    """The OCI runtime could not create or start a container (500, or 126/127 for the CLI).

    ``exit_code`` carries what ``docker run`` exits with: 127 when the command was not found,
    126 when it could not be executed, else 125.
    """

    def __init__(self, message: str, exit_code: int = 125) -> None:
        super().__init__(message)
        self.exit_code = exit_code


__all__.append("RuntimeFailure")
