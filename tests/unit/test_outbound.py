"""The outbound guard: which addresses webhooks and imports may reach, and where they connect.

Every request here goes to a loopback server the test starts; addresses
outside loopback are only checked, never connected to.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from services.toolkit.outbound import (
    Allowlist,
    DisallowedAddress,
    InvalidTarget,
    check_address,
    check_url,
    guarded_session,
    url_origin,
)
from tests.loopback import LoopbackServer, WebhookReceiver

REJECTED = [
    "127.0.0.1",  # loopback
    "::1",
    "10.1.2.3",  # private
    "172.16.0.1",
    "192.168.1.1",
    "fd12::1",
    "169.254.10.10",  # link-local
    "fe80::1",
    "169.254.169.254",  # cloud metadata
    "fd00:ec2::254",
    "100.100.100.200",
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "ff02::1",
    "0.0.0.0",  # unspecified
    "::",
    "100.64.0.1",  # shared address space
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "64:ff9b::a01:203",  # NAT64 of 10.1.2.3
]
ACCEPTED = ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "64:ff9b::5db8:d70e"]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    yield server
    server.stop()


@pytest.mark.parametrize("address", REJECTED)
def test_non_public_address_is_rejected(address: str) -> None:
    with pytest.raises(DisallowedAddress, match="is private, loopback, link-local"):
        check_address("example.test", ipaddress.ip_address(address), Allowlist())


@pytest.mark.parametrize("address", ACCEPTED)
def test_public_address_is_accepted(address: str) -> None:
    check_address("example.test", ipaddress.ip_address(address), Allowlist())


def test_allowlist_admits_networks_and_hosts() -> None:
    allowlist = Allowlist.parse("127.0.0.1, 10.0.0.0/8 hooks.internal")

    check_address("a.test", ipaddress.ip_address("127.0.0.1"), allowlist)
    check_address("a.test", ipaddress.ip_address("::ffff:127.0.0.1"), allowlist)
    check_address("a.test", ipaddress.ip_address("10.200.0.1"), allowlist)
    check_address("Hooks.Internal.", ipaddress.ip_address("192.168.1.1"), allowlist)
    with pytest.raises(DisallowedAddress):
        check_address("a.test", ipaddress.ip_address("127.0.0.2"), allowlist)


def test_metadata_address_needs_its_own_entry() -> None:
    metadata = ipaddress.ip_address("169.254.169.254")

    with pytest.raises(DisallowedAddress):
        check_address("a.test", metadata, Allowlist.parse(["169.254.0.0/16"]))
    with pytest.raises(DisallowedAddress):
        check_address("metadata.test", metadata, Allowlist.parse(["metadata.test"]))
    check_address("a.test", metadata, Allowlist.parse(["169.254.169.254"]))


def test_invalid_allowlist_entry_is_named() -> None:
    with pytest.raises(ValueError, match="outbound_allowlist entry '10.0.0.0/33'"):
        Allowlist.parse(["10.0.0.0/33"])


def test_url_without_http_is_invalid() -> None:
    for url in ("file:///etc/passwd", "gopher://127.0.0.1/", "http:///path", "http://a:99999/"):
        with pytest.raises(InvalidTarget):
            check_url(url, Allowlist())


@pytest.mark.parametrize("host", ["a..b", ".x", "x" * 64 + ".com"])
def test_invalid_host_name_is_an_invalid_target(host: str) -> None:
    with pytest.raises(InvalidTarget, match="is not a valid host name"):
        check_url(f"http://{host}/x", Allowlist())


def test_host_with_one_private_address_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    # A DNS answer that mixes an allowed and a private address must not
    # leave the choice to the connecting code.
    answers = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 80)),
    ]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: answers)

    with pytest.raises(DisallowedAddress) as raised:
        check_url("http://mixed.test/", Allowlist.parse(["127.0.0.1"]))

    assert str(raised.value).startswith("host mixed.test resolves to an address that is private")
    assert "10.0.0.7" not in str(raised.value)


def test_session_rejects_before_connecting() -> None:
    receiver = WebhookReceiver(host="127.0.0.2")
    try:
        with (
            guarded_session(Allowlist.parse(["127.0.0.1"])) as session,
            pytest.raises(DisallowedAddress),
        ):
            session.get(receiver.url, timeout=5)
    finally:
        receiver.stop()

    assert receiver.requests == []


def test_session_connects_to_the_checked_address(
    receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first lookup's address is checked and connected to. A second
    # lookup, which DNS rebinding relies on, would return a rejected address.
    answers = iter(["127.0.0.1", "127.0.0.2"])
    lookups: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def resolve(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host != "rebind.test":
            return real_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with guarded_session(Allowlist.parse(["127.0.0.1"])) as session:
        response = session.post(f"http://rebind.test:{receiver.port}/hook", data=b"{}", timeout=5)

    assert response.status_code == 200
    assert lookups == ["rebind.test"]
    assert receiver.requests[0].headers["Host"] == f"rebind.test:{receiver.port}"


def test_session_ignores_proxy_variables(
    receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.2:9")

    with guarded_session(Allowlist.parse(["127.0.0.1"])) as session:
        response = session.get(receiver.url, timeout=5)

    assert response.status_code == 200


def test_redirect_to_disallowed_address_is_rejected() -> None:
    target = WebhookReceiver(host="127.0.0.2")

    def redirect_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("302 Found", [("Location", target.url + "/")])
        return [b""]

    redirect = LoopbackServer(redirect_app)
    try:
        with (
            guarded_session(Allowlist.parse(["127.0.0.1"])) as session,
            pytest.raises(DisallowedAddress),
        ):
            session.get(redirect.url, timeout=5)
    finally:
        redirect.stop()
        target.stop()

    assert target.requests == []


def test_origin_hides_path_and_credentials() -> None:
    assert url_origin("https://user:pw@hooks.test:8443/T0/B1/secret?x=1") == (
        "https://hooks.test:8443"
    )
