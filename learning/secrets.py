"""Webhook secrets: recoverable (each batch is signed with an HMAC of the secret), so they are
encrypted, not hashed. The key is derived from OVERSIGHT_WEBHOOK_KEY, or the Django secret
key: a copy of the database alone does not reveal them. Signing is HMAC-SHA256 of
"<timestamp>.<body>"."""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

SIGNATURE_HEADER = "X-Oversight-Signature"
TIMESTAMP_HEADER = "X-Oversight-Timestamp"
DELIVERY_HEADER = "X-Oversight-Delivery"


def _fernet() -> Fernet:
    material = (settings.LEARNING_WEBHOOK_KEY or settings.SECRET_KEY).encode()
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"oversight webhook secrets"
    ).derive(material)
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise RuntimeError(
            "the webhook secret cannot be decrypted (OVERSIGHT_WEBHOOK_KEY or the secret key "
            "changed): set the webhook again"
        ) from None


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The value of X-Oversight-Signature: "sha256=" + hex HMAC-SHA256 of "timestamp.body"."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver does (constant-time compare); receivers should also refuse old
    timestamps (replays) and skip delivery ids they have seen."""
    return hmac.compare_digest(signature(secret, timestamp, body), header or "")
