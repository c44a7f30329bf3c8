"""Upload digests: one pass for every checksum, resumable state kept per partial upload."""

import hashlib

import pytest

from services.binstore.digests import ChecksumMismatch, DigestCache, Digests


def test_verify_returns_sha256_and_checks_declared_md5() -> None:
    digests = Digests("md5")
    digests.update(b"abc")
    digests.update(b"def")

    sha256 = digests.verify(hashlib.md5(b"abcdef").hexdigest().upper())

    assert sha256 == hashlib.sha256(b"abcdef").hexdigest()
    assert digests.size == 6


def test_verify_without_declared_checksum_accepts_any_content() -> None:
    digests = Digests(None)
    digests.update(b"abc")

    assert digests.verify(None) == hashlib.sha256(b"abc").hexdigest()


def test_mismatch_names_declared_and_received_digests() -> None:
    digests = Digests("sha256")
    digests.update(b"abc")

    with pytest.raises(ChecksumMismatch) as caught:
        digests.verify("0" * 64)

    assert "declared sha256 " + "0" * 64 in str(caught.value)
    assert hashlib.sha256(b"abc").hexdigest() in str(caught.value)


def test_cache_returns_digests_only_for_matching_size() -> None:
    cache = DigestCache()
    digests = Digests("sha1")
    digests.update(b"abc")
    cache.put("7", digests)

    stale = cache.take("7", 4)
    cache.put("7", digests)
    fresh = cache.take("7", 3)

    assert stale is None
    assert fresh is digests
    assert cache.take("7", 3) is None


def test_cache_evicts_least_recently_stored() -> None:
    cache = DigestCache(max_entries=2)
    for key in ("a", "b", "c"):
        cache.put(key, Digests(None))

    assert cache.take("a", 0) is None
    assert cache.take("b", 0) is not None
    assert cache.take("c", 0) is not None
