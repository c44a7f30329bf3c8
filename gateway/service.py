"""The public HTTP gateway: it authenticates, calls RPC and maps results to HTTP.

It holds no state and no business logic; each route group is a mixin under
``gateway.routes``.
"""

from __future__ import annotations

from .routes.accounts import AccountRoutes
from .routes.boxes import BoxRoutes
from .routes.downloads import DownloadRoutes
from .routes.health import HealthRoutes
from .routes.jobs import JobRoutes


class GatewayService(AccountRoutes, BoxRoutes, DownloadRoutes, HealthRoutes, JobRoutes):
    name = "gateway"
