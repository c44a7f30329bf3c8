"""RPC methods that gather what the gateway's web pages show."""

from __future__ import annotations

from services.toolkit.rpc import rpc

from .. import pages
from ..access import Actor
from .base import DataBase


class PagesRpc(DataBase):
    @rpc
    def describe_box(self, actor: Actor, username: str, name: str) -> dict:
        """Return ``{"box", "versions", "can_publish", "can_manage", "can_see_jobs"}``.

        For a viewer who may see the box's jobs, each provider also has
        ``inspection`` and ``inspection_job`` (``{"id", "state"}`` or None).
        """
        with self.db.read() as session:
            return pages.describe_box(session, self.urls, actor, username, name)

    @rpc
    def describe_job_page(self, actor: Actor, job_id: int) -> dict:
        """Return ``{"job", "actions"}`` for the job page.

        ``job`` is the job with its payload and history, as ``get_job``
        returns it. ``actions`` lists the triggers (``cancel``, ``retry``)
        that ``actor`` may apply in the job's current state.
        """
        with self.db.read() as session:
            return pages.describe_job(session, actor, job_id)
