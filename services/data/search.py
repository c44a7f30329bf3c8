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

NOTE: two cases still read every match. A query of one or two characters
contains no trigram to look up, and a common word combined with a provider
that few of its matches have fails the probe. On 100,000 boxes on a 2-core
machine they took 60 and 100 ms, against 5 to 20 ms for other searches.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, any_, exists, func, or_, select, true
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


def _owned_by_match(account_id: Any, pattern: str) -> ColumnElement[bool]:
    # ANY(ARRAY(subquery)) runs the subquery once and lets the planner combine
    # this condition with the trigram matches in one bitmap scan of boxes.
    owners = select(Account.id).where(func.lower(Account.username).like(pattern))
    return account_id == any_(func.array(owners.scalar_subquery()))


def _text_filter(q: str, columns: Any) -> ColumnElement[bool]:
    """Return the match of ``q`` against ``columns`` (boxes, or a subquery of them)."""
    owner, slash, name = q.partition("/")
    if slash:
        # "owner/name" narrows to boxes of matching owners with matching names.
        conditions = []
        if owner:
            conditions.append(_owned_by_match(columns.account_id, _contains(owner)))
        if name:
            conditions.append(func.lower(columns.name).like(_contains(name)))
        return and_(*conditions) if conditions else true()
    pattern = _contains(q)
    return or_(
        func.lower(columns.name).like(pattern),
        func.lower(columns.short_description).like(pattern),
        _owned_by_match(columns.account_id, pattern),
    )


def _released_filter(provider: str | None, architecture: str | None) -> ColumnElement[bool]:
    released = select(Version.id).where(
        Version.box_id == Box.id, Version.status == VersionStatus.ACTIVE
    )
    if provider is not None or architecture is not None:
        released = released.join(Provider, Provider.version_id == Version.id)
        if provider is not None:
            released = released.where(Provider.name == provider)
        if architecture is not None:
            released = released.where(Provider.architecture == architecture)
    return exists(released)


def _candidates(session: Session, actor: access.Actor, request: SearchQuery) -> Select[Any]:
    """Return the boxes the actor may find, before the text match, in no order."""
    query = select(Box.id, Box.name, Box.short_description, Box.account_id)
    query = query.add_columns(SORT_COLUMNS[request.sort].label("sort_key"))
    readable = access.readable_account_ids(session, actor)
    if readable:
        query = query.where(or_(Box.private.is_(False), Box.account_id.in_(readable)))
    else:
        query = query.where(Box.private.is_(False))
    return query.where(_released_filter(request.provider, request.architecture))


def _ordered(query: Select[Any], sort_key: Any, box_id: Any, order: str) -> Select[Any]:
    if order == "desc":
        return query.order_by(sort_key.desc(), box_id.desc())
    return query.order_by(sort_key.asc(), box_id.asc())


def _probe(
    session: Session, candidates: Select[Any], request: SearchQuery, needed: int
) -> list[int] | None:
    """Return the ids of the first ``needed`` matches, or None if the prefix has fewer."""
    assert request.q
    rows = max(PROBE_ROWS, PROBE_ROWS_PER_RESULT * needed)
    prefix = _ordered(candidates, SORT_COLUMNS[request.sort], Box.id, request.order).limit(rows)
    walked = prefix.subquery("walked")
    query = select(walked.c.id).where(_text_filter(request.q, walked.c))
    ids = list(
        session.scalars(
            _ordered(query, walked.c.sort_key, walked.c.id, request.order).limit(needed)
        )
    )
    return ids if len(ids) == needed else None


def _indexed(
    session: Session, candidates: Select[Any], request: SearchQuery, needed: int
) -> list[int]:
    """Return the ids of the first ``needed`` matches, found through the trigram indexes."""
    assert request.q
    # MATERIALIZED makes PostgreSQL find the matches first, which the trigram
    # indexes do well, instead of walking the sort index.
    matches = (
        select(Box.id)
        .where(_text_filter(request.q, Box))
        .cte("matches")
        .prefix_with("MATERIALIZED")
    )
    query = candidates.with_only_columns(Box.id).where(Box.id.in_(select(matches.c.id)))
    ordered = _ordered(query, SORT_COLUMNS[request.sort], Box.id, request.order)
    return list(session.scalars(ordered.limit(needed)))


def search_ids(session: Session, actor: access.Actor, request: SearchQuery) -> list[int]:
    """Return the ids of the boxes on the requested page, in order."""
    offset = (request.page - 1) * request.limit
    needed = offset + request.limit
    candidates = _candidates(session, actor, request)

    if not request.q:
        ordered = _ordered(
            candidates.with_only_columns(Box.id), SORT_COLUMNS[request.sort], Box.id, request.order
        )
        return list(session.scalars(ordered.limit(request.limit).offset(offset)))

    ids = _probe(session, candidates, request, needed)
    if ids is None:
        ids = _indexed(session, candidates, request, needed)
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
