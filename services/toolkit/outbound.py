"""HTTP requests to URLs that users choose, kept away from Atlas's own network.

Webhook deliveries and box imports fetch URLs that users give, so a careless
or hostile URL could make Atlas reach what only it can reach: a cloud
metadata service at 169.254.169.254, a database on loopback, an admin page
on a private network. ``guarded_session`` resolves each host itself,
rejects the request unless every address is publicly routable or allowed
by ``ATLAS.outbound_allowlist``, and connects to the address it checked, so
a DNS answer that changes between the check and the connection (DNS
rebinding) gains nothing. Redirects go through the same check, because
each new connection does.

The allowlist contains networks in CIDR notation (``10.0.0.0/8``, a bare
address for one host) and host names. Cloud metadata addresses stay
rejected unless the allowlist names that single address.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import eventlet
import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util import connection as urllib3_connection

from services.toolkit import config as cfg

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Instance metadata services of AWS (also Azure, GCP and OpenStack at the
# IPv4 address) and Alibaba Cloud. They hand out credentials to anyone on
# the machine, so a broad allowlist entry does not open them.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(text) for text in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
# NAT64 (RFC 6052) maps an IPv4 address into this prefix; the IPv4 address decides.
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")


class DisallowedAddress(ValueError):
    """The URL's host is, or resolves to, an address that outbound requests may not reach."""


class InvalidTarget(ValueError):
    """The URL is not an absolute http or https URL with a host."""


@dataclass(frozen=True)
class Allowlist:
    """Networks and host names that outbound requests may reach although they are not public."""

    networks: tuple[Network, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: str | Iterable[str] | None) -> Allowlist:
        """Parse a list, or a string separated by commas or spaces, of CIDRs and host names."""
        if entries is None:
            return cls()
        if isinstance(entries, str):
            entries = entries.replace(",", " ").split()
        networks: list[Network] = []
        hosts: set[str] = set()
        for entry in entries:
            text = str(entry).strip()
            if not text:
                continue
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                if "/" in text or ":" in text:
                    raise ValueError(
                        f"outbound_allowlist entry {text!r} is neither a network nor a host "
                        "name; write a network as 10.0.0.0/8 and a host as name.example"
                    ) from None
                hosts.add(_normal_host(text))
        return cls(tuple(networks), frozenset(hosts))

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Allowlist:
        return cls.parse(cfg.setting(config, cfg.OUTBOUND_ALLOWLIST))

    def permits(self, host: str, address: Address) -> bool:
        if address in METADATA_ADDRESSES:
            return any(
                network.num_addresses == 1 and address in network for network in self.networks
            )
        return _normal_host(host) in self.hosts or any(
            address in network for network in self.networks
        )


def _normal_host(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


def _public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address in NAT64_PREFIX:
        return _public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    # is_global is False for private, loopback, link-local, shared (100.64/10),
    # reserved, documentation and unspecified ranges; multicast is checked
    # apart because Python counts some multicast ranges as global.
    return address.is_global and not address.is_multicast and address not in METADATA_ADDRESSES


def check_address(host: str, address: Address, allowlist: Allowlist) -> None:
    """Raise ``DisallowedAddress`` unless ``address`` of ``host`` is public or allowlisted."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if allowlist.permits(host, address) or _public(address):
        return
    # The address of a host name stays out of the message, which would
    # otherwise let users look up names in Atlas's internal DNS.
    subject = (
        f"address {address} is"
        if _normal_host(host) == str(address)
        else (f"host {host} resolves to an address that is")
    )
    raise DisallowedAddress(
        f"{subject} private, loopback, link-local, multicast, unspecified or a cloud "
        "metadata address; an operator may allow it with ATLAS_OUTBOUND_ALLOWLIST"
    )


def resolve(host: str, port: int, allowlist: Allowlist) -> list[str]:
    """Return every address of ``host``, after checking that each of them may be reached.

    One disallowed address rejects the host, so that a DNS answer mixing a
    public and a private address cannot steer the connection.
    """
    bare = host.strip("[]")
    try:
        infos = socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise requests.ConnectionError(f"host {bare} cannot be resolved: {exc}") from exc
    except UnicodeError:
        # The IDNA codec rejects empty labels and labels over 63 characters.
        raise InvalidTarget(f"host {bare!r} is not a valid host name") from None
    addresses: list[str] = []
    for info in infos:
        # An IPv6 link-local address may carry a zone, as in fe80::1%eth0.
        text = str(info[4][0]).split("%", 1)[0]
        check_address(bare, ipaddress.ip_address(text), allowlist)
        if text not in addresses:
            addresses.append(text)
    return addresses


def check_url(url: str, allowlist: Allowlist) -> None:
    """Raise ``InvalidTarget`` or ``DisallowedAddress`` unless ``url`` may be requested now.

    A host that cannot be resolved raises ``requests.ConnectionError``. The
    check is valid only at this moment, so requests through
    ``guarded_session`` check again when they connect.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidTarget(f"URL {url!r} is invalid; use an absolute http or https URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise InvalidTarget(f"URL {url!r} has an invalid port") from exc
    resolve(parts.hostname, port, allowlist)


def url_origin(url: str) -> str:
    """Return the scheme, host and port of ``url``, which messages and logs may show.

    The path, query and user information may carry credentials (a signed
    URL's signature, a chat service's webhook token), so only this part of
    a URL that users give appears in messages.
    """
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


class _GuardedConnection:
    """Mixin for urllib3 connections that connect only to checked addresses."""

    allowlist = Allowlist()

    def _new_conn(self) -> socket.socket:
        host: str = self._dns_host  # type: ignore[attr-defined]
        port: int = self.port  # type: ignore[attr-defined]
        last_error: OSError | None = None
        for address in resolve(host, port, self.allowlist):
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


class GuardedAdapter(HTTPAdapter):
    """A transport adapter whose connection pools check every address they connect to."""

    def __init__(self, allowlist: Allowlist) -> None:
        settings = {"allowlist": allowlist}
        http = type("GuardedHTTPConnection", (_GuardedConnection, HTTPConnection), settings)
        https = type("GuardedHTTPSConnection", (_GuardedConnection, HTTPSConnection), settings)
        self._pool_classes = {
            "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
        }
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes


def guarded_session(allowlist: Allowlist) -> requests.Session:
    """Return a session whose requests reach only public or allowlisted addresses.

    Proxy settings from the environment are ignored, since a proxy would
    connect on Atlas's behalf to an address this module never checked.
    """
    session = requests.Session()
    session.trust_env = False
    adapter = GuardedAdapter(allowlist)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class TimeLimitExceeded(Exception):
    """A block under ``time_limit`` ran longer than its limit."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ``TimeLimitExceeded`` if the block takes longer than ``seconds`` in all.

    requests' timeout bounds each wait for bytes, so a server that sends a
    byte now and then keeps a request open without end. The limit here
    interrupts whatever the block is waiting for once its time is up.
    """
    timer = eventlet.Timeout(seconds)
    try:
        yield
    except eventlet.Timeout as exc:
        if exc is not timer:
            raise
        raise TimeLimitExceeded(f"timed out after {seconds:g} seconds") from None
    finally:
        timer.cancel()
