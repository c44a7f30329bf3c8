"""Downloads from binstore: whole files by sendfile, byte ranges and conditional requests."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import requests

from services.toolkit import config as cfg
from services.toolkit.crypto import DOWNLOAD_PURPOSE, sign
from tests.boxes import build_box
from tests.conftest import Client
from tests.integration.test_api_boxes import assert_error, published_box

# A real box, since only inspected boxes are served: several sendfile rounds
# long, and gzip's framing makes its size no round number.
CONTENT = build_box(disk_bytes=3 * 1024 * 1024)
SIZE = len(CONTENT)


@pytest.fixture(scope="module")
def blob(make_user_module: Any) -> tuple[str, bytes]:
    """A published box file and its signed binstore URL."""
    user, anonymous = make_user_module(), make_user_module()
    content = CONTENT
    box = published_box(user, content)
    metadata = anonymous.get(f"/{user.username}/{box}").json()
    url = metadata["versions"][0]["providers"][0]["url"]
    redirect = requests.get(url, allow_redirects=False, timeout=30)
    assert redirect.status_code == 302
    return redirect.headers["Location"], content


@pytest.fixture(scope="module")
def make_user_module(data_rpc: Any, suite: Any) -> Any:
    from tests.conftest import unique

    def make() -> Client:
        username = unique("user")
        data_rpc.create_user(username, None, None)
        token = data_rpc.issue_token(username, "test")["token"]
        return Client(suite.api_url, username, token)

    return make


def get(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers=headers, timeout=30)


def test_download_sends_whole_file(blob: tuple[str, bytes]) -> None:
    url, content = blob

    response = get(url)

    assert response.status_code == 200
    assert response.content == content
    assert response.headers["Content-Length"] == str(SIZE)
    assert response.headers["ETag"] == f'"{hashlib.sha256(content).hexdigest()}"'
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Type"] == "application/octet-stream"


def test_ranges_at_the_edges(blob: tuple[str, bytes]) -> None:
    url, content = blob

    first = get(url, Range="bytes=0-0")
    last = get(url, Range=f"bytes={SIZE - 1}-")
    suffix = get(url, Range="bytes=-3")
    middle = get(url, Range="bytes=1000000-2999999")
    past_end = get(url, Range=f"bytes={SIZE - 2}-{SIZE + 100}")
    beyond = get(url, Range=f"bytes={SIZE}-")

    assert first.status_code == 206
    assert first.content == content[:1]
    assert first.headers["Content-Range"] == f"bytes 0-0/{SIZE}"
    assert last.status_code == 206
    assert last.content == content[-1:]
    assert last.headers["Content-Range"] == f"bytes {SIZE - 1}-{SIZE - 1}/{SIZE}"
    assert suffix.content == content[-3:]
    assert middle.content == content[1_000_000:3_000_000]
    assert middle.headers["Content-Length"] == "2000000"
    assert past_end.content == content[-2:]
    assert_error(beyond, 416, "outside the file")
    assert beyond.headers["Content-Range"] == f"bytes */{SIZE}"


def test_unusable_ranges_get_whole_file(blob: tuple[str, bytes]) -> None:
    url, content = blob

    several = get(url, Range="bytes=0-1,5-6")
    malformed = get(url, Range="bytes=9-2")
    other_units = get(url, Range="items=0-1")

    for response in (several, malformed, other_units):
        assert response.status_code == 200
        assert response.content == content


def test_if_range_with_other_etag_gets_whole_file(blob: tuple[str, bytes]) -> None:
    url, content = blob
    etag = f'"{hashlib.sha256(content).hexdigest()}"'

    matching = get(url, Range="bytes=0-9", **{"If-Range": etag})
    other = get(url, Range="bytes=0-9", **{"If-Range": '"0000"'})

    assert matching.status_code == 206
    assert matching.content == content[:10]
    assert other.status_code == 200
    assert other.content == content


def test_conditional_get_with_etag_is_304(blob: tuple[str, bytes]) -> None:
    url, content = blob
    digest = hashlib.sha256(content).hexdigest()

    exact = get(url, **{"If-None-Match": f'"{digest}"'})
    weak = get(url, **{"If-None-Match": f'"other", W/"{digest}"'})
    star = get(url, **{"If-None-Match": "*"})
    other = get(url, **{"If-None-Match": '"other"'})

    for response in (exact, weak, star):
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["ETag"] == f'"{digest}"'
    assert other.status_code == 200
    assert other.content == content


def test_head_sends_headers_only(blob: tuple[str, bytes]) -> None:
    url, content = blob

    whole = requests.head(url, timeout=30)
    ranged = requests.head(url, headers={"Range": "bytes=10-19"}, timeout=30)

    assert whole.status_code == 200
    assert whole.headers["Content-Length"] == str(SIZE)
    assert whole.content == b""
    assert ranged.status_code == 206
    assert ranged.headers["Content-Length"] == "10"


def test_one_connection_serves_consecutive_downloads(blob: tuple[str, bytes]) -> None:
    url, content = blob

    with requests.Session() as session:
        responses = [
            session.get(url, timeout=30),
            session.get(url, headers={"Range": "bytes=5-9"}, timeout=30),
            session.head(url, timeout=30),
            session.get(url, timeout=30),
        ]

    assert [response.status_code for response in responses] == [200, 206, 200, 200]
    assert responses[0].content == content
    assert responses[1].content == content[5:10]
    assert responses[3].content == content


def test_signed_url_for_missing_blob_is_404(base_config: dict[str, Any], suite: Any) -> None:
    digest = hashlib.sha256(b"never uploaded").hexdigest()
    key = str(base_config[cfg.ATLAS][cfg.SECRET_KEY]).encode()
    token = sign(key, DOWNLOAD_PURPOSE, digest, 60)

    response = get(f"{suite.binstore_url}/blobs/{digest}?token={token}")

    assert_error(response, 404, f"blob {digest} not found")


def test_signed_url_is_not_valid_for_another_blob(
    blob: tuple[str, bytes], base_config: dict[str, Any], suite: Any
) -> None:
    url, _ = blob
    token = url.partition("?token=")[2]
    other = hashlib.sha256(b"another file").hexdigest()

    response = get(f"{suite.binstore_url}/blobs/{other}?token={token}")

    assert_error(response, 403, "the download link is invalid or expired")


def test_expired_signed_url_is_refused(
    blob: tuple[str, bytes], base_config: dict[str, Any], suite: Any
) -> None:
    url, _ = blob
    digest = url.split("/blobs/", 1)[1].partition("?")[0]
    key = str(base_config[cfg.ATLAS][cfg.SECRET_KEY]).encode()
    expired = sign(key, DOWNLOAD_PURPOSE, digest, -1)

    response = get(f"{suite.binstore_url}/blobs/{digest}?token={expired}")

    assert_error(response, 403, "the download link is invalid or expired")
