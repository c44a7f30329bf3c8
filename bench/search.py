"""Box search at two catalog sizes: does its p95 stay flat as boxes grow?

Boxes are seeded in bulk under several owners, then wrk sends a mix of the
searches vagrant users run: the default listing, a word every box matches,
a name few boxes match, an owner's boxes and a provider filter.
"""

from __future__ import annotations

import random

from tests.suite_process import RunningSuite

from .pairs import Row, _errors
from .seed import connect, seed_boxes
from .tools import LoadResult, wrk

OWNERS = 10
PATHS = 400  # distinct search URLs wrk picks from at random


def search_paths(owners: list[str], boxes: int, rng: random.Random) -> list[str]:
    paths = []
    for _ in range(PATHS):
        kind = rng.randrange(5)
        if kind == 0:
            paths.append("/api/v1/search")
        elif kind == 1:
            paths.append("/api/v1/search?q=seeded&sort=created&limit=25")
        elif kind == 2:
            # "box-<n>" matches box-<n> and the longer names it prefixes.
            paths.append(f"/api/v1/search?q=box-{rng.randrange(boxes)}")
        elif kind == 3:
            paths.append(f"/api/v1/search?q={rng.choice(owners)}&order=asc")
        else:
            paths.append("/api/v1/search?provider=libvirt&sort=updated&limit=100")
    return paths


def _seed(suite: RunningSuite, owners: list[str], start: int, stop: int) -> None:
    per_owner = (stop - start) // len(owners)
    for index, owner in enumerate(owners):
        seed_boxes(suite.database_url, owner, start + index * per_owner, per_owner)
    # Autovacuum analyzes grown tables after a while. Analyzing them now
    # measures the plans a catalog of this size gets, not those of a small one.
    connection = connect(suite.database_url)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE accounts, boxes, versions, providers")
    finally:
        connection.close()


def _measure(suite: RunningSuite, owners: list[str], boxes: int, seconds: float) -> LoadResult:
    paths = search_paths(owners, boxes, random.Random(boxes))
    return wrk(suite.api_url, paths, connections=16, seconds=seconds)


def search_pair(suite: RunningSuite, small: int, large: int, seconds: float) -> Row:
    """Search p95 with ``small`` and then ``large`` boxes stored."""
    owners = [f"seller{index}" for index in range(OWNERS)]
    for owner in owners:
        suite.create_user(owner)
    _seed(suite, owners, 0, small)
    at_small = _measure(suite, owners, small, seconds)
    _seed(suite, owners, small, large)
    at_large = _measure(suite, owners, large, seconds)

    growth = at_large.p95_ms / at_small.p95_ms
    return Row(
        what=f"search p95 at {large:,} boxes vs {small:,}",
        atlas=f"{at_large.p95_ms:.1f} ms at {large:,} ({at_large.requests_per_second:,.0f} req/s)",
        peer=f"{at_small.p95_ms:.1f} ms at {small:,} ({at_small.requests_per_second:,.0f} req/s)",
        ratio=f"{growth:.2f} × p95",
        target="≤ 1.5 ×",
        met=growth <= 1.5,
        notes=_errors(at_small) + _errors(at_large),
    )
