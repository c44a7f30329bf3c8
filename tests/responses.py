"""Checks of API responses that many tests share."""

from __future__ import annotations

import requests

# The object fields of Vagrant Cloud's API, which the real clients read.
BOX_FIELDS = {
    "tag",
    "name",
    "username",
    "short_description",
    "description_markdown",
    "description_html",
    "private",
    "downloads",
    "created_at",
    "updated_at",
    "current_version",
    "versions",
}
VERSION_FIELDS = {
    "version",
    "number",
    "status",
    "description_html",
    "description_markdown",
    "release_url",
    "revoke_url",
    "providers",
    "created_at",
    "updated_at",
}
PROVIDER_FIELDS = {
    "name",
    "architecture",
    "default_architecture",
    "hosted",
    "hosted_token",
    "original_url",
    "download_url",
    "checksum",
    "checksum_type",
    "created_at",
    "updated_at",
}
METADATA_PROVIDER_FIELDS = {
    "name",
    "url",
    "checksum",
    "checksum_type",
    "architecture",
    "default_architecture",
}
# Keys ruby-vagrant-cloud 3.0.5 accepts in a search result's box; it raises
# on any other (VagrantCloud::Box: attr_required and attr_optional).
RUBY_CLIENT_BOX_KEYS = {
    "name",
    "created_at",
    "updated_at",
    "tag",
    "short_description",
    "description_html",
    "description_markdown",
    "private",
    "downloads",
    "current_version",
    "versions",
    "description",
    "username",
}


def assert_error(response: requests.Response, status: int, fragment: str) -> None:
    """Assert an error response in the API's format whose message contains ``fragment``."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False
    assert any(fragment in message for message in body["errors"]), body
