"""Validation of names, versions and checksums in request bodies."""

import re

import pytest

from schemas.fields import check_checksum, is_valid_version
from schemas.requests import BoxCreate, BoxImport, WebhookCreate
from schemas.validation import validate
from services.data.serialize import version_key
from services.toolkit.errors import Unprocessable


@pytest.mark.parametrize(
    "version", ["1", "1.0", "1.0.0", "2024.1.15.3", "1.0.0-rc1", "1.0.0-rc.1", "1.0.0-rc-1"]
)
def test_valid_versions(version: str) -> None:
    assert is_valid_version(version)


# Ruby's Gem::Version rejects these suffixes, and vagrant would then reject
# the whole box metadata.
@pytest.mark.parametrize(
    "version",
    ["", "v1", "1..0", "1.0.", "one", "1.0.0.0.0", "1/0", "1.0-", "1.0-.", "1.0-rc..1", "1.0-rc."],
)
def test_invalid_versions(version: str) -> None:
    assert not is_valid_version(version)


def test_versions_sort_numerically_with_prereleases_first() -> None:
    versions = ["1.10.0", "1.2.0", "1.2.0-rc1", "1.9"]

    assert sorted(versions, key=version_key) == ["1.2.0-rc1", "1.2.0", "1.9", "1.10.0"]


@pytest.mark.parametrize(
    "name", ["a/b", "../x", ".hidden", "a..b", "trailing.", "ünïcode", "x" * 65]
)
def test_box_names_with_separators_or_confusables_are_rejected(name: str) -> None:
    with pytest.raises(Unprocessable) as raised:
        validate(BoxCreate, {"username": "alice", "name": name})

    assert "name" in str(raised.value)


def test_checksum_length_must_match_type() -> None:
    check_checksum("md5", "a" * 32)

    with pytest.raises(ValueError, match="expected 64 hexadecimal characters"):
        check_checksum("sha256", "a" * 32)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "url must be an http or https URL"),
        ("http:///path", "url must be an http or https URL"),
        ("http://a..b/x", "url has an invalid host name 'a..b'"),
        ("http://.x/", "url has an invalid host name '.x'"),
        ("http://" + "x" * 64 + ".com/", "url has an invalid host name"),
        ("http://127.0.0.1:0/x", "url has an invalid port 0"),
        ("http://127.0.0.1:99999/x", "url has an invalid port"),
    ],
)
def test_outbound_urls_need_valid_host_and_port(url: str, message: str) -> None:
    for body, fields in (
        (WebhookCreate, {"url": url, "events": ["version.released"]}),
        (BoxImport, {"url": url}),
    ):
        with pytest.raises(Unprocessable, match=re.escape(message)):
            validate(body, fields)


def test_outbound_url_scheme_ignores_case() -> None:
    validate(BoxImport, {"url": "HTTPS://example.com/base.box"})
