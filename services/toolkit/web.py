"""An HTTP entrypoint that speaks JSON and answers every error in the API's format.

nameko's ``@http`` answers errors with a plain-text traceback summary and
unmatched routes with an HTML page. ``api`` returns
``{"errors": [...], "success": false}`` for both, with the status that the
domain error carries.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.exceptions import NotFound as RouteNotFound
from werkzeug.routing import RequestRedirect
from werkzeug.wrappers import Request, Response

from .errors import AtlasError, InvalidInput, PayloadTooLarge
from .httpserver import make_server

log = logging.getLogger(__name__)

JSON_TYPE = "application/json"

# Largest JSON body the API reads; box files go to binstore, not here.
MAX_JSON_BODY = 1024 * 1024  # bytes


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(json.dumps(payload), status=status, headers=headers, mimetype=JSON_TYPE)


def error_response(status: int, *messages: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"errors": list(messages), "success": False}, status, headers)


def response_for_exception(exc: BaseException) -> Response:
    """Map an exception to its error response; the one table from errors to HTTP."""
    if isinstance(exc, AtlasError):
        headers = {"Retry-After": "5"} if exc.status == 503 else None
        return error_response(exc.status, str(exc), headers=headers)
    if isinstance(exc, HTTPException):
        return error_response(exc.code or 500, exc.description or exc.name)
    log.error("unexpected error while handling a request", exc_info=exc)
    return error_response(500, "internal error; the request was not completed")


def read_json(request: Request) -> dict[str, Any]:
    """Return the request's JSON object body, ``{}`` when there is none."""
    length = request.content_length
    if length is not None and length > MAX_JSON_BODY:
        raise PayloadTooLarge(f"request body exceeds {MAX_JSON_BODY} bytes")
    # A chunked body announces no length, so read one byte past the limit at most.
    raw = request.stream.read(MAX_JSON_BODY + 1)
    if len(raw) > MAX_JSON_BODY:
        raise PayloadTooLarge(f"request body exceeds {MAX_JSON_BODY} bytes")
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidInput("request body must be a JSON object")
    if _contains_nul(body):
        raise InvalidInput(NUL_MESSAGE.format(where="request body"))
    return body


# PostgreSQL text cannot hold NUL, so a value with one fails in the database.
NUL_MESSAGE = "{where} contains a NUL character (\\u0000); remove it"


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(key) or _contains_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(_contains_nul(item) for item in value)
    return False


class JsonWsgiApp(WsgiApp):
    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ, shallow=True)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, values = adapter.match()
        except RequestRedirect as redirect:
            return redirect(environ, start_response)
        except MethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.valid_methods or []))
            response = error_response(
                405, f"method {request.method} is not allowed on {request.path}; use {allowed}"
            )
            return response(environ, start_response)
        except RouteNotFound:
            response = error_response(404, f"no route matches {request.path}")
            return response(environ, start_response)
        if _contains_nul(values) or _contains_nul(list(request.args.items(multi=True))):
            response = error_response(400, NUL_MESSAGE.format(where="request URL"))
            return response(environ, start_response)
        request.path_values = values  # type: ignore[attr-defined]
        return provider.handle_request(request)(environ, start_response)


class JsonWebServer(WebServer):
    def get_wsgi_app(self) -> JsonWsgiApp:
        return JsonWsgiApp(self)

    def get_wsgi_server(self, sock: Any, wsgi_app: Any, *args: Any, **kwargs: Any) -> Any:
        return make_server(sock, wsgi_app)


class ApiEndpoint(HttpRequestHandler):
    """HTTP entrypoint whose handler returns a ``Response``, a dict or ``(status, dict)``."""

    server = JsonWebServer()

    def __init__(self, method: str, url: str, **kwargs: Any) -> None:
        kwargs.setdefault("expected_exceptions", (AtlasError,))
        super().__init__(method, url, **kwargs)

    def check_signature(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        # nameko checks every call's arguments with inspect.getcallargs, which
        # costs about a tenth of a cached request. The URL rule names exactly
        # the handler's parameters, so the check can never fail here.
        return None

    def response_from_result(self, result: Any) -> Response:
        if isinstance(result, Response):
            return result
        status = 200
        if isinstance(result, tuple):
            status, result = result
        return json_response(result, status)

    def response_from_exception(self, exc: BaseException) -> Response:
        return response_for_exception(exc)


api = ApiEndpoint.decorator
