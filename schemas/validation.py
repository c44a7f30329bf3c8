"""Validation of request bodies into schema models, with errors that name each field."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from services.toolkit.errors import Unprocessable

Model = TypeVar("Model", bound=BaseModel)


def validate(model: type[Model], fields: Any) -> Model:
    """Return ``fields`` parsed as ``model``; raise ``Unprocessable`` listing every bad field."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            location = ".".join(str(part) for part in error["loc"]) or "body"
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{location}: {message}")
        raise Unprocessable("; ".join(problems)) from exc
