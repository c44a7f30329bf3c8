"""Signed tokens, stored token hashes and sealed secrets."""

import pytest

from services.toolkit.crypto import SealBroken, hash_token, new_token, seal, sign, unseal, verify

KEY = b"k" * 32


def test_signed_token_verifies_for_its_subject() -> None:
    token = sign(KEY, "download", "abc", ttl=60)

    assert verify(KEY, "download", "abc", token)


def test_signed_token_rejects_other_subject_and_purpose() -> None:
    token = sign(KEY, "download", "abc", ttl=60)

    assert not verify(KEY, "download", "abd", token)
    assert not verify(KEY, "upload", "abc", token)
    assert not verify(b"x" * 32, "download", "abc", token)


def test_signed_token_expires() -> None:
    token = sign(KEY, "download", "abc", ttl=60, now=1000)

    assert verify(KEY, "download", "abc", token, now=1059)
    assert not verify(KEY, "download", "abc", token, now=1061)


def test_malformed_token_is_rejected() -> None:
    assert not verify(KEY, "download", "abc", "")
    assert not verify(KEY, "download", "abc", "soon.sig")
    assert not verify(KEY, "download", "abc", "\u00b2.sig")
    assert not verify(KEY, "download", "abc", "9" * 5000 + ".sig")


def test_token_hash_hides_token() -> None:
    token = new_token()

    assert len(token) >= 43
    assert token not in hash_token(token)
    assert hash_token(token) == hash_token(token)


def test_sealed_secret_opens_only_with_its_key() -> None:
    sealed = seal(b"key one", "whsec_abc")

    assert "whsec_abc" not in sealed
    assert unseal(b"key one", sealed) == "whsec_abc"
    with pytest.raises(SealBroken):
        unseal(b"key two", sealed)
    assert seal(b"key one", "whsec_abc") != sealed
