"""Uploads from a web browser: a multipart form posted straight to binstore.

The gateway's upload page posts the file here, so a box file never passes
through the gateway. Without JavaScript the browser submits the form and
binstore responds with a redirect back to the page named in the form's
``next`` field. With JavaScript the page sends the same form with
``XMLHttpRequest`` to show progress and requests JSON. That request crosses
origins, so this module responds to the CORS preflight for the gateway's origin.
The body is parsed as a stream, so memory stays flat whatever the file size.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData
from werkzeug.wrappers import Request, Response

from services.toolkit import config as cfg
from services.toolkit.crypto import UPLOAD_ERROR_PURPOSE, sign, upload_error_subject
from services.toolkit.errors import AtlasError, InvalidInput, PayloadTooLarge
from services.toolkit.metrics import record_upload
from services.toolkit.web import JSON_TYPE, api, error_response, json_response

from .receiving import read_chunks
from .uploads import UploadReceiver

log = logging.getLogger(__name__)

FILE_FIELD = "file"
NEXT_FIELD = "next"
MAX_FIELD_BYTES = 4096  # largest form field other than the file
MAX_PARTS = 16  # form parts accepted in one upload
MAX_FORM_OVERHEAD = MAX_PARTS * (MAX_FIELD_BYTES + 1024)  # bytes of a form beyond its file
PREFLIGHT_MAX_AGE = 600  # seconds a browser may cache the preflight response
ERROR_SIGNATURE_TTL = 600  # seconds the upload page accepts a signed error message


class MultipartUpload:
    """One multipart body: small fields collected into ``fields``, the file yielded as chunks.

    Fields that come before the file part are known as soon as the file
    starts. Browsers send parts in the form's order, so the upload page puts
    ``next`` before the file input.
    """

    def __init__(self, body: Iterator[bytes], boundary: bytes, max_file_size: int) -> None:
        self.body = body
        self.max_file_size = max_file_size
        self.decoder = MultipartDecoder(boundary, max_parts=MAX_PARTS)
        self.fields: dict[str, str] = {}
        self.filename: str | None = None

    def file_chunks(self) -> Iterator[bytes]:
        """Yield the bytes of the ``file`` part; raise ``InvalidInput`` on a malformed form."""
        part: str | None = None
        value = bytearray()
        file_size = 0
        while True:
            try:
                event = self.decoder.next_event()
            except ValueError as exc:
                raise InvalidInput(f"the upload form is malformed: {exc}") from exc
            if isinstance(event, NeedData):
                self.decoder.receive_data(next(self.body, None))
            elif isinstance(event, File) and event.name == FILE_FIELD:
                if self.filename is not None:
                    raise InvalidInput("the upload form has more than one file; send one .box file")
                self.filename = event.filename
                part = FILE_FIELD
            elif isinstance(event, Field | File):
                part = event.name
                value.clear()
            elif isinstance(event, Data) and part == FILE_FIELD:
                file_size += len(event.data)
                if file_size > self.max_file_size:
                    raise PayloadTooLarge(
                        f"the file exceeds the maximum size of {self.max_file_size} bytes; "
                        "ask the operator to raise max_upload_size"
                    )
                if event.data:
                    yield event.data
            elif isinstance(event, Data) and part is not None:
                value.extend(event.data)
                if len(value) > MAX_FIELD_BYTES:
                    raise InvalidInput(f"form field {part!r} exceeds {MAX_FIELD_BYTES} bytes")
                if not event.more_data:
                    self.fields[part] = value.decode("utf-8", "replace")
            elif isinstance(event, Epilogue):
                break
        if not self.filename:
            raise InvalidInput("the upload form has no file; choose a .box file and send it again")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class BrowserUploadRoutes:
    """Routes of ``BinstoreService`` for the gateway's upload page."""

    # Provided by BinstoreService.
    config: dict[str, Any]
    upload_receiver: Callable[[], UploadReceiver]

    @api("OPTIONS", "/uploads/<token>")
    def upload_preflight(self, request: Request, token: str) -> Any:
        response = Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = "POST"
        response.headers["Access-Control-Allow-Headers"] = "Accept"
        response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
        return self._allow_page_origin(request, response)

    @api("POST", "/uploads/<token>")
    def upload_form(self, request: Request, token: str) -> Any:
        wants_json = request.accept_mimetypes.best_match([JSON_TYPE, "text/html"]) == JSON_TYPE
        boundary = request.mimetype_params.get("boundary", "")
        if request.mimetype != "multipart/form-data" or not boundary:
            error = InvalidInput("send the file as multipart/form-data in a field named 'file'")
            return self._allow_page_origin(request, error_response(error.status, str(error)))

        receiver = self.upload_receiver()
        body = read_chunks(request.stream, receiver.max_size + MAX_FORM_OVERHEAD)
        form = MultipartUpload(body, boundary.encode("latin-1"), receiver.max_size)
        try:
            result = receiver.receive_chunks(token, form.file_chunks(), None)
        except AtlasError as exc:
            log.warning("browser upload failed: %s", exc)
            next_url = self._next_url(form.fields.get(NEXT_FIELD))
            if wants_json or next_url is None:
                return self._allow_page_origin(request, error_response(exc.status, str(exc)))
            return self._redirect(next_url, self._signed_error(next_url, str(exc)))
        record_upload(result["size"])

        next_url = self._next_url(form.fields.get(NEXT_FIELD))
        if wants_json or next_url is None:
            return self._allow_page_origin(request, json_response(result))
        return self._redirect(next_url, {"upload": "done"})

    def _public_url(self) -> str:
        return str(cfg.setting(self.config, cfg.PUBLIC_URL)).rstrip("/")

    def _allow_page_origin(self, request: Request, response: Response) -> Response:
        # Only the gateway's pages may read these responses. The upload token
        # in the URL is the credential, and no cookie is involved.
        allowed = _origin(self._public_url())
        if request.headers.get("Origin") == allowed:
            response.headers["Access-Control-Allow-Origin"] = allowed
        response.vary.add("Origin")
        return response

    def _next_url(self, requested: str | None) -> str | None:
        """Return ``requested`` if it is a page of the gateway, so this is no open redirect.

        A URL with a space or a control character is rejected too, because it
        cannot go into the Location header.
        """
        if not requested or not requested.startswith(self._public_url() + "/"):
            return None
        if any(character <= " " or character == "\x7f" for character in requested):
            return None
        return requested

    def _signed_error(self, next_url: str, message: str) -> dict[str, str]:
        """Return the query that shows ``message`` on the page at ``next_url``, and no other."""
        key = cfg.secret_key(self.config)
        page = urlsplit(next_url[len(self._public_url()) :]).path
        subject = upload_error_subject(page, message)
        return {
            "upload_error": message,
            "signature": sign(key, UPLOAD_ERROR_PURPOSE, subject, ERROR_SIGNATURE_TTL),
        }

    @staticmethod
    def _redirect(next_url: str, query: dict[str, str]) -> Response:
        separator = "&" if "?" in next_url else "?"
        return Response(status=303, headers={"Location": next_url + separator + urlencode(query)})
