"""Health of the whole suite at ``GET /health``: 200 when every service passes, else 503.

With Consul configured the report lists every registered instance of each
service with the state of its checks. Without Consul the gateway calls the
``instance_health`` RPC method of one instance of each service.
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from services.toolkit import config as cfg
from services.toolkit.health import CRITICAL, PASSING
from services.toolkit.rpc import TimedClusterRpcProxy
from services.toolkit.web import api, json_response

from .base import GatewayBase

# Services the report always lists; with Consul, any other service registered
# with the Atlas tag is listed too.
SUITE_SERVICES = ("data", "binstore", "gateway", "jobs", "workers")


def service_status(instances: list[dict[str, Any]]) -> str:
    """Return ``passing`` while at least one of the service's instances passes."""
    return PASSING if any(item["status"] == PASSING for item in instances) else CRITICAL


class HealthRoutes(GatewayBase):
    cluster = TimedClusterRpcProxy()

    @api("GET", "/health")
    def health(self, request: Request) -> Any:
        report = self.health_report()
        return json_response(report, 200 if report["status"] == PASSING else 503)

    def health_report(self) -> dict[str, Any]:
        """Return ``{"status", "source", "services"}``, as ``/health`` and its page show it."""
        if self.catalog.enabled:
            source, services = "consul", self.services_from_consul()
        else:
            source, services = "rpc", self.services_over_rpc()
        passing = all(service["status"] == PASSING for service in services.values())
        return {
            "status": PASSING if passing else CRITICAL,
            "source": source,
            "services": services,
        }

    def services_from_consul(self) -> dict[str, Any]:
        names = sorted(set(SUITE_SERVICES) | set(self.catalog.suite_services()))
        services = {}
        for name in names:
            instances = self.catalog.instances(name)
            if not instances:
                missing = {"id": "-", "status": CRITICAL, "output": "no instance registered"}
                instances = [missing]
            services[name] = {"status": service_status(instances), "instances": instances}
        return services

    def services_over_rpc(self) -> dict[str, Any]:
        timeout = float(cfg.setting(self.config, cfg.HEALTH_TIMEOUT))
        others = [name for name in SUITE_SERVICES if name != "gateway"]
        answers: dict[str, Any] = self.cluster.call_each(others, "instance_health", timeout)
        answers["gateway"] = self.instance_health_probes.check()  # type: ignore[attr-defined]

        services = {}
        for name in SUITE_SERVICES:
            answer = answers[name]
            if isinstance(answer, Exception):
                instance = {"id": "-", "status": CRITICAL, "output": str(answer)}
            else:
                failing = [
                    f"{check}: {result['output']}"
                    for check, result in sorted(answer["checks"].items())
                    if result["status"] != PASSING
                ]
                instance = {
                    "id": answer.get("instance", "-"),
                    "status": answer["status"],
                    "output": "; ".join(failing) or "ok",
                }
            services[name] = {"status": instance["status"], "instances": [instance]}
        return services
