"""API tokens: created with a password, listed, revoked, and stored only as hashes."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import create_engine, text

from tests.conftest import Client
from tests.responses import assert_error

PASSWORD = "correct horse battery"


def log_in(anonymous: Client, username: str, description: str) -> dict[str, Any]:
    response = anonymous.post(
        "/api/v1/authenticate",
        json={
            "user": {"login": username, "password": PASSWORD},
            "token": {"description": description},
            "two_factor": {},
        },
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_login_returns_fields_ruby_client_reads(make_user: Any, anonymous: Client) -> None:
    user = make_user(password=PASSWORD)

    token = log_in(anonymous, user.username, "laptop")

    # VagrantCloud::Response::CreateToken requires these four.
    assert {"token", "token_hash", "created_at", "description"} <= set(token)
    assert token["description"] == "laptop"
    assert token["token_hash"] == hashlib.sha256(token["token"].encode()).hexdigest()


def test_login_by_username_in_another_case(make_user: Any, anonymous: Client) -> None:
    user = make_user(password=PASSWORD)

    token = log_in(anonymous, user.username.upper(), "caps")

    assert token["user"]["username"] == user.username


def test_login_of_unknown_user_is_401(anonymous: Client) -> None:
    response = anonymous.post(
        "/api/v1/authenticate", json={"user": {"login": "nobody-here", "password": PASSWORD}}
    )

    assert_error(response, 401, "invalid username or password")


def test_tokens_list_shows_descriptions_and_last_use(make_user: Any, anonymous: Client) -> None:
    user = make_user(password=PASSWORD)
    unused = log_in(anonymous, user.username, "unused")
    used = log_in(anonymous, user.username, "used")
    session = Client(user.api_url, user.username, used["token"])

    session.get("/api/v1/authenticate")
    listed = session.get("/api/v1/tokens").json()["tokens"]

    by_description = {token["description"]: token for token in listed}
    assert {"unused", "used", "test"} == set(by_description)
    assert by_description["used"]["last_used_at"] is not None
    assert by_description["unused"]["last_used_at"] is None
    assert by_description["unused"]["id"] == unused["id"]
    assert all("token" not in token for token in listed)


def test_revoke_token_by_id(make_user: Any, anonymous: Client) -> None:
    user = make_user(password=PASSWORD)
    spare = log_in(anonymous, user.username, "spare")

    revoked = user.delete(f"/api/v1/tokens/{spare['id']}")
    again = user.delete(f"/api/v1/tokens/{spare['id']}")
    spare_use = anonymous.get("/api/v1/authenticate", params={"access_token": spare["token"]})
    remaining = [token["id"] for token in user.get("/api/v1/tokens").json()["tokens"]]

    assert revoked.status_code == 200
    assert revoked.json()["description"] == "spare"
    assert_error(again, 404, f"token {spare['id']} not found")
    assert_error(spare_use, 401, "invalid or was revoked")
    assert spare["id"] not in remaining


def test_cannot_revoke_another_users_token(make_user: Any, anonymous: Client) -> None:
    owner = make_user(password=PASSWORD)
    token = log_in(anonymous, owner.username, "mine")
    other = make_user()

    response = other.delete(f"/api/v1/tokens/{token['id']}")
    still_valid = anonymous.get("/api/v1/authenticate", params={"access_token": token["token"]})

    assert_error(response, 404, "not found")
    assert still_valid.status_code == 200


def test_token_id_out_of_range_is_404(user: Client) -> None:
    assert_error(user.delete("/api/v1/tokens/99999999999999999999"), 404, "no route matches")
    assert_error(user.delete("/api/v1/tokens/2147483647"), 404, "token 2147483647 not found")


def test_tokens_routes_need_a_token(anonymous: Client) -> None:
    assert_error(anonymous.get("/api/v1/tokens"), 401, "authentication required")
    assert_error(anonymous.delete("/api/v1/tokens/1"), 401, "authentication required")
    assert_error(anonymous.delete("/api/v1/authenticate"), 401, "authentication required")


def test_tokens_and_passwords_are_stored_hashed(
    make_user: Any, anonymous: Client, database_url: str
) -> None:
    user = make_user(password=PASSWORD)
    token = log_in(anonymous, user.username, "stored")

    engine = create_engine(database_url)
    with engine.connect() as connection:
        password_hash = connection.scalar(
            text("SELECT password_hash FROM accounts WHERE username = :name"),
            {"name": user.username},
        )
        stored = connection.execute(
            text("SELECT * FROM tokens WHERE id = :id"), {"id": token["id"]}
        )
        row = [str(value) for value in stored.one()]
    engine.dispose()

    assert password_hash.startswith("$argon2id$")
    assert PASSWORD not in password_hash
    assert token["token"] not in row
    assert token["token_hash"] in row
