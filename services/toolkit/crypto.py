"""Random tokens, their stored hashes and signed, expiring URL tokens.

API and upload tokens are 256-bit random values, so a plain sha256 is a
safe stored form: there is nothing to guess that a slow hash would protect.
Passwords, which people choose, are hashed with argon2 by the data service.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

TOKEN_BYTES = 32

# Purpose of the signed tokens in binstore download URLs.
DOWNLOAD_PURPOSE = "download"
# Purpose of the signature on an upload's error message that binstore sends
# back to the gateway's upload page, so the page shows only messages binstore wrote.
UPLOAD_ERROR_PURPOSE = "upload-error"


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


def verify(key: bytes, purpose: str, subject: str, token: str, now: float | None = None) -> bool:
    """Return whether ``token`` was signed for ``purpose`` and ``subject`` and is unexpired."""
    expires_text, _, signature = token.partition(".")
    if not expires_text.isdigit() or not signature:
        return False
    expires = int(expires_text)
    if expires < (now if now is not None else time.time()):
        return False
    message = f"{purpose}\n{subject}\n{expires}".encode()
    expected = _b64(hmac.new(key, message, hashlib.sha256).digest())
    return hmac.compare_digest(expected, signature)
