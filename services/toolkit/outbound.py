"""HTTP requests to addresses that users choose, guarded against reaching internal hosts.

Jobs fetch boxes from URLs and post webhooks to URLs that users give, so a
careless or hostile URL could make Atlas reach its own network: the cloud
metadata service at 169.254.169.254, a database on loopback, a private
admin page. ``guarded_session`` resolves each host itself, rejects the
request unless every address is globally routable or inside
``ATLAS.outbound_allowlist``, and connects to the address it checked, so a
DNS answer that changes between check and connect (rebinding) gains nothing.
Redirects are followed through the same check.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util import connection as urllib3_connection

from services.toolkit import config as cfg

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class DisallowedAddress(ValueError):
    """The URL's host resolves to an address that outbound requests may not reach."""


def parse_allowlist(entries: Iterable[str]) -> tuple[Network, ...]:
    """Parse CIDR strings; raise ``ValueError`` naming the first invalid entry."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(str(entry), strict=False))
        except ValueError as exc:
            raise ValueError(
                f"outbound_allowlist entry {entry!r} is not a network; use CIDR such as 10.0.0.0/8"
            ) from exc
    return tuple(networks)


def check_address(address: Address, allowlist: tuple[Network, ...]) -> None:
    """Raise ``DisallowedAddress`` unless ``address`` is global or allowlisted."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in allowlist):
        return
    # is_global is False for private, loopback, link-local (cloud metadata),
    # shared (100.64/10), reserved, documentation and unspecified ranges.
    if not address.is_global or address.is_multicast:
        raise DisallowedAddress(
            f"address {address} is private, loopback, link-local or reserved; "
            "add its network to ATLAS.outbound_allowlist to allow it"
        )


def resolve(host: str, port: int, allowlist: tuple[Network, ...]) -> list[str]:
    """Return ``host``'s addresses after checking every one of them."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise requests.ConnectionError(f"cannot resolve host {host!r}: {exc}") from exc
    addresses = []
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]
        check_address(ipaddress.ip_address(text), allowlist)
        addresses.append(text)
    return addresses


class _GuardedConnectionMixin:
    allowlist: tuple[Network, ...] = ()

    def _new_conn(self) -> socket.socket:
        host: str = self._dns_host  # type: ignore[attr-defined]
        port: int = self.port  # type: ignore[attr-defined]
        addresses = resolve(host.strip("[]"), port, self.allowlist)
        last_error: OSError | None = None
        for address in addresses:
            try:
                return urllib3_connection.create_connection(
                    (address, port),
                    self.timeout,  # type: ignore[attr-defined]
                    source_address=self.source_address,  # type: ignore[attr-defined]
                    socket_options=self.socket_options,  # type: ignore[attr-defined]
                )
            except OSError as exc:
                last_error = exc
        assert last_error is not None
        raise last_error


def _adapter(allowlist: tuple[Network, ...]) -> HTTPAdapter:
    http_connection = type(
        "GuardedHTTPConnection", (_GuardedConnectionMixin, HTTPConnection), {"allowlist": allowlist}
    )
    https_connection = type(
        "GuardedHTTPSConnection",
        (_GuardedConnectionMixin, HTTPSConnection),
        {"allowlist": allowlist},
    )
    http_pool = type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_connection})
    https_pool = type(
        "GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_connection}
    )

    class GuardedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}

    return GuardedAdapter()


def guarded_session(config: dict[str, Any]) -> requests.Session:
    """Return a session whose requests reach only global or allowlisted addresses.

    Proxy variables from the environment are ignored, since a proxy would
    connect on Atlas's behalf to an address this module never saw.
    """
    allowlist = parse_allowlist(cfg.setting(config, cfg.OUTBOUND_ALLOWLIST) or [])
    session = requests.Session()
    session.trust_env = False
    adapter = _adapter(allowlist)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
