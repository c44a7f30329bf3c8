"""RPC interface of the data service, the private API every other service uses.

Arguments and results are plain JSON values. ``actor`` is ``None`` for an
anonymous caller or ``{"id": ..., "username": ...}`` as returned by
``authenticate``; the gateway passes it on for each public request. Methods
raise only the errors in ``services.toolkit.errors``.
"""

from __future__ import annotations

from services.toolkit.operations import ServiceOperations

from .rpc.accounts import AccountsRpc
from .rpc.boxes import BoxesRpc
from .rpc.catalog import CatalogRpc
from .rpc.garbage import GarbageRpc
from .rpc.jobs import JobsRpc
from .rpc.organizations import OrganizationsRpc
from .rpc.pages import PagesRpc
from .rpc.sessions import SessionsRpc
from .rpc.tokens import TokensRpc
from .rpc.uploads import UploadsRpc


class DataService(
    ServiceOperations,
    AccountsRpc,
    BoxesRpc,
    UploadsRpc,
    GarbageRpc,
    OrganizationsRpc,
    TokensRpc,
    CatalogRpc,
    SessionsRpc,
    PagesRpc,
    JobsRpc,
):
    name = "data"
