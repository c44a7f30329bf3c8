"""eventlet's WSGI server, as nameko runs it, with what serving large files needs.

eventlet 0.41's ``eventlet.wsgi`` offers no ``wsgi.file_wrapper`` and writes
every response body through a buffered socket file, one chunk at a time.
It also hides chunked request bodies from werkzeug and drains the unread
rest of a request body before it reuses a connection. This module adds:

- ``wsgi.file_wrapper`` (PEP 3333). A ``FileBody`` that reaches the server
  is sent with ``os.sendfile``, from the page cache to the socket, without
  passing through Python.
- ``wsgi.input_terminated``. eventlet's input stream ends at
  ``Content-Length`` and at the last chunk of a chunked body, which is the
  promise this key makes. Without it werkzeug reads a chunked body as empty.
- A response sent before its request body was read to the end closes the
  connection, unless little of the body is left. Without this, rejecting a
  10 GiB upload by its headers would still mean reading 10 GiB. Before it
  closes, the server reads and drops what the client still sends for a few
  seconds ("lingering close", as nginx does): closing a socket with unread
  data makes the kernel send a reset, which can destroy the response
  before the client reads it.
- eventlet rejects some requests before they reach the application: a
  request line or a header line over 8 KiB, headers over 64 KiB in all, a
  Content-Length that is not a non-negative integer. Its responses have
  an empty body, so this module rewrites them into the API's error format.
"""

from __future__ import annotations

import email.errors
import errno
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from http.client import HTTPMessage
from typing import IO, Any

from eventlet import wsgi
from eventlet.hubs import trampoline
from nameko.web.server import HttpOnlyProtocol
from werkzeug.wsgi import FileWrapper

log = logging.getLogger(__name__)

# Raised by a request body's read for a chunked body whose framing is broken,
# as when the connection is cut mid-chunk. A subclass of ValueError.
MalformedChunk = wsgi.ChunkReadError

# Bytes a FileBody reads per step when it is iterated instead of sent whole.
FILE_BLOCK_SIZE = 1024 * 1024

# Largest unread rest of a request body that the server reads and discards to
# keep the connection open. With more left, or an unknown rest, it closes instead.
MAX_DISCARDED_BODY = 64 * 1024  # bytes

# Seconds a client may stay silent, mid-request or between keep-alive requests.
CLIENT_TIMEOUT = 300.0

# Seconds a closing connection keeps reading what the client still sends.
LINGER_TIME = 5.0
LINGER_READ_SIZE = 64 * 1024  # bytes

# Environ key of a function that makes the server close the connection after
# the current response.
CLOSE_CONNECTION = "atlas.close_connection"

BROKEN_CONNECTION = {errno.EPIPE, errno.ECONNRESET, errno.ESHUTDOWN, errno.ENOTCONN}


class FileBody:
    """A response body made of ``length`` bytes of an open file, from ``offset`` on.

    The server sends it with ``sendfile``. Other WSGI servers and middleware
    iterate it, which reads the same bytes with ``pread``. The body owns the
    file and closes it in ``close()``.
    """

    def __init__(
        self,
        file: IO[bytes],
        block_size: int = FILE_BLOCK_SIZE,
        offset: int = 0,
        length: int | None = None,
    ) -> None:
        self.file = file
        self.block_size = block_size
        self.offset = offset
        if length is None:
            length = os.fstat(file.fileno()).st_size - offset
        self.length = length

    def __iter__(self) -> Iterator[bytes]:
        descriptor = self.file.fileno()
        position = self.offset
        end = self.offset + self.length
        while position < end:
            chunk = os.pread(descriptor, min(self.block_size, end - position), position)
            if not chunk:
                raise OSError(f"file ended at byte {position}, before byte {end} was sent")
            position += len(chunk)
            yield chunk

    def close(self) -> None:
        self.file.close()

    def send(self, connection: socket.socket) -> None:
        """Write the body to ``connection`` with ``sendfile``, yielding to other green threads.

        Raises ``TimeoutError`` when the client accepts no data for
        ``CLIENT_TIMEOUT`` seconds and ``OSError`` when it goes away.
        """
        descriptor = connection.fileno()
        source = self.file.fileno()
        position = self.offset
        end = self.offset + self.length
        while position < end:
            try:
                sent = os.sendfile(descriptor, source, position, end - position)
            except BlockingIOError:
                trampoline(
                    connection,
                    write=True,
                    timeout=connection.gettimeout(),
                    timeout_exc=TimeoutError("client accepted no data in time"),
                )
                continue
            if sent == 0:
                raise OSError(f"file ended at byte {position}, before byte {end} was sent")
            position += sent


def file_wrapper(file: IO[bytes], block_size: int = FILE_BLOCK_SIZE) -> Iterable[bytes]:
    """Return the server's body for a whole file: a ``FileBody`` when it has a descriptor."""
    try:
        file.fileno()
    except (AttributeError, OSError):
        return FileWrapper(file, block_size)
    return FileBody(file, block_size)


def _unread_body_is_large(body: Any) -> bool:
    if body.chunked_input:
        # chunk_length is 0 only once the last chunk was read.
        return bool(body.chunk_length != 0)
    return bool((body.content_length or 0) - body.position > MAX_DISCARDED_BODY)


def _error_response(status: str, message: str, with_body: bool = True) -> bytes:
    """Return a whole HTTP response that carries ``message`` in the API's error format."""
    body = json.dumps({"errors": [message], "success": False}).encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + (body if with_body else b"")


# eventlet's responses to the requests it rejects itself (eventlet/wsgi.py,
# HttpProtocol.handle_one_request), each with the response that replaces it.
_BAD_REQUEST = b"HTTP/1.0 400 Bad Request\r\nConnection: close\r\nContent-length: 0\r\n\r\n"
_BOTH_LENGTHS_MESSAGE = b"Content-Length and Transfer-Encoding are not allowed together\n"
_BOTH_LENGTHS = b"HTTP/1.0 400 Bad Request\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (
    len(_BOTH_LENGTHS_MESSAGE),
    _BOTH_LENGTHS_MESSAGE,
)
REJECTIONS = {
    wsgi.RESPONSE_414: _error_response(
        "414 URI Too Long",
        f"the request line is longer than {wsgi.MAX_REQUEST_LINE} bytes; shorten the URL",
    ),
    b"HTTP/1.0 400 Header Line Too Long\r\nConnection: close\r\nContent-length: 0\r\n\r\n": (
        _error_response(
            "431 Request Header Fields Too Large",
            f"a request header line is longer than {wsgi.MAX_HEADER_LINE} bytes",
        )
    ),
    b"HTTP/1.0 400 Headers Too Large\r\nConnection: close\r\nContent-length: 0\r\n\r\n": (
        _error_response(
            "431 Request Header Fields Too Large",
            f"the request headers are longer than {wsgi.MAX_TOTAL_HEADER_SIZE} bytes in all",
        )
    ),
    _BAD_REQUEST: _error_response(
        "400 Bad Request", "Content-Length must be a non-negative integer"
    ),
    _BOTH_LENGTHS: _error_response(
        "400 Bad Request", "a request must not have both Content-Length and Transfer-Encoding"
    ),
}

REJECTION_LENGTHS = frozenset(len(rejection) for rejection in REJECTIONS)


class RejectionWriter:
    """A connection's buffered writer that sends eventlet's rejections in the API's format.

    ``rejected`` is called after a rejection is written. eventlet stops
    reading such a request part way, so the connection must close with a
    lingering close, or the unread bytes make the kernel reset it.
    """

    def __init__(self, file: Any, rejected: Callable[[], None]) -> None:
        self._file = file
        self._rejected = rejected

    def write(self, data: bytes) -> int:
        # Only a write as long as a rejection is looked up, so bodies pass uncopied.
        if len(data) in REJECTION_LENGTHS:
            replacement = REJECTIONS.get(bytes(data))
            if replacement is not None:
                self._file.write(replacement)
                self._rejected()
                return len(data)
        return int(self._file.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


# Defects the parser reports for a header line it could not read. It also
# reports defects of a multipart body, which it never reads here, so those are ignored.
HEADER_DEFECTS = (
    email.errors.MissingHeaderBodySeparatorDefect,
    email.errors.FirstHeaderLineIsContinuationDefect,
    email.errors.InvalidHeaderDefect,
)


def _header_problem(headers: HTTPMessage) -> str | None:
    """Return why the request's header lines are malformed, or None if they are well formed.

    The standard library's parser drops a line without a colon and every
    header after it (Content-Length too), and keeps a folded header's line
    break in its value. A proxy may read such lines differently, so Atlas
    rejects them.
    """
    # The lines after a bad one become the message's payload, but only the
    # defect marks them, since a message/* Content-Type makes even no lines a payload.
    if any(isinstance(defect, HEADER_DEFECTS) for defect in headers.defects):
        return "the request has a header line that is not NAME: VALUE"
    if any("\n" in value or "\r" in value for value in headers.values()):
        return "the request has a header folded over more than one line"
    return None


class HttpProtocol(HttpOnlyProtocol):
    """eventlet's HTTP/1.1 protocol with the additions this module describes."""

    #: Whether closing the connection waits for the client to stop sending.
    linger = False

    def setup(self) -> None:
        super().setup()
        self.wfile = RejectionWriter(self.wfile, self.close_after_response)  # type: ignore[has-type]

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        # Proxies and servers that disagree on which length counts can be led
        # to read one request as two (request smuggling), so reject the request.
        if len(set(self.headers.get_all("Content-Length") or [])) > 1:
            self.send_error(400, "the request has Content-Length headers with different values")
            return False
        problem = _header_problem(self.headers)
        if problem:
            self.send_error(400, problem)
            return False
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Send an error in the API's JSON format, where the standard library sends an HTML page.

        The standard library's request parsing calls this for a malformed
        request line, an unsupported HTTP version and too many headers.
        """
        self.log_error("code %d, message %s", code, message)
        short, _ = self.responses.get(code, ("Error", ""))
        # Written whole, with its own status line: when the request line
        # could not be read, the standard library would send none.
        response = _error_response(f"{code} {short}", message or short, self.command != "HEAD")
        self.wfile.write(response)
        self.close_connection = 1

    def get_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environ()
        environ["wsgi.file_wrapper"] = file_wrapper
        environ["wsgi.input_terminated"] = True
        environ[CLOSE_CONNECTION] = self.close_after_response
        return environ

    def close_after_response(self) -> None:
        # eventlet sends "Connection: close" when this is set before the
        # headers go out, and never drains the request body of a closing connection.
        self.close_connection = 1
        self.linger = True

    def finish(self) -> None:
        if self.linger:
            self._linger()
        super().finish()

    def _linger(self) -> None:
        connection = self.connection
        deadline = time.monotonic() + LINGER_TIME
        try:
            self.wfile.flush()
            connection.shutdown(socket.SHUT_WR)
            while (remaining := deadline - time.monotonic()) > 0:
                connection.settimeout(remaining)
                if not connection.recv(LINGER_READ_SIZE):
                    return
        except OSError:
            # Timed out, or the client is gone already: nothing is left to protect.
            return


class FileSendingApp:
    """WSGI middleware that lets the server send ``FileBody`` responses with ``sendfile``."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        response_started: list[tuple[str, Callable[[bytes], None]]] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            write = start_response(status, headers, exc_info)
            if any(name.lower() == "content-length" for name, _ in headers):
                response_started.append((status, write))
            return write

        body = self.app(environ, capture)
        if _unread_body_is_large(environ["eventlet.input"]):
            environ[CLOSE_CONNECTION]()
        if not isinstance(body, FileBody) or not response_started:
            # Without Content-Length eventlet frames the body in chunks, which
            # sendfile cannot do, so such a FileBody is iterated instead.
            return body

        status, write = response_started[-1]
        try:
            write(b"")  # sends the status line and the headers
            if environ["REQUEST_METHOD"] != "HEAD" and status[:3] not in ("204", "304"):
                body.send(environ["eventlet.input"].get_socket())
        except OSError as exc:
            if not isinstance(exc, TimeoutError) and exc.errno not in BROKEN_CONNECTION:
                raise
            log.debug("client left during a file response: %s", exc)
            environ[CLOSE_CONNECTION]()
        finally:
            body.close()
        return []


def make_server(sock: socket.socket, app: Callable[..., Iterable[bytes]]) -> wsgi.Server:
    """Return the WSGI server for an HTTP entrypoint listening on ``sock``.

    eventlet rejects a request line or header line over 8 KiB and a
    malformed Content-Length itself, before the request reaches the app;
    ``HttpProtocol`` sends those rejections in the API's error format.
    """
    return wsgi.Server(
        sock,
        sock.getsockname(),
        FileSendingApp(app),
        protocol=HttpProtocol,
        debug=False,
        socket_timeout=CLIENT_TIMEOUT,
        # eventlet's own access log prints the raw request line, query string
        # and all, which would put access_token values in the log. JsonWsgiApp
        # logs a redacted line instead and turns its own errors into responses.
        log=logging.getLogger("atlas.wsgi"),
        log_output=False,
    )
