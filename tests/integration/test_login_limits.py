"""Failed sign-ins are limited per login name and per client address, across gateways.

Each test sends its requests from loopback addresses of its own
(127.x.y.z), so that the counts of one test never reach another's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from gateway.service import GatewayService
from services.data import login_limits
from services.toolkit import config as cfg
from tests.conftest import Suite, service_config, unique
from tests.loopback import http_from, new_loopback_address
from tests.operations import Services, http_config
from tests.pages import PASSWORD, PageVisitor, csrf_from
from tests.responses import assert_error

MAX_PER_ACCOUNT = int(cfg.DEFAULTS[cfg.LOGIN_MAX_FAILURES_PER_ACCOUNT])
MAX_PER_ADDRESS = int(cfg.DEFAULTS[cfg.LOGIN_MAX_FAILURES_PER_ADDRESS])
WRONG = "not the password"


class Signer:
    """Someone who requests tokens with a password from one client address."""

    def __init__(self, api_url: str, address: str | None = None) -> None:
        self.api_url = api_url
        self.address = address or new_loopback_address()
        self.http = http_from(self.address)

    def authenticate(self, login: str, password: str, version: str = "v1") -> requests.Response:
        body = {"user": {"login": login, "password": password}, "token": {"description": "t"}}
        return self.http.post(f"{self.api_url}/api/{version}/authenticate", json=body, timeout=30)


@pytest.fixture
def person(data_rpc: Any) -> str:
    username = unique("person")
    data_rpc.create_user(username, PASSWORD, None)
    return username


@pytest.fixture
def second_gateway(base_config: dict[str, Any], suite: Suite) -> Iterator[str]:
    config, url = http_config(service_config(base_config))
    services = Services()
    services.start(GatewayService, config)
    yield url
    services.stop_all()


def fail_times(signer: Signer, login: str, count: int) -> None:
    for attempt in range(count):
        response = signer.authenticate(login, WRONG)
        assert response.status_code == 401, (attempt, response.text)


def without_numbers(body: dict[str, Any]) -> str:
    """Return the body as text with each number replaced, since waits differ by a second."""
    return re.sub(r"\d+", "N", json.dumps(body, sort_keys=True))


def assert_limited(response: requests.Response) -> None:
    assert_error(response, 429, "too many failed sign-in attempts")
    assert int(response.headers["Retry-After"]) > 0


def test_account_limited_after_failures(suite: Suite, person: str) -> None:
    signer = Signer(suite.api_url)
    fail_times(signer, person, MAX_PER_ACCOUNT)

    wrong = signer.authenticate(person, WRONG)
    right = signer.authenticate(person, PASSWORD)
    v2 = signer.authenticate(person, PASSWORD, version="v2")
    other_address = Signer(suite.api_url).authenticate(person, PASSWORD)

    assert_limited(wrong)
    assert_limited(right)
    assert_limited(v2)
    assert_limited(other_address)


def test_limit_reveals_no_account(suite: Suite, person: str) -> None:
    missing = unique("nobody")
    signer = Signer(suite.api_url)

    for _ in range(MAX_PER_ACCOUNT + 1):
        existing = signer.authenticate(person, WRONG)
        absent = signer.authenticate(missing, WRONG)
        assert existing.status_code == absent.status_code
        assert without_numbers(existing.json()) == without_numbers(absent.json())
        assert ("Retry-After" in existing.headers) == ("Retry-After" in absent.headers)
    assert_limited(signer.authenticate(missing, WRONG))


def test_address_limited_across_accounts(suite: Suite, person: str) -> None:
    signer = Signer(suite.api_url)
    for _ in range(MAX_PER_ADDRESS):
        response = signer.authenticate(unique("guess"), WRONG)
        assert response.status_code == 401, response.text

    from_address = signer.authenticate(person, PASSWORD)
    from_elsewhere = Signer(suite.api_url).authenticate(person, PASSWORD)

    assert_limited(from_address)
    assert from_elsewhere.status_code == 200, from_elsewhere.text


def test_own_sign_in_keeps_address_count(suite: Suite, data_rpc: Any, person: str) -> None:
    attacker = unique("attacker")
    data_rpc.create_user(attacker, PASSWORD, None)
    signer = Signer(suite.api_url)
    for _ in range(MAX_PER_ADDRESS - 1):
        assert signer.authenticate(unique("guess"), WRONG).status_code == 401

    own = signer.authenticate(attacker, PASSWORD)
    last_guess = signer.authenticate(person, WRONG)
    next_guess = signer.authenticate(person, WRONG)

    assert own.status_code == 200, own.text
    assert last_guess.status_code == 401, last_guess.text
    assert_limited(next_guess)


def test_right_password_forgives_own_failures(suite: Suite, person: str) -> None:
    signer = Signer(suite.api_url)
    fail_times(signer, person, MAX_PER_ACCOUNT - 1)
    assert signer.authenticate(person, PASSWORD).status_code == 200

    fail_times(signer, person, MAX_PER_ACCOUNT - 1)
    again = signer.authenticate(person, PASSWORD)

    assert again.status_code == 200, again.text


def test_limit_holds_across_gateways(suite: Suite, second_gateway: str, person: str) -> None:
    address = new_loopback_address()
    first, second = Signer(suite.api_url, address), Signer(second_gateway, address)
    for attempt in range(MAX_PER_ACCOUNT):
        signer = first if attempt % 2 else second
        assert signer.authenticate(person, WRONG).status_code == 401

    assert_limited(first.authenticate(person, PASSWORD))
    assert_limited(second.authenticate(person, PASSWORD))


def test_sign_in_page_limited(suite: Suite, person: str) -> None:
    visitor = PageVisitor(suite.api_url)
    visitor.http = http_from(new_loopback_address())
    visitor.http.headers["Accept"] = "text/html"
    for _ in range(MAX_PER_ACCOUNT):
        response = visitor.submit("/-/sign-in", "/-/sign-in", {"login": person, "password": WRONG})
        assert response.status_code == 401

    token = csrf_from(visitor.get("/-/sign-in").text)
    limited = visitor.post(
        "/-/sign-in",
        data={"csrf_token": token, "login": person, "password": PASSWORD},
        allow_redirects=False,
    )

    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    assert limited.headers["Content-Type"].startswith("text/html")
    assert "Too many failed sign-in attempts. Try again in" in limited.text
    assert "atlas_session" not in visitor.http.cookies


def test_concurrent_failures_stay_within_limit(suite: Suite, person: str) -> None:
    import eventlet

    signer = Signer(suite.api_url)
    # Only the last two slots are raced for, so that few slow password checks run at once.
    fail_times(signer, person, MAX_PER_ACCOUNT - 2)
    attempts = 10
    pool = eventlet.GreenPool(attempts)
    statuses = list(
        pool.imap(lambda _: signer.authenticate(person, WRONG).status_code, range(attempts))
    )

    assert statuses.count(401) == 2
    assert statuses.count(429) == attempts - 2


def test_address_key_groups_ipv6_networks() -> None:
    assert login_limits.address_key("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert login_limits.address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert login_limits.address_key("192.0.2.7") == "192.0.2.7"
    assert login_limits.address_key("not an address") is None
    assert login_limits.address_key(None) is None
