"""The OpenAPI document lists every route of the gateway and is valid OpenAPI 3.1."""

from __future__ import annotations

import re
from typing import Any

import pytest
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from openapi_spec_validator import OpenAPIV31SpecValidator
from werkzeug.wrappers import Request

from gateway.openapi import build_document
from gateway.routes.base import V1, V2, GatewayBase
from gateway.service import GatewayService
from gateway.web.endpoint import PageEndpoint
from services.toolkit.web import ApiEndpoint, api

SERVER = "http://atlas.test:8000"


def registered_routes(service_cls: type) -> dict[tuple[str, str], bool]:
    """Map (method, werkzeug rule) of every HTTP entrypoint to whether it serves a page."""
    routes = {}
    for cls in service_cls.__mro__:
        for attribute in vars(cls).values():
            for entrypoint in getattr(attribute, ENTRYPOINT_EXTENSIONS_ATTR, ()):
                if isinstance(entrypoint, ApiEndpoint):
                    page = isinstance(entrypoint, PageEndpoint)
                    routes[(entrypoint.method, entrypoint.url)] = page
    return routes


def openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:>]+:)?(\w+)>", r"{\1}", rule)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document(GatewayService, SERVER, "1.2.3")


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    errors = [error.message for error in OpenAPIV31SpecValidator(document).iter_errors()]

    assert document["openapi"].startswith("3.1")
    assert errors == []


def test_document_lists_every_registered_route(document: dict[str, Any]) -> None:
    routes = registered_routes(GatewayService)
    missing = [
        f"{method} {rule}"
        for method, rule in sorted(routes)
        if method.lower() not in document["paths"].get(openapi_path(rule), {})
    ]

    assert len(routes) > 50
    assert missing == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/authenticate"),
        ("post", "/api/v1/authenticate"),
        ("delete", "/api/v1/authenticate"),
        ("get", "/api/v2/authenticate"),
        ("post", "/api/v1/boxes"),
        ("put", "/api/v1/box/{username}/{name}/version/{version}/release"),
        (
            "get",
            "/api/v2/box/{username}/{name}/version/{version}/provider/{provider}/{architecture}",
        ),
        ("get", "/api/v1/search"),
        ("get", "/{username}/{name}"),
        ("get", "/health"),
        ("get", "/openapi.json"),
    ],
)
def test_document_lists_public_route(document: dict[str, Any], method: str, path: str) -> None:
    assert method in document["paths"][path]


def test_every_json_route_has_documented_responses(document: dict[str, Any]) -> None:
    undocumented = []
    for method, rule in registered_routes(GatewayService):
        operation = document["paths"][openapi_path(rule)][method.lower()]
        if "pages" in operation["tags"]:
            continue
        error = operation["responses"]["404"]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/ErrorBody"}
        success = [status for status in operation["responses"] if status < "400"]
        if not success:
            undocumented.append(f"{method} {rule}")

    assert undocumented == []


def test_request_bodies_refer_to_schemas_models(document: dict[str, Any]) -> None:
    create_box = document["paths"]["/api/v1/boxes"]["post"]
    body = create_box["requestBody"]["content"]["application/json"]["schema"]
    box_create = document["components"]["schemas"]["BoxCreate"]

    assert body == {"$ref": "#/components/schemas/BoxCreate"}
    assert box_create["required"] == ["username", "name"]
    assert "pattern" in box_create["properties"]["name"]


def test_search_documents_its_query_parameters(document: dict[str, Any]) -> None:
    search = document["paths"]["/api/v1/search"]["get"]
    parameters = {parameter["name"]: parameter for parameter in search["parameters"]}

    assert set(parameters) == {"q", "provider", "architecture", "sort", "order", "limit", "page"}
    assert parameters["limit"]["schema"]["maximum"] == 100
    assert all(parameter["in"] == "query" for parameter in parameters.values())


def test_token_id_path_parameter_is_an_integer(document: dict[str, Any]) -> None:
    revoke = document["paths"]["/api/v1/tokens/{token_id}"]["delete"]
    (parameter,) = revoke["parameters"]

    assert parameter["schema"] == {"type": "integer", "minimum": 0, "maximum": 2147483647}


def test_authentication_follows_route_records(document: dict[str, Any]) -> None:
    paths = document["paths"]
    required = paths["/api/v1/boxes"]["post"]["security"]
    optional = paths["/api/v1/box/{username}/{name}"]["get"]["security"]
    none = paths["/api/v1/authenticate"]["post"]["security"]

    assert {} not in required
    assert {"bearer": []} in required
    assert {} in optional
    assert none == []


def test_operation_ids_are_unique(document: dict[str, Any]) -> None:
    ids = [
        operation["operationId"]
        for item in document["paths"].values()
        for operation in item.values()
    ]

    assert len(ids) == len(set(ids))


def test_page_routes_are_html(document: dict[str, Any]) -> None:
    pages = [route for route, page in registered_routes(GatewayService).items() if page]
    for method, rule in pages:
        operation = document["paths"][openapi_path(rule)][method.lower()]
        assert "text/html" in operation["responses"]["200"]["content"]

    assert pages


class MirrorRoutes(GatewayBase):
    """A route group added without a ``documented`` record on its handlers."""

    @api("GET", V1 + "/mirrors/<int:mirror_id>")
    @api("GET", V2 + "/mirrors/<int:mirror_id>")
    def get_mirror(self, request: Request, mirror_id: int) -> Any:
        raise NotImplementedError


class GatewayWithMirrors(GatewayService, MirrorRoutes):
    name = "gateway"


def test_new_route_group_appears_without_edits() -> None:
    document = build_document(GatewayWithMirrors, SERVER, "1.2.3")
    get_mirror = document["paths"]["/api/v1/mirrors/{mirror_id}"]["get"]

    assert get_mirror["operationId"] == "get_mirror_v1"
    assert get_mirror["parameters"][0]["schema"]["type"] == "integer"
    assert "application/json" in get_mirror["responses"]["200"]["content"]
    assert "/api/v2/mirrors/{mirror_id}" in document["paths"]
    assert OpenAPIV31SpecValidator(document).is_valid()
