"""Signed tokens and stored token hashes."""

from services.toolkit.crypto import hash_token, new_token, sign, verify

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


def test_token_hash_hides_token() -> None:
    token = new_token()

    assert len(token) >= 43
    assert token not in hash_token(token)
    assert hash_token(token) == hash_token(token)
