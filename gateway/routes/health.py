"""Health of the suite."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from services.toolkit.web import api, error_response

from .base import GatewayBase


class HealthRoutes(GatewayBase):
    @api("GET", "/health")
    def health(self, request: Request) -> Any:
        try:
            data = self.data.ping()
        except Exception as exc:  # any failure means "not healthy", with its reason
            return error_response(503, f"data service: {exc}")
        return {"status": "passing", "services": {"data": data}}
