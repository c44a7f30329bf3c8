"""An HTTP entrypoint that speaks JSON and answers every error in the API's format.

nameko's ``@http`` answers errors with a plain-text traceback summary and
unmatched routes with an HTML page. ``api`` returns
``{"errors": [...], "success": false}`` for both, with the status that the
domain error carries.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

import eventlet
from eventlet import greenio, wsgi
from eventlet.wsgi import STATE_CLOSE, STATE_IDLE
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.exceptions import NotFound as RouteNotFound
from werkzeug.routing import RequestRedirect
from werkzeug.wrappers import Request, Response

from . import config as cfg
from .errors import AtlasError, InvalidInput, PayloadTooLarge
from .httpserver import CLOSE_CONNECTION, make_server
from .logs import (
    CORRELATION_ID,
    REDACTED,
    REQUEST_ID_HEADER,
    SECRET_NAMES,
    accepted_correlation_id,
    log_context,
    redact_query,
)
from .metrics import observe_http_request
from .routespec import Operation, operation_of

log = logging.getLogger(__name__)
access_log = logging.getLogger("atlas.access")

# Where the WSGI app leaves the request's correlation id for the entrypoint.
CORRELATION_ENVIRON_KEY = "atlas.correlation_id"

# Route label of requests that match no route, so that probing for random
# paths cannot create unbounded metric series.
UNMATCHED_ROUTE = "<unmatched>"

# Routes that health checkers and Prometheus request every few seconds; their
# request log lines go to debug so that they do not bury the rest.
POLLED_ROUTES = frozenset({"/health", "/health/instance", "/metrics"})

JSON_TYPE = "application/json"

# Largest JSON body the API reads; box files go to binstore, not here.
MAX_JSON_BODY = 1024 * 1024  # bytes
# Deepest nesting of arrays and objects in a JSON body. The API's bodies nest
# two levels, and the limit keeps recursive code far from Python's recursion limit.
MAX_JSON_DEPTH = 32
DEPTH_MESSAGE = f"request body nests arrays or objects deeper than {MAX_JSON_DEPTH} levels"

# Seconds between checks for open connections while a stopping server drains.
DRAIN_POLL_INTERVAL = 0.05


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(json.dumps(payload), status=status, headers=headers, mimetype=JSON_TYPE)


def error_response(status: int, *messages: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"errors": list(messages), "success": False}, status, headers)


def response_for_exception(exc: BaseException) -> Response:
    """Map an exception to its error response; the one table from errors to HTTP."""
    if isinstance(exc, AtlasError):
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        return error_response(exc.status, str(exc), headers=headers)
    if isinstance(exc, HTTPException):
        return error_response(exc.code or 500, exc.description or exc.name)
    if isinstance(exc, wsgi.ChunkReadError):
        # Raised while the handler reads a chunked body whose framing is broken.
        return error_response(400, f"the chunked request body is malformed: {exc}")
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
        body = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise InvalidInput(DEPTH_MESSAGE) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(_invalid_json_message(exc)) from exc
    if not isinstance(body, dict):
        raise InvalidInput("request body must be a JSON object")
    if _depth(body) > MAX_JSON_DEPTH:
        raise InvalidInput(DEPTH_MESSAGE)
    if _contains_nul(body):
        raise InvalidInput(NUL_MESSAGE.format(where="request body"))
    return body


def _reject_constant(name: str) -> None:
    # Python's json module reads NaN and Infinity, which are not JSON (RFC 8259, section 6).
    raise ValueError(f"{name} is not a JSON value")


def _invalid_json_message(exc: Exception) -> str:
    # Python raises ValueError for integers longer than sys.get_int_max_str_digits(),
    # and its message advises changing that limit, which a client cannot do.
    if "integer string conversion" in str(exc):
        limit = sys.get_int_max_str_digits()
        return f"request body contains a number of more than {limit} digits"
    return f"request body is not valid JSON: {exc}"


def _depth(value: Any) -> int:
    """Return how deeply arrays and objects nest in ``value``, without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in item)
    return deepest


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


def check_query_parameters(request: Request, operation: Operation) -> None:
    """Raise ``InvalidInput`` naming each query parameter that the operation does not accept."""
    accepted = operation.query_parameters()
    unknown = sorted(set(request.args) - accepted)
    if not unknown:
        return
    names = ", ".join(repr(name) for name in unknown)
    noun = "parameter" if len(unknown) == 1 else "parameters"
    if accepted:
        remedy = "this route accepts " + ", ".join(sorted(accepted))
    else:
        remedy = "this route accepts none"
    raise InvalidInput(f"unknown query {noun} {names}; {remedy}")


def logged_target(request: Request, path_values: dict[str, Any]) -> str:
    """Return the request's path and query with credentials replaced by ``[redacted]``."""
    path = request.path
    for name, value in path_values.items():
        if name.lower() in SECRET_NAMES and isinstance(value, str) and value:
            path = path.replace(value, REDACTED)
    query = redact_query(request.query_string.decode("latin-1"))
    return f"{path}?{query}" if query else path


class JsonWsgiApp(WsgiApp):
    """Route requests, answer routing errors in JSON, and log and count every request."""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        started = time.perf_counter()
        request = Request(environ, shallow=True)
        correlation_id = accepted_correlation_id(request.headers.get(REQUEST_ID_HEADER))
        environ[CORRELATION_ENVIRON_KEY] = correlation_id
        service = self.server.container.service_name

        with log_context(correlation_id, service):
            try:
                response, route, values = self.dispatch(request, environ)
            except Exception as exc:  # the WSGI server's own error log is switched off
                response, route, values = response_for_exception(exc), UNMATCHED_ROUTE, {}
            response.headers[REQUEST_ID_HEADER] = correlation_id
            if self.server.draining:
                # The client learns to send its next request elsewhere.
                environ[CLOSE_CONNECTION]()
            seconds = time.perf_counter() - started
            observe_http_request(service, request.method, route, response.status_code, seconds)
            access_log.log(
                logging.DEBUG if route in POLLED_ROUTES else logging.INFO,
                "%s %s %d %.1f ms",
                request.method,
                logged_target(request, values),
                response.status_code,
                seconds * 1000.0,
            )
        return response(environ, start_response)

    def dispatch(
        self, request: Request, environ: dict[str, Any]
    ) -> tuple[Response, str, dict[str, Any]]:
        """Return the response, the matched route template and the path values."""
        adapter = self.url_map.bind_to_environ(environ)
        try:
            rule, values = adapter.match(return_rule=True)
        except RequestRedirect as redirect:
            return redirect.get_response(environ), UNMATCHED_ROUTE, {}
        except MethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.valid_methods or []))
            message = f"method {request.method} is not allowed on {request.path}; use {allowed}"
            return error_response(405, message), UNMATCHED_ROUTE, {}
        except RouteNotFound:
            return error_response(404, f"no route matches {request.path}"), UNMATCHED_ROUTE, {}
        if _contains_nul(values) or _contains_nul(list(request.args.items(multi=True))):
            message = NUL_MESSAGE.format(where="request URL")
            return error_response(400, message), rule.rule, {}
        request.path_values = values  # type: ignore[attr-defined]
        return rule.endpoint.handle_request(request), rule.rule, values


class JsonWebServer(WebServer):
    """nameko's web server, which drains its connections when it stops.

    When a stop begins, the listening socket closes, idle keep-alive
    connections are closed, and each connection with a request under way
    closes after its response. ``stop()`` waits for those responses for up
    to ``ATLAS.shutdown_grace_period`` seconds from the start of the stop.
    """

    def __init__(self) -> None:
        super().__init__()
        # eventlet's state of each open connection: [address, socket, state].
        self.connections: dict[int, list[Any]] = {}
        self.drain_deadline: float | None = None

    @property
    def draining(self) -> bool:
        return self.drain_deadline is not None

    def process_request(self, sock: Any, address: Any) -> None:
        state = [address, sock, STATE_CLOSE if self.draining else STATE_IDLE]
        self.connections[id(state)] = state
        try:
            self._serv.process_request(state)
        except OSError as exc:
            # As nameko's own server: eventlet raises this when a client leaves
            # very early (eventlet pull request 353).
            if "raw readinto() returned invalid length" not in str(exc):
                raise
        finally:
            del self.connections[id(state)]

    def before_stop(self) -> None:
        self.stop_accepting()

    def stop_accepting(self) -> None:
        """Close the listening socket and idle connections; busy ones close after their response."""
        if self.draining or not self._starting:
            return
        grace_period = float(cfg.setting(self.container.config, cfg.SHUTDOWN_GRACE_PERIOD))
        self.drain_deadline = time.monotonic() + grace_period
        self._is_accepting = False
        if self._gt is not None:
            self._gt.kill()
        if self._sock is not None:
            self._sock.close()
        idle = 0
        for state in list(self.connections.values()):
            previous, state[2] = state[2], STATE_CLOSE
            if previous == STATE_IDLE:
                # Wakes the connection's wait for a request line, which then ends it.
                greenio.shutdown_safe(state[1])
                idle += 1
        log.info(
            "stopped accepting connections; closed %d idle and draining %d busy",
            idle,
            len(self.connections) - idle,
        )

    def stop(self) -> None:
        self.stop_accepting()
        deadline = self.drain_deadline or time.monotonic()
        while self.connections and time.monotonic() < deadline:
            eventlet.sleep(DRAIN_POLL_INTERVAL)
        if self.connections:
            log.warning(
                "closing %d connections whose responses did not finish within the grace period",
                len(self.connections),
            )
        super().stop()

    def get_wsgi_app(self) -> JsonWsgiApp:
        return JsonWsgiApp(self)

    def get_wsgi_server(self, sock: Any, wsgi_app: Any, *args: Any, **kwargs: Any) -> Any:
        return make_server(sock, wsgi_app)

    def context_data_from_headers(self, request: Request) -> dict[str, Any]:
        return {CORRELATION_ID: request.environ.get(CORRELATION_ENVIRON_KEY)}


class ApiEndpoint(HttpRequestHandler):
    """HTTP entrypoint whose handler returns a ``Response``, a dict or ``(status, dict)``."""

    server = JsonWebServer()

    def __init__(self, method: str, url: str, **kwargs: Any) -> None:
        kwargs.setdefault("expected_exceptions", (AtlasError,))
        super().__init__(method, url, **kwargs)
        self.operation: Operation | None = None

    def setup(self) -> None:
        handler = getattr(self.container.service_cls, self.method_name)
        self.operation = operation_of(handler)
        super().setup()

    def get_entrypoint_parameters(self, request: Request) -> tuple[Any, ...]:
        if self.operation is not None:
            check_query_parameters(request, self.operation)
        return super().get_entrypoint_parameters(request)

    def stop(self) -> None:
        # A container stops its entrypoints first; new connections must stop then too.
        self.server.stop_accepting()
        super().stop()

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
