"""Domain errors that services raise and the gateway maps to HTTP.

Each class is registered with nameko so that a caller of an RPC method gets
the same exception type back, not a generic ``RemoteError``. Arguments must
be plain strings because they cross the broker.
"""

from __future__ import annotations

from nameko.exceptions import deserialize_to_instance


class AtlasError(Exception):
    """Base of every error that Atlas reports to its callers."""

    #: HTTP status of the gateway's response.
    status = 500

    #: Seconds after which the caller may try again, sent as ``Retry-After``; None for no header.
    retry_after: int | None = None

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


@deserialize_to_instance
class InvalidInput(AtlasError, ValueError):
    """The request is malformed; correct it before sending it again."""

    status = 400


@deserialize_to_instance
class Unauthenticated(AtlasError):
    """No valid credentials came with the request."""

    status = 401


@deserialize_to_instance
class PermissionDenied(AtlasError):
    """The caller is known but may not do this."""

    status = 403


@deserialize_to_instance
class NotFound(AtlasError, LookupError):
    """The named object does not exist, or the caller may not see it."""

    status = 404


@deserialize_to_instance
class Conflict(AtlasError):
    """The object exists already or changed meanwhile; safe to retry after a read."""

    status = 409


@deserialize_to_instance
class Unprocessable(AtlasError):
    """The request is well formed but breaks a rule of the object's state."""

    status = 422


@deserialize_to_instance
class PayloadTooLarge(AtlasError):
    """The request body exceeds the configured maximum size."""

    status = 413


@deserialize_to_instance
class ServiceUnavailable(AtlasError):
    """A service or the database cannot be reached now; safe to retry later."""

    status = 503
    retry_after = 5


@deserialize_to_instance
class TooManyRequests(AtlasError):
    """The caller made too many attempts; safe to retry after ``retry_after`` seconds."""

    status = 429

    def __init__(self, message: str = "", retry_after: int | str = 60) -> None:
        super().__init__(message)
        # nameko sends exception arguments as strings, so the number may arrive as one.
        self.retry_after = max(1, int(retry_after))
        self.args = (message, str(self.retry_after))


# The errors that report a caller's mistake (4xx) rather than a failure of Atlas.
CALLER_ERRORS: tuple[type[AtlasError], ...] = (
    InvalidInput,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    Conflict,
    Unprocessable,
    PayloadTooLarge,
    TooManyRequests,
)
