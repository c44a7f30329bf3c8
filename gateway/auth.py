"""Extraction of a request's API token from its headers or query."""

from __future__ import annotations

from werkzeug.wrappers import Request

from services.toolkit.routespec import TOKEN_PARAMETER

TOKEN_HEADER = "X-Atlas-Token"
__all__ = ["TOKEN_HEADER", "TOKEN_PARAMETER", "request_token"]


def request_token(request: Request) -> str | None:
    """Return the token of ``Authorization: Bearer``, ``X-Atlas-Token`` or ``access_token``."""
    authorization = request.headers.get("Authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    header = request.headers.get(TOKEN_HEADER, "").strip()
    if header:
        return header
    parameter = request.args.get(TOKEN_PARAMETER, "").strip()
    return parameter or None
