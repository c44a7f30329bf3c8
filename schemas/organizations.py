"""Bodies of the organization and membership requests, an Atlas extension of the API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import model_validator

from schemas.fields import Name
from schemas.requests import Body, _unwrap


class OrganizationCreate(Body):
    name: Name

    @model_validator(mode="before")
    @classmethod
    def unwrap(cls, data: Any) -> Any:
        return _unwrap(data, "organization")


class MemberUpdate(Body):
    role: Literal["owner", "admin", "member"] = "member"

    @model_validator(mode="before")
    @classmethod
    def unwrap(cls, data: Any) -> Any:
        return _unwrap(data, "member")
