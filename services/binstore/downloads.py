"""Responses for blob downloads: conditional requests and single byte ranges (RFC 9110).

A blob never changes, so its sha256 is a strong ETag and no
``Last-Modified`` is needed.
"""

from __future__ import annotations

from werkzeug.http import parse_range_header
from werkzeug.wrappers import Request, Response

from services.toolkit.web import error_response

from .storage import StoredBlob

# Seconds a client may reuse a downloaded blob without asking again.
CACHE_MAX_AGE = 300


def blob_response(request: Request, blob: StoredBlob, sha256: str) -> Response:
    """Return the response to a GET or HEAD of ``blob``; it takes ownership of the open blob."""
    headers = {
        "ETag": f'"{sha256}"',
        "Accept-Ranges": "bytes",
        "Cache-Control": f"private, max-age={CACHE_MAX_AGE}, immutable",
    }
    # If-None-Match compares weakly (RFC 9110, section 13.1.2).
    if request.if_none_match.contains_weak(sha256):
        blob.close()
        return Response(status=304, headers=headers)

    span = _requested_span(request, blob.size, sha256)
    if span is None:
        return _body_response(blob, 200, 0, blob.size, headers)
    if span == ():
        blob.close()
        return error_response(
            416,
            f"range {request.headers['Range']!r} is outside the file of {blob.size} bytes",
            headers={**headers, "Content-Range": f"bytes */{blob.size}"},
        )
    start, stop = span
    headers["Content-Range"] = f"bytes {start}-{stop - 1}/{blob.size}"
    return _body_response(blob, 206, start, stop - start, headers)


def _requested_span(request: Request, size: int, sha256: str) -> tuple[int, int] | tuple[()] | None:
    """Return the byte span to send, ``()`` for an unsatisfiable range, ``None`` for all."""
    header = request.headers.get("Range")
    if header is None:
        return None
    if_range = request.if_range
    if if_range.etag is not None and if_range.etag != sha256:
        return None
    if if_range.date is not None:
        # Without Last-Modified no date can validate the range; send everything.
        return None
    parsed = parse_range_header(header)
    if parsed is None or parsed.units != "bytes":
        # A server may ignore a Range it cannot parse (RFC 9110, section 14.2).
        return None
    if len(parsed.ranges) != 1:
        # NOTE: several ranges would need a multipart/byteranges body, which
        # binstore does not build. The whole file is a valid response to them.
        return None
    span = parsed.range_for_length(size)
    return span if span is not None else ()


def _body_response(
    blob: StoredBlob, status: int, offset: int, length: int, headers: dict[str, str]
) -> Response:
    response = Response(
        blob.body(offset, length),
        status=status,
        headers=headers,
        mimetype="application/octet-stream",
        direct_passthrough=True,
    )
    response.content_length = length
    return response
