"""Property-based fuzzing of every JSON route in the gateway's OpenAPI document.

schemathesis generates requests from ``/openapi.json``, valid and invalid,
and sends them to the suite in this process with a signed-in user's token.
Each response must not be a 5xx, every 4xx must carry the API's error body,
and every response must match the schema that the document declares for its
status and content type.
"""

from __future__ import annotations

import contextlib
import os
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
from tests.fuzz.conftest import RESPONSES
from tests.loopback import http_from, new_loopback_address

# Cases per operation in each pass; three passes over about 80 operations
# send about 1,600 requests. ATLAS_FUZZ_EXAMPLES=200 ATLAS_FUZZ_RANDOM=1
# searches longer and with new cases on each run.
MAX_EXAMPLES = int(os.environ.get("ATLAS_FUZZ_EXAMPLES", "8"))
DERANDOMIZE = not os.environ.get("ATLAS_FUZZ_RANDOM")

# Objects that the seeded pass puts into path parameters, so that generated
# bodies reach existing boxes, versions and providers instead of 404s.
SEEDED_BOX = "seeded"
SEEDED_VERSION = "1.0.0"
SEEDED_PROVIDER = "virtualbox"
SEEDED_ARCHITECTURE = "amd64"

# Handlers whose requests make Atlas fetch from or post to a URL in the body.
# The suite's workers would send generated URLs anywhere, so they are not
# fuzzed. tests/integration covers them against servers on loopback.
OUTBOUND_HANDLERS = ("create_account_webhook", "create_box_webhook", "import_box")

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
    """The signed-in user whose token the cases carry, and the objects it owns."""

    def __init__(self, suite: Suite, data_rpc: Any) -> None:
        self.data_rpc = data_rpc
        self.username = unique("fuzzer")
        data_rpc.create_user(self.username, None, None)
        self.token = data_rpc.issue_token(self.username, "fuzzing")["token"]
        self.revoker = unique("revoker")
        data_rpc.create_user(self.revoker, None, None)
        self.organization = unique("fuzzorg")
        self.api_url = suite.api_url
        # The failed sign-ins that fuzzing makes count against this address
        # only, not against 127.0.0.1 that the other tests sign in from.
        self.session = http_from(new_loopback_address())

    def seed(self) -> dict[str, str]:
        """Create the seeded objects unless they exist; return them as path parameters."""
        headers = {"Authorization": f"Bearer {self.token}"}
        box = f"/api/v1/box/{self.username}/{SEEDED_BOX}"
        for path, body in (
            ("/api/v1/boxes", {"username": self.username, "name": SEEDED_BOX}),
            (box + "/versions", {"version": SEEDED_VERSION}),
            (
                f"{box}/version/{SEEDED_VERSION}/providers",
                {"name": SEEDED_PROVIDER, "architecture": SEEDED_ARCHITECTURE},
            ),
            ("/api/v1/organizations", {"name": self.organization}),
        ):
            response = self.session.post(self.api_url + path, json=body, headers=headers)
            # 409 means that it exists, and 422 that the fuzzer released or revoked the version.
            assert response.status_code in (200, 409, 422), response.text
        return {
            "username": self.username,
            "name": SEEDED_BOX,
            "version": SEEDED_VERSION,
            "provider": SEEDED_PROVIDER,
            "architecture": SEEDED_ARCHITECTURE,
            "organization": self.organization,
        }

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
def fuzzer(suite: Suite, data_rpc: Any) -> Fuzzer:
    return Fuzzer(suite, data_rpc)


@pytest.fixture(scope="module")
def gateway_schema(suite: Suite, fuzzer: Fuzzer) -> Any:
    document = requests.get(suite.api_url + "/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=suite.api_url)
    # Page routes serve HTML forms, which tests/integration/test_pages.py covers.
    outbound = "^(" + "|".join(OUTBOUND_HANDLERS) + r")_v\d+$"
    return schema.exclude(tag="pages").exclude(operation_id_regex=outbound)


def fuzz_operation(
    operation: Any, mode: GenerationMode, fuzzer: Fuzzer, path_parameters: dict[str, str]
) -> None:
    """Send up to ``MAX_EXAMPLES`` generated cases to one operation; raise on the first failure."""
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=DERANDOMIZE,
        # Shrinking could take minutes; the failure report carries a curl command instead.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def send(case: Any) -> None:
        response = case.call(session=fuzzer.session, headers=fuzzer.headers_for(case))
        RESPONSES[f"{response.status_code // 100}xx"] += 1
        case.validate_response(response, checks=CHECKS)

    # A pass may have no cases: an operation whose only parameter is a string
    # of any content has no invalid values.
    with contextlib.suppress(Unsatisfiable):
        send()


def test_gateway_fuzzing(gateway_schema: Any, fuzzer: Fuzzer) -> None:
    failures = []
    passes = [
        ("positive", GenerationMode.POSITIVE, False),
        ("negative", GenerationMode.NEGATIVE, False),
        ("seeded", GenerationMode.POSITIVE, True),
    ]
    for result in gateway_schema.get_all_operations():
        operation = result.ok()
        for name, mode, seeded in passes:
            path_parameters = {}
            if seeded:
                declared = {parameter.name for parameter in operation.path_parameters}
                seeds = fuzzer.seed()
                path_parameters = {key: seeds[key] for key in declared if key in seeds}
            try:
                fuzz_operation(operation, mode, fuzzer, path_parameters)
            # Every operation runs, and the failures are reported together.
            # schemathesis raises its failures as an ExceptionGroup.
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} ({name}): {exc}")

    assert not failures, f"{len(failures)} fuzzing passes failed:\n\n" + "\n\n".join(failures)
