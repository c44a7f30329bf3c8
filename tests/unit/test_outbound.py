"""The outbound guard rejects internal addresses unless they are allowlisted."""

import ipaddress

import pytest

from services.toolkit.crypto import decrypt, encrypt
from services.toolkit.outbound import DisallowedAddress, check_address, parse_allowlist


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "224.0.0.1",
    ],
)
def test_internal_address_is_refused(address: str) -> None:
    with pytest.raises(DisallowedAddress, match="ATLAS.outbound_allowlist"):
        check_address(ipaddress.ip_address(address), ())


def test_global_address_is_allowed() -> None:
    check_address(ipaddress.ip_address("93.184.216.34"), ())
    check_address(ipaddress.ip_address("2606:2800:220:1::1"), ())


def test_allowlisted_network_is_allowed() -> None:
    allowlist = parse_allowlist(["127.0.0.0/8", "10.0.0.0/8"])

    check_address(ipaddress.ip_address("127.0.0.1"), allowlist)
    check_address(ipaddress.ip_address("::ffff:10.9.8.7"), allowlist)
    with pytest.raises(DisallowedAddress):
        check_address(ipaddress.ip_address("192.168.0.1"), allowlist)


def test_invalid_allowlist_entry_is_named() -> None:
    with pytest.raises(ValueError, match="entry 'localhost' is not a network"):
        parse_allowlist(["localhost"])


def test_encrypted_secret_round_trips_and_detects_tampering() -> None:
    sealed = encrypt(b"key", "whsec_secret")

    assert "whsec_secret" not in sealed
    assert decrypt(b"key", sealed) == "whsec_secret"
    with pytest.raises(ValueError, match="another key"):
        decrypt(b"other key", sealed)
