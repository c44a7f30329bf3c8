"""Property-based fuzzing of every JSON route in the gateway's OpenAPI document.

schemathesis generates requests from ``/openapi.json``, valid and invalid,
and sends them to the suite in this process with a signed-in user's token.
Each response must not be a 5xx, every 4xx must carry the API's error body,
and every response must match the schema that the document declares for its
status and content type.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import Suite, unique

# Examples per operation and generation mode; about 1,500 requests in all.
MAX_EXAMPLES = 25

# Operations that revoke tokens get a new token of another user, so that the
# fuzzing user's token keeps working for the other operations.
REVOKING = {("DELETE", "/api/v1/authenticate"), ("DELETE", "/api/v2/authenticate")}
REVOKING_PREFIXES = ("/api/v1/tokens/", "/api/v2/tokens/")


def error_body_format(ctx: Any, response: Any, case: Any) -> bool:
    """Check that a 4xx response carries ``{"errors": [...], "success": false}``."""
    if not 400 <= response.status_code < 500:
        return True
    body = response.json()
    assert isinstance(body, dict), f"{response.status_code} body is not an object: {body!r}"
    assert body.get("success") is False, f"{response.status_code} body lacks success: false"
    errors = body.get("errors")
    assert isinstance(errors, list) and errors, f"{response.status_code} body lacks errors"
    assert all(isinstance(e, str) and e for e in errors), f"errors are not messages: {errors!r}"
    assert set(body) == {"errors", "success"}, f"unexpected keys in error body: {sorted(body)}"
    return True


CHECKS = [
    not_a_server_error,
    error_body_format,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class Fuzzer:
    """The signed-in user whose token the cases carry, and the count of cases sent."""

    def __init__(self, suite: Suite, data_rpc: Any) -> None:
        self.data_rpc = data_rpc
        self.username = unique("fuzzer")
        data_rpc.create_user(self.username, None, None)
        self.token = data_rpc.issue_token(self.username, "fuzzing")["token"]
        self.revoker = unique("revoker")
        data_rpc.create_user(self.revoker, None, None)
        self.session = requests.Session()
        self.cases = 0

    def headers_for(self, case: Any) -> dict[str, str]:
        path = case.formatted_path
        revoking = (case.method.upper(), path) in REVOKING or (
            case.method.upper() == "DELETE" and path.startswith(REVOKING_PREFIXES)
        )
        token = self.token
        if revoking:
            token = self.data_rpc.issue_token(self.revoker, "revoked by fuzzing")["token"]
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def fuzzer(suite: Suite, data_rpc: Any, request: pytest.FixtureRequest) -> Iterator[Fuzzer]:
    running = Fuzzer(suite, data_rpc)
    yield running
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    line = f"schemathesis sent {running.cases} cases to the gateway"
    if reporter is not None:
        reporter.write_line(line)
    else:
        print(line)


@pytest.fixture(scope="module")
def gateway_schema(suite: Suite, fuzzer: Fuzzer) -> Any:
    document = requests.get(suite.api_url + "/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=suite.api_url)
    # Page routes answer HTML forms and are covered by tests/integration/test_pages.py.
    return schema.exclude(tag="pages")


def fuzz_operation(operation: Any, mode: GenerationMode, fuzzer: Fuzzer) -> None:
    """Send up to ``MAX_EXAMPLES`` generated cases to one operation; raise on the first failure."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        # Shrinking could take minutes; the failure report carries a curl command instead.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def send(case: Any) -> None:
        fuzzer.cases += 1
        response = case.call(session=fuzzer.session, headers=fuzzer.headers_for(case))
        case.validate_response(response, checks=CHECKS)

    try:
        send()
    except Unsatisfiable:
        # A mode may have no cases: an operation whose only parameter is a
        # string of any content has no invalid values.
        pass


def test_gateway_fuzzing(gateway_schema: Any, fuzzer: Fuzzer) -> None:
    failures = []
    for result in gateway_schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz_operation(operation, mode, fuzzer)
            # Every operation runs, and the failures are reported together.
            # schemathesis raises its failures as an ExceptionGroup.
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} ({mode.value}): {exc}")

    assert not failures, f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures)
