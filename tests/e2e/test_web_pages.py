"""The web pages on the suite as ``atlas up`` runs it, with several gateway processes."""

from __future__ import annotations

from typing import Any

from tests.conftest import unique
from tests.pages import PASSWORD, PageVisitor, csrf_from

ROUNDS = 12  # requests spread over the gateway processes that share the port


def test_session_and_forms_work_on_every_gateway_process(atlas_suite: Any) -> None:
    username = unique("person")
    atlas_suite.create_user(username, PASSWORD)
    visitor = PageVisitor(atlas_suite.api_url)
    visitor.sign_in(username)

    statuses = []
    for round_number in range(ROUNDS):
        # A fresh connection each time, so the kernel may pick another process.
        visitor.http.close()
        form = visitor.get("/-/tokens")
        visitor.http.close()
        created = visitor.post(
            "/-/tokens",
            data={"csrf_token": csrf_from(form.text), "description": f"round {round_number}"},
        )
        statuses.append((form.status_code, created.status_code, username in created.text))

    assert statuses == [(200, 200, True)] * ROUNDS
