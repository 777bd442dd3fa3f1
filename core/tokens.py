"""Secrets handed to people or programs: generated here, stored only as digests."""

from __future__ import annotations

import hashlib
import secrets


def new_token(kind: str = "ovs") -> str:
    return f"{kind}_{secrets.token_urlsafe(32)}"


def digest(token: str) -> str:
    # Tokens carry 256 random bits, so a plain SHA-256 is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()
