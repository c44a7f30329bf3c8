"""docker-compose.yml against the Compose Specification's JSON schema.

The schema comes from the check-jsonschema package (pinned in pyproject.toml),
which ships a copy of the specification's ``compose-spec.json``.
"""

from __future__ import annotations

import copy
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from services.toolkit.runner import SERVICES

COMPOSE_FILE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
BACKING_SERVICES = {"postgres", "rabbitmq", "consul"}


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(
        (files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text()
    )
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    # No format checker: the schema's "duration" means Go durations such as
    # "10s", which JSON Schema's ISO 8601 check would reject; Compose checks
    # them itself.
    return validator_class(schema)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE_FILE.read_text()))


def test_compose_file_matches_compose_schema(
    validator: jsonschema.protocols.Validator, compose: dict[str, Any]
) -> None:
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(compose)
    ]

    assert errors == []


def test_compose_schema_rejects_an_unknown_service_key(
    validator: jsonschema.protocols.Validator, compose: dict[str, Any]
) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["gateway"]["healthcheck"]["every"] = "10s"

    assert not validator.is_valid(broken)


def test_compose_runs_every_service_with_a_healthcheck(compose: dict[str, Any]) -> None:
    services = compose["services"]

    assert set(SERVICES) | BACKING_SERVICES <= set(services)
    for name in SERVICES:
        assert services[name]["command"][-1] == name
        assert "healthcheck" in services[name], name
        assert services[name]["environment"]["ATLAS_CONSUL_URL"] == "http://consul:8500"
    for name in BACKING_SERVICES:
        assert "healthcheck" in services[name], name
