"""Box search, as ``vagrant cloud search`` and ``GET /api/v1/search`` use it.

A query matches the box's name or short description, or its owner's name,
as a case-insensitive substring. Only boxes with a released version appear,
because vagrant prints the current version of every result.

Two plans keep a search fast however many boxes there are:

1. The probe reads the first ``PROBE_ROWS`` boxes in the requested order
   from the sort index and keeps those that match. A query that matches
   many boxes (a popular word) fills the page from this prefix.
2. If the prefix contains too few matches, the matches are rare, so the
   trigram GIN indexes find all of them and only those are sorted.

Without the split, PostgreSQL misjudges how many boxes a substring matches
and either walks the sort index through every box (rare matches) or sorts
every match (common ones).

NOTE: two cases still read every match, so they slow down as the catalog
grows: a query of one or two characters, which contains no trigram to look
up, and a common word combined with a provider few of its matches have,
which fails the probe. bench/search.py measures the usual searches.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select, true, union
from sqlalchemy.orm import Session, joinedload, selectinload

from schemas.search import SearchQuery
from schemas.validation import validate as parse

from . import access
from .models import Account, Box, Provider, Version, VersionStatus
from .serialize import Urls, box_dict

SORT_COLUMNS = {"downloads": Box.downloads, "created": Box.created_at, "updated": Box.updated_at}

# Boxes the probe reads in sort order, at least, before it falls back to the
# trigram indexes; it reads more for later pages. Reading 1000 boxes takes a
# few milliseconds whatever the table's size, and a query that matches 1% of
# them fills the first page of ten.
PROBE_ROWS = 1000
# The probe reads this many boxes for each result the page needs, at least.
PROBE_ROWS_PER_RESULT = 4


def _contains(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _owner_ids(session: Session, q: str) -> list[int]:
    """Return the ids of the accounts whose names contain the owner part of ``q``."""
    # Looked up before the box query, so that the planner gets the actual ids.
    # For an unknown list it guesses a size that, with few owners, makes it
    # expect most boxes to match, and then it reads the whole table.
    owner, slash, _ = q.partition("/")
    if slash and not owner:
        return []
    pattern = _contains(owner)
    return list(
        session.scalars(select(Account.id).where(func.lower(Account.username).like(pattern)))
    )


def _text_alternatives(q: str, owner_ids: list[int], columns: Any) -> list[ColumnElement[bool]]:
    """Return the conditions of which a box matching ``q`` meets at least one.

    ``columns`` are the box columns (of boxes, or of a subquery of them) and
    ``owner_ids`` the accounts whose names match, from ``_owner_ids``.
    """
    owner, slash, name = q.partition("/")
    if slash:
        # "owner/name" narrows to boxes of matching owners with matching names.
        conditions = []
        if owner:
            conditions.append(columns.account_id.in_(owner_ids))
        if name:
            conditions.append(func.lower(columns.name).like(_contains(name)))
        return [and_(*conditions) if conditions else true()]
    pattern = _contains(q)
    alternatives = [
        func.lower(columns.name).like(pattern),
        func.lower(columns.short_description).like(pattern),
    ]
    if owner_ids:
        alternatives.append(columns.account_id.in_(owner_ids))
    return alternatives


def _released_filter(
    box_id: Any, provider: str | None, architecture: str | None
) -> ColumnElement[bool]:
    """Return whether box ``box_id`` has a released version with the provider and architecture."""
    released = select(Version.id).where(
        Version.box_id == box_id, Version.status == VersionStatus.ACTIVE
    )
    released = released.join(Provider, Provider.version_id == Version.id)
    if provider is not None:
        released = released.where(Provider.name == provider)
    if architecture is not None:
        released = released.where(Provider.architecture == architecture)
    return exists(released)


def _visible(session: Session, actor: access.Actor, request: SearchQuery) -> Select[Any]:
    """Return the released boxes the actor may read, with the columns search needs."""
    query = select(Box.id, Box.name, Box.short_description, Box.account_id)
    query = query.add_columns(SORT_COLUMNS[request.sort].label("sort_key"))
    query = query.where(Box.released.is_(True))
    if request.provider is not None or request.architecture is not None:
        query = query.where(_released_filter(Box.id, request.provider, request.architecture))
    readable = access.readable_account_ids(session, actor)
    if readable:
        return query.where(or_(Box.private.is_(False), Box.account_id.in_(readable)))
    return query.where(Box.private.is_(False))


def _ordered(query: Select[Any], sort_key: Any, box_id: Any, order: str) -> Select[Any]:
    if order == "desc":
        return query.order_by(sort_key.desc(), box_id.desc())
    return query.order_by(sort_key.asc(), box_id.asc())


def _probe(
    session: Session,
    visible: Select[Any],
    request: SearchQuery,
    owner_ids: list[int],
    needed: int,
) -> list[int] | None:
    """Return the ids of the first ``needed`` matches, or None if the prefix has fewer."""
    assert request.q
    rows = max(PROBE_ROWS, PROBE_ROWS_PER_RESULT * needed)
    prefix = _ordered(visible, SORT_COLUMNS[request.sort], Box.id, request.order).limit(rows)
    walked = prefix.subquery("walked")
    query = select(walked.c.id).where(or_(*_text_alternatives(request.q, owner_ids, walked.c)))
    ordered = _ordered(query, walked.c.sort_key, walked.c.id, request.order)
    ids = list(session.scalars(ordered.limit(needed)))
    return ids if len(ids) == needed else None


def _indexed(
    session: Session,
    visible: Select[Any],
    request: SearchQuery,
    owner_ids: list[int],
    needed: int,
) -> list[int]:
    """Return the ids of the first ``needed`` matches, found through the trigram indexes."""
    assert request.q
    # Each alternative is its own query, so that PostgreSQL looks it up in its
    # own index; ORed in one query, it misjudges their count and reads every
    # box. MATERIALIZED keeps it from walking the sort index instead.
    keys = visible.with_only_columns(Box.id, SORT_COLUMNS[request.sort].label("sort_key"))
    branches = [
        keys.where(condition) for condition in _text_alternatives(request.q, owner_ids, Box)
    ]
    matches = union(*branches).cte("matches").prefix_with("MATERIALIZED")
    ordered = _ordered(select(matches.c.id), matches.c.sort_key, matches.c.id, request.order)
    return list(session.scalars(ordered.limit(needed)))


def search_ids(session: Session, actor: access.Actor, request: SearchQuery) -> list[int]:
    """Return the ids of the boxes on the requested page, in order."""
    offset = (request.page - 1) * request.limit
    needed = offset + request.limit
    visible = _visible(session, actor, request)

    if not request.q:
        ordered = _ordered(
            visible.with_only_columns(Box.id), SORT_COLUMNS[request.sort], Box.id, request.order
        )
        return list(session.scalars(ordered.limit(request.limit).offset(offset)))

    owner_ids = _owner_ids(session, request.q)
    ids = _probe(session, visible, request, owner_ids, needed)
    if ids is None:
        ids = _indexed(session, visible, request, owner_ids, needed)
    return ids[offset:]


def search_boxes(
    session: Session, urls: Urls, actor: access.Actor, parameters: dict[str, Any]
) -> dict[str, Any]:
    """Return ``{"boxes": [...]}``, the one key ruby-vagrant-cloud accepts in a search result."""
    # An empty parameter means the same as a missing one.
    request = parse(SearchQuery, {key: value for key, value in parameters.items() if value != ""})
    ids = search_ids(session, actor, request)
    loaded = session.scalars(
        select(Box)
        .where(Box.id.in_(ids))
        .options(
            joinedload(Box.account),
            selectinload(Box.versions).selectinload(Version.providers),
        )
    ).unique()
    by_id = {box.id: box for box in loaded}
    return {
        "boxes": [
            box_dict(urls, by_id[box_id], with_versions=False, with_unreleased=False)
            for box_id in ids
            if box_id in by_id
        ]
    }
