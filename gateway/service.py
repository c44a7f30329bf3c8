"""The public HTTP gateway: it authenticates, calls RPC and maps results to HTTP.

It keeps no state and no business logic; each route group is a mixin under
``gateway.routes``.
"""

from __future__ import annotations

from services.toolkit import config as cfg
from services.toolkit.consul import ConsulRegistration
from services.toolkit.operations import HttpServiceOperations

from .routes.account_pages import AccountPageRoutes
from .routes.accounts import AccountRoutes
from .routes.boxes import BoxRoutes
from .routes.catalog import CatalogRoutes
from .routes.downloads import DownloadRoutes
from .routes.health import HealthRoutes
from .routes.job_pages import JobPageRoutes
from .routes.jobs import JobRoutes
from .routes.organizations import OrganizationRoutes
from .routes.pages import PageRoutes
from .routes.publish_pages import PublishPageRoutes
from .routes.tokens import TokenRoutes


class GatewayService(
    HttpServiceOperations,
    AccountRoutes,
    BoxRoutes,
    DownloadRoutes,
    HealthRoutes,
    OrganizationRoutes,
    TokenRoutes,
    CatalogRoutes,
    PageRoutes,
    AccountPageRoutes,
    PublishPageRoutes,
    JobRoutes,
    JobPageRoutes,
):
    name = "gateway"

    consul_registration = ConsulRegistration(public_url_setting=cfg.PUBLIC_URL)
