"""``GET /openapi.json`` serves the document that the gateway's routes generate."""

from __future__ import annotations

from typing import Any

from openapi_spec_validator import OpenAPIV31SpecValidator

from tests.conftest import Client
from tests.responses import assert_error


def test_openapi_document_is_served(anonymous: Client, suite: Any) -> None:
    response = anonymous.get("/openapi.json")
    document = response.json()

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert document["servers"] == [{"url": suite.api_url}]
    assert "post" in document["paths"]["/api/v1/boxes"]
    assert OpenAPIV31SpecValidator(document).is_valid()


def test_openapi_document_takes_no_parameters(anonymous: Client) -> None:
    response = anonymous.get("/openapi.json", params={"format": "yaml"})

    assert_error(response, 400, "unknown query parameter 'format'; this route accepts none")
