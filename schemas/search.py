"""Query parameters of ``GET /api/v1/search``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.fields import Architecture, ProviderName
from schemas.requests import Body

MAX_LIMIT = 100
# Keeps page * limit, the SQL OFFSET, far inside a 64-bit integer.
MAX_PAGE = 1_000_000


class SearchQuery(Body):
    """Search parameters as Vagrant Cloud defines them, with ``architecture`` added.

    The gateway rejects any other query parameter but ``access_token``.
    """

    q: str | None = Field(default=None, max_length=256)
    provider: ProviderName | None = None
    architecture: Architecture | None = None
    sort: Literal["downloads", "created", "updated"] = "downloads"
    order: Literal["desc", "asc"] = "desc"
    limit: int = Field(default=10, ge=1, le=MAX_LIMIT)
    page: int = Field(default=1, ge=1, le=MAX_PAGE)
