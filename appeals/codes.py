"""References and access codes: random, from an alphabet a person cannot misread.

No 0/O, 1/I/L or U/V pairs to confuse: digits 2–9 and 22 letters. A reference has 9 symbols
(30^9 ≈ 2·10^13, drawn at random and stored unique: the id says nothing about it); an access
code 12 (30^12 ≈ 5·10^17, about 59 bits, behind a lockout after a few failures). Both are shown
in groups of three or four and read back with any spacing, dashes or case."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets

from django.conf import settings

ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
REFERENCE_LENGTH = 9
CODE_LENGTH = 12


def _random(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def new_reference() -> str:
    return _random(REFERENCE_LENGTH)


def new_code() -> str:
    return _random(CODE_LENGTH)


def normalize(text: str) -> str:
    """What a person typed, as stored: separators and spaces dropped, upper case. Capped, so
    that nobody hashes a megabyte."""
    kept = "".join(ch for ch in str(text or "")[:200] if ch.isalnum())
    return kept.upper()[:64]


def grouped(value: str, size: int) -> str:
    return "-".join(value[i : i + size] for i in range(0, len(value), size))


def show_reference(reference: str) -> str:
    return grouped(reference, 3)


def show_code(code: str) -> str:
    return grouped(code, 4)


def client_key(address: str) -> str:
    """A keyed hash of the client's address (an IPv6 address by its /64, which one machine
    usually holds whole): the rate limit and the audit trail never keep the address itself."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
        text = str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else str(ip)
    except ValueError:
        text = "unknown"
    digest = hmac.new(settings.SECRET_KEY.encode(), text.encode(), hashlib.sha256)
    return digest.hexdigest()[:32]
