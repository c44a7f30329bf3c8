"""Random tokens, their stored hashes, signed expiring URL tokens and sealed secrets.

API and upload tokens are 256-bit random values, so a plain sha256 is a
safe stored form: there is nothing to guess that a slow hash would protect.
Passwords, which people choose, are hashed with argon2 by the data service.
Webhook secrets must be read back to sign each delivery, so they are stored
encrypted (``seal``/``unseal``) instead of hashed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .numbers import whole_number

TOKEN_BYTES = 32
# AES-GCM's standard nonce size; a random nonce per message is safe for far
# more messages than Atlas seals under one key.
NONCE_BYTES = 12

# Purpose of the signed tokens in binstore download URLs.
DOWNLOAD_PURPOSE = "download"
# Purpose of the signature on an upload's error message that binstore sends
# back to the gateway's upload page, so the page shows only messages binstore wrote.
UPLOAD_ERROR_PURPOSE = "upload-error"
# HKDF info that derives the key sealing webhook secrets from the secret key,
# so that key serves nothing else.
WEBHOOK_SECRET_PURPOSE = b"atlas webhook secret"


class SealBroken(ValueError):
    """A sealed value was altered, or sealed under another secret key."""


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sign(key: bytes, purpose: str, subject: str, ttl: float, now: float | None = None) -> str:
    """Return a token that proves, until ``ttl`` seconds from now, access to ``subject``.

    ``purpose`` separates token kinds, so a download token for one blob can be
    used neither for another blob nor for anything else.
    """
    expires = int((now if now is not None else time.time()) + ttl)
    message = f"{purpose}\n{subject}\n{expires}".encode()
    signature = hmac.new(key, message, hashlib.sha256).digest()
    return f"{expires}.{_b64(signature)}"


def upload_error_subject(page_path: str, message: str) -> str:
    """Return what binstore signs for an upload error shown on the gateway page ``page_path``.

    The page is part of it, so that one page's signed error cannot be shown on another.
    """
    return f"{page_path}\n{message}"


def verify(key: bytes, purpose: str, subject: str, token: str, now: float | None = None) -> bool:
    """Return whether ``token`` was signed for ``purpose`` and ``subject`` and is unexpired."""
    expires_text, _, signature = token.partition(".")
    expires = whole_number(expires_text)
    if expires is None or not signature:
        return False
    if expires < (now if now is not None else time.time()):
        return False
    message = f"{purpose}\n{subject}\n{expires}".encode()
    expected = _b64(hmac.new(key, message, hashlib.sha256).digest())
    return hmac.compare_digest(expected, signature)


def _sealing_key(key: bytes, purpose: bytes) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(key)
    return AESGCM(derived)


def seal(key: bytes, plaintext: str, purpose: bytes = WEBHOOK_SECRET_PURPOSE) -> str:
    """Encrypt ``plaintext`` with AES-256-GCM under a key derived from ``key`` for ``purpose``.

    Returns URL-safe base64 of the nonce followed by the ciphertext and its tag.
    """
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = _sealing_key(key, purpose).encrypt(nonce, plaintext.encode(), purpose)
    return _b64(nonce + sealed)


def unseal(key: bytes, sealed: str, purpose: bytes = WEBHOOK_SECRET_PURPOSE) -> str:
    """Return the plaintext that ``seal`` encrypted; raise ``SealBroken`` if it does not open."""
    try:
        raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
    except ValueError as exc:
        raise SealBroken("the sealed value is not base64") from exc
    nonce, ciphertext = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
    try:
        return _sealing_key(key, purpose).decrypt(nonce, ciphertext, purpose).decode()
    except InvalidTag as exc:
        raise SealBroken(
            "the sealed value was altered or sealed under another secret key; "
            "check that every service has the same ATLAS_SECRET_KEY"
        ) from exc
