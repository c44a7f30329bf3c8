"""Bad input to the API gets a 4xx in the error format that names the field, and changes nothing.

Each case sends one bad request to a route that would otherwise succeed, so
that the error can only come from the bad value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from services.toolkit.web import MAX_JSON_BODY
from tests.conftest import Client, unique
from tests.responses import assert_error


@dataclass
class OwnedObjects:
    """A box with a version and a provider owned by ``user``, and an organization."""

    user: Client
    box: str
    organization: str

    @property
    def box_path(self) -> str:
        return f"/api/v1/box/{self.user.username}/{self.box}"

    @property
    def version_path(self) -> str:
        return self.box_path + "/version/1.0.0"


@pytest.fixture
def owned(user: Client) -> OwnedObjects:
    box = unique("box")
    organization = unique("org")
    steps = [
        ("/api/v1/boxes", {"username": user.username, "name": box}),
        (f"/api/v1/box/{user.username}/{box}/versions", {"version": "1.0.0"}),
        (
            f"/api/v1/box/{user.username}/{box}/version/1.0.0/providers",
            {"name": "virtualbox", "architecture": "amd64"},
        ),
        ("/api/v1/organizations", {"name": organization}),
    ]
    for path, body in steps:
        response = user.post(path, json=body)
        assert response.status_code == 200, response.text
    return OwnedObjects(user, box, organization)


def new_box(owned: OwnedObjects, **fields: Any) -> dict[str, Any]:
    return {"username": owned.user.username, "name": unique("box"), **fields}


# (case id, method, path under the fixture, JSON body, status, fragment of the message)
BODY_CASES: list[tuple[str, str, str, Any, int, str]] = [
    # Types that JSON allows but the field does not.
    ("box username is a number", "POST", "/boxes", {"username": 5, "name": "x"}, 422, "username:"),
    ("box name is a list", "POST", "/boxes", "NAME_LIST", 422, "name:"),
    ("is_private is a word", "POST", "/boxes", "PRIVATE_WORD", 422, "is_private:"),
    ("version is a number", "POST", "{box}/versions", {"version": 1.5}, 422, "version:"),
    ("role is a number", "PUT", "{org}/members/{user}", {"role": 3}, 422, "role:"),
    ("login user is a string", "POST", "/authenticate", {"user": "me"}, 422, "user:"),
    # Names that would break paths, hide files or look like other names.
    ("box name has a slash", "POST", "/boxes", "NAME:a/b", 422, "name:"),
    ("box name has a backslash", "POST", "/boxes", "NAME:a\\b", 422, "name:"),
    ("box name starts with a dot", "POST", "/boxes", "NAME:.hidden", 422, "name:"),
    ("box name is two dots", "POST", "/boxes", "NAME:..", 422, "name:"),
    ("box name has two dots", "POST", "/boxes", "NAME:a..b", 422, "name:"),
    ("box name ends with a dot", "POST", "/boxes", "NAME:box.", 422, "name:"),
    ("box name has a Cyrillic o", "POST", "/boxes", "NAME:b\u043ex", 422, "name:"),
    ("box name has a fullwidth letter", "POST", "/boxes", "NAME:\uff42ox", 422, "name:"),
    ("box name has a space", "POST", "/boxes", "NAME:my box", 422, "name:"),
    ("box name is empty", "POST", "/boxes", "NAME:", 422, "name:"),
    ("box name is too long", "POST", "/boxes", "NAME:" + "a" * 65, 422, "name:"),
    ("organization name has a slash", "POST", "/organizations", {"name": "a/b"}, 422, "name:"),
    ("box rename has a slash", "PUT", "{box}", {"name": "../x"}, 422, "name:"),
    # Over-long text.
    (
        "short description too long",
        "PUT",
        "{box}",
        {"short_description": "x" * 513},
        422,
        "short_description:",
    ),
    ("description too long", "PUT", "{box}", {"description": "x" * 65537}, 422, "description:"),
    ("provider url too long", "PUT", "{provider}", {"url": "https://x/" + "a" * 2048}, 422, "url:"),
    # Version strings that Vagrant cannot parse.
    ("version is a word", "POST", "{box}/versions", {"version": "one"}, 422, "version:"),
    ("version has a leading v", "POST", "{box}/versions", {"version": "v1.0"}, 422, "version:"),
    ("version has five parts", "POST", "{box}/versions", {"version": "1.2.3.4.5"}, 422, "version:"),
    ("version has an empty part", "POST", "{box}/versions", {"version": "1..0"}, 422, "version:"),
    ("version has a slash", "POST", "{box}/versions", {"version": "1.0/2"}, 422, "version:"),
    ("version is empty", "POST", "{box}/versions", {"version": ""}, 422, "version:"),
    (
        "version is too long",
        "POST",
        "{box}/versions",
        {"version": "1." * 40 + "1"},
        422,
        "version:",
    ),
    ("version rename is invalid", "PUT", "{version}", {"version": "1.0-"}, 422, "version:"),
    # Providers and checksums.
    (
        "provider name has capitals",
        "POST",
        "{version}/providers",
        {"name": "VirtualBox"},
        422,
        "name:",
    ),
    (
        "provider name has a slash",
        "POST",
        "{version}/providers",
        {"name": "virtual/box"},
        422,
        "name:",
    ),
    (
        "provider name is missing",
        "POST",
        "{version}/providers",
        {"architecture": "amd64"},
        422,
        "name:",
    ),
    (
        "architecture has a dot",
        "POST",
        "{version}/providers",
        {"name": "libvirt", "architecture": "x86.64"},
        422,
        "architecture:",
    ),
    (
        "checksum type is unknown",
        "POST",
        "{version}/providers",
        {"name": "libvirt", "checksum_type": "crc32", "checksum": "abcd1234"},
        422,
        "checksum_type 'crc32' is not supported",
    ),
    (
        "checksum is not hexadecimal",
        "POST",
        "{version}/providers",
        {"name": "libvirt", "checksum_type": "sha1", "checksum": "z" * 40},
        422,
        "checksum is not a sha1 digest",
    ),
    (
        "checksum has no type",
        "POST",
        "{version}/providers",
        {"name": "libvirt", "checksum": "a" * 64},
        422,
        "checksum and checksum_type",
    ),
    (
        "provider url is not http",
        "POST",
        "{version}/providers",
        {"name": "libvirt", "url": "file:///etc/passwd"},
        422,
        "url must be an http or https URL",
    ),
    # Roles and memberships.
    ("role is unknown", "PUT", "{org}/members/{user}", {"role": "king"}, 422, "role:"),
]


def route(owned: OwnedObjects, template: str) -> str:
    paths = {
        "{box}": owned.box_path,
        "{version}": owned.version_path,
        "{provider}": owned.version_path + "/provider/virtualbox",
        "{org}": f"/api/v1/organizations/{owned.organization}",
        "{user}": owned.user.username,
    }
    for key, value in paths.items():
        template = template.replace(key, value.removeprefix("/api/v1"))
    return "/api/v1" + template


def body(owned: OwnedObjects, value: Any) -> Any:
    if value == "NAME_LIST":
        return new_box(owned, name=["a"])
    if value == "PRIVATE_WORD":
        return new_box(owned, is_private="maybe")
    if isinstance(value, str) and value.startswith("NAME:"):
        return new_box(owned, name=value.removeprefix("NAME:"))
    return value


@pytest.mark.parametrize(
    ("method", "path", "value", "status", "fragment"),
    [case[1:] for case in BODY_CASES],
    ids=[case[0] for case in BODY_CASES],
)
def test_bad_body_names_field(
    owned: OwnedObjects, method: str, path: str, value: Any, status: int, fragment: str
) -> None:
    before = owned.user.get(owned.box_path).json()

    response = owned.user.request(method, route(owned, path), json=body(owned, value))

    assert_error(response, status, fragment)
    assert owned.user.get(owned.box_path).json() == before


def test_rejected_box_is_not_created(owned: OwnedObjects) -> None:
    name = unique("box")

    response = owned.user.post(
        "/api/v1/boxes", json={"username": owned.user.username, "name": name, "is_private": "no!"}
    )
    after = owned.user.get(f"/api/v1/box/{owned.user.username}/{name}")

    assert_error(response, 422, "is_private:")
    assert after.status_code == 404


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"username": "a",}', "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b'["a", "b"]', "must be a JSON object"),
        (b'"box"', "must be a JSON object"),
        (b"42", "must be a JSON object"),
        (b"null", "must be a JSON object"),
        (b'{"a": NaN}', "NaN is not a JSON value"),
        (b'{"a": -Infinity}', "-Infinity is not a JSON value"),
        (b'{"a": 1' + b"0" * 5000 + b"}", "a number of more than 4300 digits"),
        (b"[" * 100_000 + b"]" * 100_000, "deeper than 32 levels"),
        (b'{"a":' * 33 + b"1" + b"}" * 33, "deeper than 32 levels"),
        (b'{"a": [' * 17 + b"1" + b"]}" * 17, "deeper than 32 levels"),
    ],
    ids=[
        "unquoted",
        "trailing comma",
        "not UTF-8",
        "array",
        "string",
        "number",
        "null",
        "NaN",
        "Infinity",
        "5001 digits",
        "100000 levels",
        "33 objects",
        "34 arrays and objects",
    ],
)
def test_malformed_body_is_400(owned: OwnedObjects, raw: bytes, fragment: str) -> None:
    for path in ("/api/v1/boxes", owned.box_path + "/versions", "/api/v2/authenticate"):
        response = owned.user.post(path, data=raw, headers={"Content-Type": "application/json"})

        assert_error(response, 400, fragment)


def test_body_nested_32_levels_is_read(owned: OwnedObjects) -> None:
    raw = b'{"version": "2.0.0", "a":' + b"[" * 31 + b"]" * 31 + b"}"

    response = owned.user.post(
        owned.box_path + "/versions", data=raw, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 200, response.text


def test_oversize_body_is_413(owned: OwnedObjects) -> None:
    description = "x" * (MAX_JSON_BODY + 1)

    response = owned.user.put(owned.box_path, json={"description": description})
    after = owned.user.get(owned.box_path).json()

    assert_error(response, 413, f"request body exceeds {MAX_JSON_BODY} bytes")
    assert after["description_markdown"] == ""


@pytest.mark.parametrize(
    ("path", "parameters"),
    [
        ("/api/v1/search", {"q": "box", "color": "blue"}),
        ("/api/v2/search", {"colour": "blue"}),
        ("{box}", {"expand": "versions"}),
        ("{version}", {"x": "1"}),
        ("/api/v1/authenticate", {"user": "me"}),
        ("/api/v1/tokens", {"all": "1"}),
        ("/health", {"verbose": "1"}),
    ],
)
def test_unknown_query_parameter_is_400(
    owned: OwnedObjects, path: str, parameters: dict[str, str]
) -> None:
    if path.startswith("{"):
        path = route(owned, path)
    unknown = sorted(set(parameters) - {"q"})

    response = owned.user.get(path, params=parameters)

    assert_error(response, 400, f"unknown query parameter {unknown[0]!r}")


def test_unknown_query_parameters_are_all_named(owned: OwnedObjects) -> None:
    response = owned.user.get("/api/v1/search", params={"b": "1", "a": "2", "q": "box"})

    assert_error(response, 400, "unknown query parameters 'a', 'b'; this route accepts")


def test_unknown_query_parameter_changes_nothing(owned: OwnedObjects) -> None:
    response = owned.user.delete(owned.box_path, params={"force": "1"})
    after = owned.user.get(owned.box_path)

    assert_error(response, 400, "'force'")
    assert after.status_code == 200


def test_access_token_parameter_is_accepted(owned: OwnedObjects, anonymous: Client) -> None:
    response = anonymous.get(owned.box_path, params={"access_token": owned.user.token})

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("{box}/version/9.9.9", "9.9.9"),
        ("{box}/version/not-a-version", "not-a-version"),
        ("{version}/provider/nosuchprovider", "nosuchprovider"),
        ("/api/v1/box/{u}/nosuchbox/version/1.0.0/provider/virtualbox/upload", "nosuchbox"),
        ("/api/v2/box/{u}/{b}/version/1.0.0/provider/virtualbox/arm64", "arm64"),
        ("/api/v1/box/{u}/b\u043ex", "b\u043ex"),
        ("/api/v1/user/nobody-" + "x" * 300, "nobody-"),
    ],
)
def test_unknown_object_in_path_is_404_naming_it(
    owned: OwnedObjects, path: str, fragment: str
) -> None:
    path = path.replace("{u}", owned.user.username).replace("{b}", owned.box)
    if path.startswith("{"):
        path = route(owned, path)

    response = owned.user.get(path)

    assert_error(response, 404, fragment)
