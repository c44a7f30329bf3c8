"""Extraction of a request's API token and client address."""

from __future__ import annotations

from werkzeug.wrappers import Request

TOKEN_HEADER = "X-Atlas-Token"
TOKEN_PARAMETER = "access_token"


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


# NOTE: behind a reverse proxy every request comes from the proxy's address,
# so the limit on failed sign-ins per client address applies to all clients
# together. Reading X-Forwarded-For from configured trusted proxies would fix that.
def client_address(request: Request) -> str | None:
    """Return the IP address of the peer that sent the request, as the server saw it."""
    return request.remote_addr or None
