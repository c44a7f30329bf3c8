"""Contracts of HTTP routes, declared beside their handlers.

``documented`` records an ``Operation`` on a handler of ``api``. The
gateway's OpenAPI document is built from these records and the route
table, and ``ApiEndpoint`` rejects query parameters that a documented
handler does not declare, so the document and the behavior share one source.
A handler without a record still serves requests and still appears in the
document, with generic request and response descriptions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

# Query parameter that carries an API token, accepted on every route that reads one.
TOKEN_PARAMETER = "access_token"

OPERATION_ATTR = "atlas_operation"

Auth = Literal["required", "optional", "none"]

# A response body: a model for JSON, a media type for a body the document
# does not describe further (text/plain, text/html), or None for no body.
ResponseBody = type[BaseModel] | str | None

Handler = TypeVar("Handler", bound=Callable[..., Any])


@dataclass(frozen=True)
class Operation:
    """The contract of one route handler.

    ``responses`` maps each success or redirect status to its body, and every
    route may also respond with the API's error body. ``auth`` is whether the
    route needs a token (``required``), reads one if sent (``optional``) or
    ignores it (``none``).
    """

    responses: Mapping[int, ResponseBody]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    auth: Auth = "optional"
    summary: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def query_parameters(self) -> frozenset[str]:
        """Return the names of the query parameters the route accepts."""
        names = set(self.query.model_fields) if self.query is not None else set()
        if self.auth != "none":
            names.add(TOKEN_PARAMETER)
        return frozenset(names)


def documented(
    responses: Mapping[int, ResponseBody],
    *,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    auth: Auth = "optional",
    summary: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Callable[[Handler], Handler]:
    """Record the handler's ``Operation``; ``headers`` maps response headers to descriptions."""
    operation = Operation(responses, body, query, auth, summary, dict(headers or {}))

    def record(handler: Handler) -> Handler:
        setattr(handler, OPERATION_ATTR, operation)
        return handler

    return record


def operation_of(handler: Any) -> Operation | None:
    return getattr(handler, OPERATION_ATTR, None)
