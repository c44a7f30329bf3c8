"""The Celery peer of the jobs benchmark: one no-op task, as Atlas's ``atlas.noop``.

Workers run as ``celery -A bench.celery_peer worker``. The broker and the
result backend come from the environment, so that each run gets a vhost
and a database of its own:

- ``ATLAS_BENCH_CELERY_BROKER``: AMQP URL of the vhost,
- ``ATLAS_BENCH_CELERY_BACKEND``: ``db+postgresql+psycopg2://...`` URL of
  the database that Celery's SQLAlchemy backend stores results in.

Like Atlas, the peer acknowledges a message only after the task ran
(``task_acks_late``) and stores every outcome in PostgreSQL.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

BROKER_VARIABLE = "ATLAS_BENCH_CELERY_BROKER"
BACKEND_VARIABLE = "ATLAS_BENCH_CELERY_BACKEND"

app = Celery(
    "atlas_bench",
    broker=os.environ.get(BROKER_VARIABLE, "pyamqp://guest:guest@127.0.0.1:5672//"),
    backend=os.environ.get(
        BACKEND_VARIABLE, "db+postgresql+psycopg2://postgres@127.0.0.1:5432/atlas_bench_celery"
    ),
)
app.conf.update(
    task_acks_late=True,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench.noop")
def noop(payload: dict[str, Any]) -> dict[str, Any]:
    """Do nothing and echo the payload, as Atlas's ``atlas.noop`` job does."""
    return {"echo": payload}
