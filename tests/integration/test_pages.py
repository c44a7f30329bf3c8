"""The web pages over plain HTTP: sessions, CSRF checks, access rules and the upload form."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.boxes import build_box, sha256
from tests.conftest import Client, Suite, unique
from tests.pages import PASSWORD, PageVisitor, csrf_from, make_person


@pytest.fixture
def person(data_rpc: Any) -> str:
    return make_person(data_rpc)


@pytest.fixture
def visitor(suite: Suite) -> PageVisitor:
    return PageVisitor(suite.api_url)


def api_client(suite: Suite, data_rpc: Any, username: str) -> Client:
    token = data_rpc.issue_token(username, "test")["token"]
    return Client(suite.api_url, username, token)


def test_sign_out_ends_session(visitor: PageVisitor, person: str) -> None:
    response = visitor.sign_in(person)
    cookie = visitor.http.cookies.get("atlas_session")
    signed_in = visitor.get("/-/tokens")

    visitor.post(
        "/-/sign-out", data={"csrf_token": csrf_from(signed_in.text)}, allow_redirects=False
    )
    replay = PageVisitor(visitor.base_url)
    replay.http.cookies.set("atlas_session", cookie)
    signed_out = replay.get("/-/tokens", allow_redirects=False)

    assert response.headers["Location"] == "/"
    assert person in signed_in.text
    assert signed_out.status_code == 303
    assert signed_out.headers["Location"].startswith("/-/sign-in?next=")


def test_sign_in_as_another_ends_old_session(
    visitor: PageVisitor, person: str, data_rpc: Any
) -> None:
    other = make_person(data_rpc)
    visitor.sign_in(person)
    old_cookie = visitor.http.cookies.get("atlas_session")

    visitor.sign_in(other)
    replay = PageVisitor(visitor.base_url)
    replay.http.cookies.set("atlas_session", old_cookie)
    replayed = replay.get("/-/tokens", allow_redirects=False)

    assert other in visitor.get("/-/tokens").text
    assert replayed.status_code == 303
    assert replayed.headers["Location"].startswith("/-/sign-in?next=")


def test_wrong_password_rejected(visitor: PageVisitor, person: str) -> None:
    response = visitor.submit(
        "/-/sign-in", "/-/sign-in", {"login": person, "password": "not the password"}
    )

    assert response.status_code == 401
    assert "Invalid username or password." in response.text
    assert "atlas_session" not in visitor.http.cookies


def test_sign_in_never_redirects_to_another_host(visitor: PageVisitor, person: str) -> None:
    for target in ("//evil.example/", "/\\evil.example/", "https://evil.example/"):
        response = visitor.submit(
            "/-/sign-in",
            "/-/sign-in",
            {"login": person, "password": PASSWORD, "next": target},
        )
        assert response.headers["Location"] == "/", target


def test_form_without_csrf_token_rejected(visitor: PageVisitor, person: str, suite: Suite) -> None:
    visitor.sign_in(person)
    name = unique("box")

    response = visitor.post("/-/new", data={"username": person, "name": name})

    assert response.status_code == 403
    assert "security token is missing or expired" in response.text
    assert (
        requests.get(f"{suite.api_url}/api/v1/box/{person}/{name}", timeout=10).status_code == 404
    )


def test_foreign_csrf_token_rejected(visitor: PageVisitor, person: str, suite: Suite) -> None:
    visitor.sign_in(person)
    other = PageVisitor(suite.api_url)
    foreign_token = csrf_from(other.get("/-/sign-in").text)

    response = visitor.post(
        "/-/new", data={"csrf_token": foreign_token, "username": person, "name": unique("box")}
    )

    assert response.status_code == 403


@pytest.mark.parametrize("token", ["\u00b2.signature", "9" * 5000 + ".signature"])
def test_malformed_csrf_token_rejected(visitor: PageVisitor, person: str, token: str) -> None:
    visitor.sign_in(person)

    response = visitor.post("/-/new", data={"csrf_token": token, "username": person, "name": "x"})

    assert response.status_code == 403


def test_huge_page_number_shows_first_page(visitor: PageVisitor) -> None:
    response = visitor.get("/", params={"page": "9" * 5000})

    assert response.status_code == 200


def test_pages_send_a_content_security_policy(visitor: PageVisitor) -> None:
    response = visitor.get("/-/sign-in")

    assert response.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


def test_static_files_are_served_with_their_type(visitor: PageVisitor) -> None:
    html = visitor.get("/-/sign-in").text
    stylesheet = re.search(r'href="(/-/static/atlas\.css\?v=\w+)"', html).group(1)

    response = visitor.get(stylesheet)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/css")
    assert "immutable" in response.headers["Cache-Control"]
    assert visitor.get("/-/static/../service.py").status_code == 404


def test_short_url_redirects_browsers(
    visitor: PageVisitor, suite: Suite, data_rpc: Any, person: str
) -> None:
    owner = api_client(suite, data_rpc, person)
    name = unique("box")
    owner.post("/api/v1/boxes", json={"username": person, "name": name})

    browser = visitor.get(f"/{person}/{name}", allow_redirects=False)
    vagrant = requests.get(
        f"{suite.api_url}/{person}/{name}", headers={"Accept": "application/json"}, timeout=10
    )

    assert browser.status_code == 302
    assert browser.headers["Location"] == f"/{person}/boxes/{name}"
    assert vagrant.status_code == 200
    assert vagrant.json()["name"] == f"{person}/{name}"


def test_private_box_page_is_not_found_for_others(
    visitor: PageVisitor, suite: Suite, data_rpc: Any, person: str
) -> None:
    owner = api_client(suite, data_rpc, person)
    name = unique("secret")
    owner.post(
        "/api/v1/boxes",
        json={
            "username": person,
            "name": name,
            "short_description": "only-for-the-owner",
            "is_private": True,
        },
    )
    stranger = make_person(data_rpc)
    visitor.sign_in(stranger)

    page = visitor.get(f"/{person}/boxes/{name}")
    listing = visitor.get(f"/{person}")
    anonymous = PageVisitor(suite.api_url).get(f"/{person}/boxes/{name}")

    assert page.status_code == 404
    assert "only-for-the-owner" not in page.text
    assert name not in listing.text
    assert anonymous.status_code == 404


def test_description_markup_is_escaped_on_the_box_page(
    visitor: PageVisitor, suite: Suite, data_rpc: Any, person: str
) -> None:
    owner = api_client(suite, data_rpc, person)
    name = unique("box")
    owner.post(
        "/api/v1/boxes",
        json={
            "username": person,
            "name": name,
            "short_description": "<script>alert(1)</script>",
            "description": "**bold** <img src=x onerror=alert(1)>",
        },
    )

    html = visitor.get(f"/{person}/boxes/{name}").text

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html
    assert "<strong>bold</strong>" in html
    assert "<img src=x" not in html


def upload_form(html: str) -> tuple[str, str]:
    action = re.search(r'<form id="upload-form"[^>]* action="([^"]+)"', html).group(1)
    next_url = re.search(r'name="next" value="([^"]+)"', html).group(1)
    return action.replace("&amp;", "&"), next_url.replace("&amp;", "&")


def post_upload_form(
    visitor: PageVisitor, action: str, next_url: str, content: bytes | None = None, **options: Any
) -> requests.Response:
    """Post a box file as the upload page's form does without JavaScript."""
    box = build_box() if content is None else content
    return visitor.http.post(
        action,
        data={"next": next_url},
        files={"file": ("test.box", box, "application/octet-stream")},
        timeout=30,
        **options,
    )


def create_provider_page(visitor: PageVisitor, person: str, **provider: str) -> str:
    """Create a box, version 1.0.0 and a provider through the pages; return the upload page path."""
    name = unique("box")
    assert visitor.submit("/-/new", "/-/new", {"username": person, "name": name}).status_code == 303
    box_page = f"/{person}/boxes/{name}"
    created = visitor.submit(box_page, f"{box_page}/versions", {"version": "1.0.0"})
    assert created.status_code == 303, created.text
    response = visitor.submit(
        box_page,
        f"{box_page}/versions/1.0.0/providers",
        {"provider": "libvirt", "architecture": "amd64", **provider},
    )
    assert response.status_code == 303, response.text
    return response.headers["Location"]


def test_upload_form_works_without_javascript(
    visitor: PageVisitor, person: str, suite: Suite
) -> None:
    visitor.sign_in(person)
    upload_page = create_provider_page(visitor, person)
    action, next_url = upload_form(visitor.get(upload_page).text)
    content = build_box(architecture="amd64")

    response = post_upload_form(visitor, action, next_url, content)

    assert urlsplit(action).netloc == urlsplit(suite.binstore_url).netloc
    assert response.status_code == 200
    assert "Upload complete." in response.text
    box_page = visitor.get(upload_page.split("/versions/")[0]).text
    assert sha256(content) in box_page


def test_rejected_upload_shows_binstore_reason(visitor: PageVisitor, person: str) -> None:
    visitor.sign_in(person)
    upload_page = create_provider_page(visitor, person, checksum_type="sha256", checksum="0" * 64)
    action, next_url = upload_form(visitor.get(upload_page).text)

    response = post_upload_form(visitor, action, next_url)

    assert "The upload failed: checksum mismatch" in response.text


def test_upload_error_without_binstore_signature_is_not_shown(
    visitor: PageVisitor, person: str
) -> None:
    visitor.sign_in(person)
    upload_page = create_provider_page(visitor, person)

    html = visitor.get(upload_page, params={"upload_error": "call 555-0100 now"}).text

    assert "555-0100" not in html


def test_upload_error_shows_only_on_its_page(visitor: PageVisitor, person: str) -> None:
    visitor.sign_in(person)
    upload_page = create_provider_page(visitor, person, checksum_type="sha256", checksum="0" * 64)
    other_page = create_provider_page(visitor, person)
    action, next_url = upload_form(visitor.get(upload_page).text)
    rejected = post_upload_form(visitor, action, next_url, allow_redirects=False)
    query = urlsplit(rejected.headers["Location"]).query

    own = visitor.get(f"{upload_page}?{query}").text
    other = visitor.get(f"{other_page}?{query}").text

    assert "The upload failed: checksum mismatch" in own
    assert "The upload failed" not in other


def test_control_characters_in_next_give_json(visitor: PageVisitor, person: str) -> None:
    visitor.sign_in(person)
    action, next_url = upload_form(visitor.get(create_provider_page(visitor, person)).text)

    planted = next_url + "\r\nSet-Cookie: planted=1"
    response = post_upload_form(visitor, action, planted, allow_redirects=False)

    assert response.status_code == 200, response.text
    assert response.json()["success"] is True
    assert "planted" not in response.headers.get("Set-Cookie", "")


def test_upload_preflight_allows_gateway_only(
    visitor: PageVisitor, person: str, suite: Suite
) -> None:
    visitor.sign_in(person)
    action, _ = upload_form(visitor.get(create_provider_page(visitor, person)).text)
    gateway_origin = suite.api_url

    allowed = requests.options(
        action,
        headers={"Origin": gateway_origin, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    foreign = requests.options(
        action,
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )

    assert allowed.headers["Access-Control-Allow-Origin"] == gateway_origin
    assert "Access-Control-Allow-Origin" not in foreign.headers


def test_page_token_works_with_api(visitor: PageVisitor, person: str, suite: Suite) -> None:
    visitor.sign_in(person)

    response = visitor.submit("/-/tokens", "/-/tokens", {"description": "laptop"})
    token = re.search(r'<pre class="secret" id="new-token">([^<]+)</pre>', response.text).group(1)
    whoami = requests.get(
        f"{suite.api_url}/api/v1/authenticate",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )

    assert response.status_code == 200
    assert whoami.json()["user"]["username"] == person
    assert whoami.json()["description"] == "laptop"


def test_revoked_token_stops_working(visitor: PageVisitor, person: str, suite: Suite) -> None:
    visitor.sign_in(person)
    created = visitor.submit("/-/tokens", "/-/tokens", {"description": "to revoke"})
    token = re.search(r'id="new-token">([^<]+)</pre>', created.text).group(1)
    revoke_path = re.search(r'action="(/-/tokens/\d+/revoke)"', created.text).group(1)

    response = visitor.submit("/-/tokens", revoke_path, {})
    whoami = requests.get(
        f"{suite.api_url}/api/v1/authenticate",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )

    assert response.status_code == 303
    assert "to revoke" not in visitor.get("/-/tokens").text
    assert whoami.status_code == 401


def test_search_finds_released_boxes_only(
    visitor: PageVisitor, suite: Suite, data_rpc: Any, person: str
) -> None:
    owner = api_client(suite, data_rpc, person)
    word = unique("findme")
    released, unreleased = f"{word}-a", f"{word}-b"
    for name in (released, unreleased):
        owner.post("/api/v1/boxes", json={"username": person, "name": name})
        owner.post(f"/api/v1/box/{person}/{name}/versions", json={"version": {"version": "1.0"}})
        owner.post(
            f"/api/v1/box/{person}/{name}/version/1.0/providers",
            json={"provider": {"name": "libvirt"}},
        )
        upload = owner.get(f"/api/v1/box/{person}/{name}/version/1.0/provider/libvirt/upload")
        requests.put(upload.json()["upload_path"], data=build_box(), timeout=30)
    owner.put(f"/api/v1/box/{person}/{released}/version/1.0/release")

    html = visitor.get("/", params={"q": word}).text

    assert f"{person}/{released}" in html
    assert f"{person}/{unreleased}" not in html


def test_search_with_invalid_provider_shows_the_reason(visitor: PageVisitor) -> None:
    response = visitor.get("/", params={"provider": "Not A Provider"})

    assert response.status_code == 422
    assert "provider" in response.text


def test_box_is_created_for_a_managed_organization(
    visitor: PageVisitor, suite: Suite, data_rpc: Any, person: str
) -> None:
    organization = unique("org")
    data_rpc.create_organization(organization, person)
    visitor.sign_in(person)
    name = unique("box")

    form = visitor.get("/-/new").text
    response = visitor.submit("/-/new", "/-/new", {"username": organization, "name": name})

    assert f"<option>{organization}</option>" in form
    assert response.headers["Location"] == f"/{organization}/boxes/{name}"
