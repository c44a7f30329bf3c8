"""Helpers for tests of the web pages: a signed-in browser-like session over requests."""

from __future__ import annotations

import re
from typing import Any

import requests

from tests.conftest import unique

PASSWORD = "correct horse battery"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


class PageVisitor:
    """A person using the web pages through requests, with cookies like a browser."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        self.http.headers["Accept"] = "text/html"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.http.get(self.base_url + path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.http.post(self.base_url + path, **kwargs)

    def submit(self, page: str, action: str, fields: dict[str, str]) -> requests.Response:
        """Load ``page``, then post ``fields`` to ``action`` with the page's CSRF token."""
        token = csrf_from(self.get(page).text)
        return self.post(action, data={"csrf_token": token, **fields}, allow_redirects=False)

    def sign_in(self, username: str, password: str = PASSWORD) -> requests.Response:
        response = self.submit(
            "/-/sign-in", "/-/sign-in", {"login": username, "password": password}
        )
        assert response.status_code == 303, response.text
        return response


def make_person(data_rpc: Any) -> str:
    username = unique("person")
    data_rpc.create_user(username, PASSWORD, None)
    return username


def account_id_of(data_rpc: Any, username: str) -> int:
    """Return the id of ``username``'s account, which jobs name as their owner."""
    token = data_rpc.issue_token(username, "account id lookup")["token"]
    return int(data_rpc.authenticate(token)["actor"]["id"])
