"""The gateway's OpenAPI 3.1 document, built from its routes and the models in ``schemas``.

Every ``api`` and page entrypoint of the service class becomes an operation,
so a new group of routes appears in the document as soon as the service
inherits it. A handler's ``documented`` record (``services.toolkit.routespec``)
supplies its request body, query parameters, responses and authentication;
a handler without one is listed with generic JSON bodies.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from schemas.responses import ErrorBody
from services.toolkit.routespec import TOKEN_PARAMETER, Operation, operation_of
from services.toolkit.web import JSON_TYPE, MAX_JSON_BODY, ApiEndpoint

from .auth import TOKEN_HEADER
from .web.endpoint import PageEndpoint
from .web.security import SESSION_COOKIE

OPENAPI_VERSION = "3.1.0"
COMPONENT_REF = "#/components/schemas/{model}"

# A werkzeug rule variable: <name>, <converter:name> or <converter(arguments):name>.
RULE_VARIABLE = re.compile(r"<(?:(?P<converter>\w+)(?:\((?P<arguments>[^)]*)\))?:)?(?P<name>\w+)>")

# Credentials the API accepts, in the order the gateway reads them.
TOKEN_SCHEMES: dict[str, dict[str, Any]] = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "An API token."},
    "atlasToken": {"type": "apiKey", "in": "header", "name": TOKEN_HEADER},
    "accessToken": {"type": "apiKey", "in": "query", "name": TOKEN_PARAMETER},
}
SESSION_SCHEME = {"session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE}}

ERROR_DESCRIPTIONS = {
    "400": "The request is malformed: invalid JSON, a bad value or an unknown parameter.",
    "401": "The route needs a token and none or an invalid one was sent.",
    "403": "The caller may not do this.",
    "404": "No such route or object, or the caller may not see it.",
    "405": "The route does not accept this method.",
    "409": "The object exists already.",
    "413": f"The body exceeds {MAX_JSON_BODY} bytes.",
    "422": "A field breaks a rule; the message names it.",
    "503": "A service is unavailable; retry after the Retry-After seconds.",
}


@dataclass(frozen=True)
class Route:
    """One method and URL rule of an HTTP entrypoint, with its handler."""

    method: str
    rule: str
    handler_name: str
    handler: Any
    group: str
    page: bool

    @property
    def operation(self) -> Operation | None:
        return operation_of(self.handler)

    @property
    def path(self) -> str:
        """Return the rule as an OpenAPI path template, ``/box/{username}``."""
        return RULE_VARIABLE.sub(lambda match: "{" + match["name"] + "}", self.rule)


def routes(service_cls: type) -> list[Route]:
    """Return every HTTP route of ``service_cls``, sorted by path and method."""
    found = []
    for handler_name, handler in inspect.getmembers(service_cls, inspect.isfunction):
        for entrypoint in getattr(handler, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if not isinstance(entrypoint, ApiEndpoint):
                continue
            group = handler.__qualname__.split(".")[0]
            for method in entrypoint.method.split(","):
                found.append(
                    Route(
                        method=method.strip().upper(),
                        rule=entrypoint.url,
                        handler_name=handler_name,
                        handler=handler,
                        group=group,
                        page=isinstance(entrypoint, PageEndpoint),
                    )
                )
    return sorted(found, key=lambda route: (route.path, route.method))


def build_document(service_cls: type, server_url: str, version: str) -> dict[str, Any]:
    """Build the OpenAPI document of every route that ``service_cls`` serves."""
    service_routes = routes(service_cls)
    components = Components()
    paths: dict[str, dict[str, Any]] = {}
    operation_ids = set()
    for route in service_routes:
        operation_id = _operation_id(route, operation_ids)
        operation_ids.add(operation_id)
        item = _operation(route, operation_id, components)
        paths.setdefault(route.path, {})[route.method.lower()] = item
    schemas = components.schemas()

    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Atlas",
            "version": version,
            "description": (
                "A Vagrant box registry that speaks the Vagrant Cloud API, under /api/v1 "
                "and /api/v2, with Atlas's own routes beside it. Every error has the body "
                '{"errors": [...], "success": false}.'
            ),
        },
        "servers": [{"url": server_url.rstrip("/")}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {**TOKEN_SCHEMES, **SESSION_SCHEME},
        },
    }


class Components:
    """The models that operations refer to, collected into ``#/components/schemas``."""

    def __init__(self) -> None:
        # Each reference is a dict that schemas() fills in, because pydantic
        # names a component only after it processes every model: a model used in
        # both modes becomes Name-Input and Name-Output, and two models of one
        # name get their modules' names.
        self.references: list[tuple[type[BaseModel], JsonSchemaMode, dict[str, Any]]] = []
        # Definitions that the fields of query models refer to, because the
        # fields themselves become parameters and not a component.
        self.extra: dict[str, Any] = {}

    def ref(self, model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        reference: dict[str, Any] = {}
        self.references.append((model, mode, reference))
        return reference

    def query_parameters(self, model: type[BaseModel]) -> list[dict[str, Any]]:
        """Return the model's fields as query parameters, each with its own schema."""
        schema = model.model_json_schema(ref_template=COMPONENT_REF)
        self.extra.update(schema.get("$defs", {}))
        required = set(schema.get("required", ()))
        parameters = []
        for name, field_schema in schema["properties"].items():
            field_schema = _without_null(field_schema)
            field_schema.pop("title", None)
            parameter = {"name": name, "in": "query", "required": name in required}
            if "description" in field_schema:
                parameter["description"] = field_schema.pop("description")
            parameter["schema"] = field_schema
            parameters.append(parameter)
        return parameters

    def schemas(self) -> dict[str, Any]:
        """Fill in every reference and return the component schemas, sorted by name."""
        keys = list(dict.fromkeys((model, mode) for model, mode, _ in self.references))
        mapping, top = models_json_schema(keys, ref_template=COMPONENT_REF)
        for model, mode, reference in self.references:
            reference.update(mapping[(model, mode)])
        return dict(sorted({**self.extra, **top.get("$defs", {})}.items()))


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """Return ``schema`` without the null alternative, which a query string cannot express."""
    alternatives = schema.get("anyOf")
    if alternatives is None:
        return dict(schema)
    kept = [item for item in alternatives if item != {"type": "null"}]
    rest = {key: value for key, value in schema.items() if key not in ("anyOf", "default")}
    if "default" in schema and schema["default"] is not None:
        rest["default"] = schema["default"]
    if len(kept) == 1:
        return {**kept[0], **rest}
    return {**rest, "anyOf": kept}


def _operation_id(route: Route, taken: set[str]) -> str:
    match = re.match(r"^/api/(v\d+)/", route.rule)
    candidate = f"{route.handler_name}_{match[1]}" if match else route.handler_name
    suffix = 2
    unique = candidate
    while unique in taken:
        unique = f"{candidate}_{suffix}"
        suffix += 1
    return unique


def _summary(route: Route) -> str:
    operation = route.operation
    if operation is not None and operation.summary:
        return operation.summary
    doc = inspect.getdoc(route.handler)
    if doc:
        return doc.splitlines()[0].rstrip(".")
    return route.handler_name.replace("_", " ").capitalize()


def _operation(route: Route, operation_id: str, components: Components) -> dict[str, Any]:
    item: dict[str, Any] = {
        "operationId": operation_id,
        "summary": _summary(route),
        "tags": [_tag(route)],
    }
    parameters = list(_path_parameters(route.rule))
    if route.page:
        item["parameters"] = parameters
        item["security"] = [{}, {"session": []}]
        item["responses"] = {
            "200": {"description": "An HTML page.", "content": {"text/html": {}}},
            "default": {"description": "An error page.", "content": {"text/html": {}}},
        }
        return item

    operation = route.operation
    if operation is None:
        item["parameters"] = parameters
        item["security"] = _security("optional")
        item["responses"] = {
            "200": {"description": "A JSON body.", "content": {JSON_TYPE: {"schema": {}}}},
            **_error_responses(components),
        }
        if route.method in ("POST", "PUT", "PATCH"):
            item["requestBody"] = {"content": {JSON_TYPE: {"schema": {"type": "object"}}}}
        return item

    if operation.query is not None:
        parameters += components.query_parameters(operation.query)
    item["parameters"] = parameters
    item["security"] = _security(operation.auth)
    if operation.body is not None:
        item["requestBody"] = {
            "required": True,
            "description": (
                "The fields may also be sent wrapped in an object under the resource's "
                'name, as {"box": {...}}, which is the form of Vagrant Cloud\'s documentation.'
            ),
            "content": {JSON_TYPE: {"schema": components.ref(operation.body, "validation")}},
        }
    responses = _error_responses(components)
    for status, body in sorted(operation.responses.items()):
        responses[str(status)] = _response(status, body, operation, components)
    item["responses"] = responses
    return item


def _tag(route: Route) -> str:
    if route.page:
        return "pages"
    group = route.group.removesuffix("Routes").removesuffix("ServiceOperations")
    words = re.findall(r"[A-Z][a-z]*", group) or [group]
    return " ".join(words).lower() or "operations"


def _path_parameters(rule: str) -> Iterator[dict[str, Any]]:
    for match in RULE_VARIABLE.finditer(rule):
        yield {
            "name": match["name"],
            "in": "path",
            "required": True,
            "schema": _converter_schema(match["converter"], match["arguments"]),
        }


def _converter_schema(converter: str | None, arguments: str | None) -> dict[str, Any]:
    """Return the JSON schema of the values a werkzeug converter matches."""
    options = dict(re.findall(r"(\w+)=(\d+)", arguments or ""))
    if converter == "int":
        schema: dict[str, Any] = {"type": "integer", "minimum": int(options.get("min", 0))}
        if "max" in options:
            schema["maximum"] = int(options["max"])
        return schema
    if converter == "path":
        return {"type": "string", "minLength": 1}
    # The default converter matches one path segment: no slash, at least one character.
    return {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}


def _security(auth: str) -> list[dict[str, list[str]]]:
    schemes = [{name: []} for name in TOKEN_SCHEMES]
    if auth == "required":
        return schemes
    if auth == "optional":
        return [{}, *schemes]
    return []


def _error_responses(components: Components) -> dict[str, Any]:
    error = {JSON_TYPE: {"schema": components.ref(ErrorBody, "serialization")}}
    responses: dict[str, Any] = {
        status: {"description": description, "content": error}
        for status, description in ERROR_DESCRIPTIONS.items()
    }
    responses["503"]["headers"] = {
        "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "string"}}
    }
    return responses


def _response(
    status: int, body: Any, operation: Operation, components: Components
) -> dict[str, Any]:
    response: dict[str, Any] = {"description": _status_description(status)}
    if isinstance(body, type) and issubclass(body, BaseModel):
        response["content"] = {JSON_TYPE: {"schema": components.ref(body, "serialization")}}
    elif body == JSON_TYPE:
        response["content"] = {JSON_TYPE: {"schema": {"type": "object"}}}
    elif isinstance(body, str):
        response["content"] = {body: {"schema": {"type": "string"}}}
    if 300 <= status < 400 and operation.headers:
        response["headers"] = {
            name: {"description": description, "schema": {"type": "string"}}
            for name, description in operation.headers.items()
        }
    return response


def _status_description(status: int) -> str:
    return {
        200: "Success.",
        204: "Success, with no body.",
        302: "A redirect to the Location header.",
        503: "Unavailable; the body says which part failed.",
    }.get(status, f"Status {status}.")
