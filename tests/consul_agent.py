"""A stand-in for the Consul agent's HTTP API, for tests on machines without Consul.

It implements the endpoints Atlas and py-consul use, as Consul's HTTP API
documentation describes them (api-docs/agent/service, agent/check, health,
catalog):

- ``PUT /v1/agent/service/register`` with one ``Check`` or a list of ``Checks``
  (TTL or HTTP). Field names match case-insensitively and in snake_case, as
  in the agent's JSON decoding. Checks start ``critical`` unless ``Status``
  says otherwise. A single check gets the id ``service:<service id>``,
  several get ``service:<service id>:<n>``.
- ``PUT /v1/agent/service/deregister/:service_id``
- ``PUT /v1/agent/check/pass|warn|fail/:check_id?note=`` and
  ``PUT /v1/agent/check/update/:check_id`` for TTL checks.
- ``GET /v1/agent/services``, ``/v1/agent/service/:id``, ``/v1/agent/checks``
- ``GET /v1/health/service/:service`` with ``passing`` (every check of the
  instance and of its node passes), ``tag`` and ``dc``, and
  ``/v1/health/checks/:service``.
- ``GET /v1/catalog/services``, ``/v1/catalog/service/:service``,
  ``/v1/status/leader``.

Behaviour that Atlas relies on is the agent's: a TTL check that is not passed
within its TTL turns critical with the output "TTL expired"; the agent
itself requests each HTTP check's URL every ``Interval`` (2xx passing, 429
warning, anything else or no answer critical); a service whose check has been
critical for longer than ``DeregisterCriticalServiceAfter`` is removed by a
reaper. Consul raises that timeout to at least one minute and reaps every 30
seconds; ``--min-deregister`` and ``--reap-interval`` lower both so tests
need not wait that long. With ``--token`` every request must carry that ACL
token (``X-Consul-Token`` header or ``token`` parameter) or gets 403, and a
``dc`` other than ``--datacenter`` gets 500 "No path to datacenter".

Blocking queries (``index``/``wait``) answer at once, and ACL rules, KV,
sessions and Connect are left out: Atlas uses none of them.

Run it with ``python -m tests.consul_agent --port PORT``.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

NODE = "atlas-test-node"
NODE_ADDRESS = "127.0.0.1"
TICK = 0.1  # seconds between passes over TTL deadlines and due HTTP checks
MAX_OUTPUT = 4096  # bytes of an HTTP check's response body kept as output

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


class BadRequest(Exception):
    pass


def parse_duration(value: Any) -> float:
    """Parse a Go duration such as ``"10s"`` or ``"1m30s"`` into seconds."""
    if isinstance(value, int | float):
        return float(value) / 1e9  # a bare number is nanoseconds, as in Go
    text = str(value).strip()
    if text in ("", "0"):
        return 0.0
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise BadRequest(f'time: invalid duration "{text}"')
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)


def normalized(fields: dict[str, Any]) -> dict[str, Any]:
    """Key ``fields`` by lowercase names without underscores, as the agent matches them."""
    return {key.lower().replace("_", ""): value for key, value in fields.items()}


class Agent:
    """The agent's state: one node, its services and their checks."""

    def __init__(self, datacenter: str, min_deregister: float, reap_interval: float) -> None:
        self.datacenter = datacenter
        self.min_deregister = min_deregister
        self.reap_interval = reap_interval
        self.lock = threading.RLock()
        self.services: dict[str, dict[str, Any]] = {}
        self.checks: dict[str, dict[str, Any]] = {}
        self.index = 1
        self.next_reap = time.monotonic() + reap_interval

    def bump(self) -> None:
        self.index += 1

    # Registration

    def register_service(self, body: dict[str, Any], replace_checks: bool) -> None:
        fields = normalized(body)
        name = fields.get("name")
        if not name:
            raise BadRequest("Missing service name")
        service_id = fields.get("id") or name
        service = {
            "ID": service_id,
            "Service": name,
            "Tags": list(fields.get("tags") or []),
            "Address": fields.get("address") or "",
            "Port": int(fields.get("port") or 0),
            "Meta": dict(fields.get("meta") or {}),
            "EnableTagOverride": bool(fields.get("enabletagoverride", False)),
            "Weights": fields.get("weights") or {"Passing": 1, "Warning": 1},
            "Datacenter": self.datacenter,
        }
        definitions = list(fields.get("checks") or [])
        if fields.get("check"):
            definitions.insert(0, fields["check"])
        checks = [
            self._check(normalized(definition), service, position, len(definitions))
            for position, definition in enumerate(definitions, start=1)
        ]
        with self.lock:
            if replace_checks:
                for check_id in [
                    key for key, check in self.checks.items() if check["ServiceID"] == service_id
                ]:
                    del self.checks[check_id]
            self.services[service_id] = service
            for check in checks:
                self.checks[check["CheckID"]] = check
            self.bump()

    def _check(
        self, fields: dict[str, Any], service: dict[str, Any], position: int, count: int
    ) -> dict[str, Any]:
        default_id = f"service:{service['ID']}" + (f":{position}" if count > 1 else "")
        ttl = parse_duration(fields.get("ttl") or 0)
        interval = parse_duration(fields.get("interval") or 0)
        url = fields.get("http") or ""
        if url:
            kind = "http"
            if interval <= 0:
                raise BadRequest(
                    "Invalid check: Interval must be > 0 for Script, HTTP, H2PING, or TCP checks"
                )
        elif ttl > 0:
            kind = "ttl"
        else:
            raise BadRequest(
                "Invalid check: TTL must be > 0 for TTL checks; "
                "Interval must be > 0 for Script, HTTP, H2PING, or TCP checks"
            )
        status = fields.get("status") or "critical"
        if status not in ("passing", "warning", "critical"):
            raise BadRequest(f"Invalid check status: {status!r}")
        deregister_after = parse_duration(fields.get("deregistercriticalserviceafter") or 0)
        if 0 < deregister_after < self.min_deregister:
            deregister_after = self.min_deregister
        now = time.monotonic()
        return {
            "Node": NODE,
            "CheckID": fields.get("checkid") or fields.get("id") or default_id,
            "Name": fields.get("name") or f"Service '{service['Service']}' check",
            "Status": status,
            "Notes": fields.get("notes") or "",
            "Output": "",
            "ServiceID": service["ID"],
            "ServiceName": service["Service"],
            "ServiceTags": service["Tags"],
            "Type": kind,
            "Interval": fields.get("interval") or "",
            "Timeout": fields.get("timeout") or "",
            # Fields below are the stand-in's own bookkeeping; responses leave them out.
            "_http": url,
            "_interval": interval,
            "_timeout": parse_duration(fields.get("timeout") or "10s"),
            "_ttl": ttl,
            "_ttl_deadline": now + ttl if kind == "ttl" else None,
            "_next_run": now if kind == "http" else None,
            "_running": False,
            "_deregister_after": deregister_after,
            "_critical_since": now if status == "critical" else None,
        }

    def deregister_service(self, service_id: str) -> bool:
        with self.lock:
            if service_id not in self.services:
                return False
            del self.services[service_id]
            for check_id in [
                key for key, check in self.checks.items() if check["ServiceID"] == service_id
            ]:
                del self.checks[check_id]
            self.bump()
            return True

    # Check updates

    def set_status(self, check_id: str, status: str, output: str) -> None:
        with self.lock:
            check = self.checks[check_id]
            if check["Status"] != status or check["Output"] != output:
                self.bump()
            if status == "critical" and check["Status"] != "critical":
                check["_critical_since"] = time.monotonic()
            elif status != "critical":
                check["_critical_since"] = None
            check["Status"] = status
            check["Output"] = output

    def update_ttl(self, check_id: str, status: str, output: str) -> tuple[int, str]:
        with self.lock:
            check = self.checks.get(check_id)
            if check is None:
                return 404, f'Unknown check ID "{check_id}". Ensure that the check ID is passed.'
            if check["Type"] != "ttl":
                return 500, f'CheckID "{check_id}" does not have associated TTL'
            check["_ttl_deadline"] = time.monotonic() + check["_ttl"]
            self.set_status(check_id, status, output)
            return 200, ""

    # The agent's own work: TTL deadlines, HTTP checks, the reaper

    def tick(self) -> None:
        now = time.monotonic()
        due: list[dict[str, Any]] = []
        with self.lock:
            for check in self.checks.values():
                deadline = check["_ttl_deadline"]
                if deadline is not None and now > deadline and check["Status"] != "critical":
                    self.set_status(check["CheckID"], "critical", "TTL expired")
                next_run = check["_next_run"]
                if next_run is not None and now >= next_run and not check["_running"]:
                    check["_running"] = True
                    check["_next_run"] = now + check["_interval"]
                    due.append(dict(check))
            if now >= self.next_reap:
                self.next_reap = now + self.reap_interval
                self.reap(now)
        for check in due:
            threading.Thread(target=self.run_http_check, args=(check,), daemon=True).start()

    def run_http_check(self, check: dict[str, Any]) -> None:
        url = check["_http"]
        try:
            with urllib.request.urlopen(url, timeout=check["_timeout"]) as response:
                code, reason, body = response.status, response.reason, response.read(MAX_OUTPUT)
        except urllib.error.HTTPError as error:
            code, reason, body = error.code, error.reason, error.read(MAX_OUTPUT)
        except (OSError, ValueError) as error:
            self._finish_http_check(check["CheckID"], "critical", f'Get "{url}": {error}')
            return
        if 200 <= code < 300:
            status = "passing"
        elif code == 429:
            status = "warning"
        else:
            status = "critical"
        output = f"HTTP GET {url}: {code} {reason} Output: {body.decode(errors='replace')}"
        self._finish_http_check(check["CheckID"], status, output)

    def _finish_http_check(self, check_id: str, status: str, output: str) -> None:
        with self.lock:
            if check_id in self.checks:
                self.checks[check_id]["_running"] = False
                self.set_status(check_id, status, output)

    def reap(self, now: float) -> None:
        for check in list(self.checks.values()):
            since = check["_critical_since"]
            timeout = check["_deregister_after"]
            if timeout > 0 and since is not None and now - since > timeout:
                self.deregister_service(check["ServiceID"])

    # Views

    def public_check(self, check: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in check.items() if not key.startswith("_")}

    def node_check(self) -> dict[str, Any]:
        return {
            "Node": NODE,
            "CheckID": "serfHealth",
            "Name": "Serf Health Status",
            "Status": "passing",
            "Notes": "",
            "Output": "Agent alive and reachable",
            "ServiceID": "",
            "ServiceName": "",
            "ServiceTags": [],
            "Type": "",
        }

    def node(self) -> dict[str, Any]:
        return {
            "ID": "00000000-0000-0000-0000-000000000001",
            "Node": NODE,
            "Address": NODE_ADDRESS,
            "Datacenter": self.datacenter,
            "TaggedAddresses": {"lan": NODE_ADDRESS, "wan": NODE_ADDRESS},
            "Meta": {},
        }

    def service_checks(self, service_id: str) -> list[dict[str, Any]]:
        return [
            self.public_check(check)
            for check in self.checks.values()
            if check["ServiceID"] == service_id
        ]

    def health(self, name: str, passing: bool, tag: str | None) -> list[dict[str, Any]]:
        entries = []
        with self.lock:
            for service in self.services.values():
                if service["Service"] != name or (tag and tag not in service["Tags"]):
                    continue
                checks = [self.node_check(), *self.service_checks(service["ID"])]
                if passing and any(check["Status"] != "passing" for check in checks):
                    continue
                entries.append({"Node": self.node(), "Service": dict(service), "Checks": checks})
        return entries


class Handler(BaseHTTPRequestHandler):
    agent: Agent
    token: str | None

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass

    def do_GET(self) -> None:
        self.handle_api("GET")

    def do_PUT(self) -> None:
        self.handle_api("PUT")

    def handle_api(self, method: str) -> None:
        url = urlsplit(self.path)
        params = {key: values[-1] for key, values in parse_qs(url.query, True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.token and self.token not in (
            self.headers.get("X-Consul-Token"),
            params.get("token"),
        ):
            self.reply(403, "ACL not found")
            return
        if params.get("dc") and params["dc"] != self.agent.datacenter:
            self.reply(500, "No path to datacenter")
            return
        try:
            status, body = self.route(method, unquote(url.path), params, raw)
        except BadRequest as exc:
            status, body = 400, str(exc)
        self.reply(status, body)

    def route(self, method: str, path: str, params: dict[str, str], raw: bytes) -> tuple[int, Any]:
        agent = self.agent
        if method == "PUT" and path == "/v1/agent/service/register":
            try:
                body = json.loads(raw or b"{}")
            except ValueError as exc:
                raise BadRequest(f"Request decode failed: {exc}") from exc
            replace = params.get("replace-existing-checks", "false") not in ("false", "0")
            agent.register_service(body, replace)
            return 200, ""
        if method == "PUT" and path.startswith("/v1/agent/service/deregister/"):
            service_id = path.rsplit("/", 1)[1]
            if agent.deregister_service(service_id):
                return 200, ""
            return 404, f'Unknown service ID "{service_id}". Ensure that the service ID is passed.'
        for verb, status in (("pass", "passing"), ("warn", "warning"), ("fail", "critical")):
            prefix = f"/v1/agent/check/{verb}/"
            if method == "PUT" and path.startswith(prefix):
                return agent.update_ttl(path[len(prefix) :], status, params.get("note", ""))
        if method == "PUT" and path.startswith("/v1/agent/check/update/"):
            fields = normalized(json.loads(raw or b"{}"))
            status = fields.get("status", "")
            if status not in ("passing", "warning", "critical"):
                raise BadRequest(f"Invalid check status: {status!r}")
            check_id = path[len("/v1/agent/check/update/") :]
            return agent.update_ttl(check_id, status, fields.get("output", ""))
        if method == "GET":
            return self.read(path, params)
        return 405, f"method {method} not allowed"

    def read(self, path: str, params: dict[str, str]) -> tuple[int, Any]:
        agent = self.agent
        with agent.lock:
            if path == "/v1/agent/services":
                return 200, {key: dict(value) for key, value in agent.services.items()}
            if path.startswith("/v1/agent/service/"):
                service = agent.services.get(path.rsplit("/", 1)[1])
                return (200, dict(service)) if service else (404, "unknown service ID")
            if path == "/v1/agent/checks":
                return 200, {key: agent.public_check(c) for key, c in agent.checks.items()}
            if path.startswith("/v1/health/service/"):
                name = path.rsplit("/", 1)[1]
                passing = "passing" in params and params["passing"] not in ("false", "0")
                return 200, agent.health(name, passing, params.get("tag"))
            if path.startswith("/v1/health/checks/"):
                name = path.rsplit("/", 1)[1]
                return 200, [
                    agent.public_check(check)
                    for check in agent.checks.values()
                    if check["ServiceName"] == name
                ]
            if path == "/v1/catalog/services":
                catalog: dict[str, list[str]] = {"consul": []}
                for service in agent.services.values():
                    tags = catalog.setdefault(service["Service"], [])
                    tags.extend(tag for tag in service["Tags"] if tag not in tags)
                return 200, catalog
            if path.startswith("/v1/catalog/service/"):
                name = path.rsplit("/", 1)[1]
                return 200, [
                    {
                        "Node": NODE,
                        "Address": NODE_ADDRESS,
                        "Datacenter": agent.datacenter,
                        "ServiceID": service["ID"],
                        "ServiceName": service["Service"],
                        "ServiceAddress": service["Address"],
                        "ServicePort": service["Port"],
                        "ServiceTags": service["Tags"],
                        "ServiceMeta": service["Meta"],
                    }
                    for service in agent.services.values()
                    if service["Service"] == name
                ]
            if path == "/v1/status/leader":
                return 200, f"{NODE_ADDRESS}:8300"
        return 404, f"no handler for {path}"

    def reply(self, status: int, body: Any) -> None:
        if isinstance(body, str) and not (status == 200 and body):
            payload = body.encode()
            content_type = "text/plain; charset=utf-8"
        else:
            payload = json.dumps(body).encode()
            content_type = "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Consul-Index", str(self.agent.index))
        self.send_header("X-Consul-Knownleader", "true")
        self.send_header("X-Consul-Lastcontact", "0")
        self.end_headers()
        self.wfile.write(payload)


def serve(
    port: int,
    token: str | None = None,
    datacenter: str = "dc1",
    min_deregister: float = 60.0,
    reap_interval: float = 30.0,
) -> None:
    agent = Agent(datacenter, min_deregister, reap_interval)
    handler = type("AgentHandler", (Handler,), {"agent": agent, "token": token})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True

    def run_agent() -> None:
        while True:
            agent.tick()
            time.sleep(TICK)

    threading.Thread(target=run_agent, daemon=True).start()
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True, help="port to listen on at 127.0.0.1")
    parser.add_argument("--token", help="ACL token every request must carry")
    parser.add_argument("--datacenter", default="dc1", help="name of the agent's datacenter")
    parser.add_argument(
        "--min-deregister",
        type=float,
        default=60.0,
        help="seconds DeregisterCriticalServiceAfter is raised to at least (Consul: 60)",
    )
    parser.add_argument(
        "--reap-interval",
        type=float,
        default=30.0,
        help="seconds between removals of long-critical services (Consul: 30)",
    )
    args = parser.parse_args()
    serve(args.port, args.token, args.datacenter, args.min_deregister, args.reap_interval)


if __name__ == "__main__":
    main()
