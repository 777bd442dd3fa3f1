"""The checkpoint signing key: from the environment or a key file, never from the database."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from django.conf import settings

from audit import note
from core.errors import ApplicationError


def configured() -> bool:
    """Whether a signing key is configured (in the environment or as a key file)."""
    return bool(settings.AUDIT_SIGNING_KEY) or Path(settings.AUDIT_SIGNING_KEY_FILE).exists()


def signer() -> str:
    """The signer key string; a clear error when none is configured."""
    if settings.AUDIT_SIGNING_KEY:
        return settings.AUDIT_SIGNING_KEY.strip()
    path = Path(settings.AUDIT_SIGNING_KEY_FILE)
    if path.exists():
        return path.read_text().strip()
    raise ApplicationError(
        "No checkpoint signing key: set OVERSIGHT_SIGNING_KEY, or create a key file with "
        f"`manage.py audit_keygen` (it will be written to {path}).",
        code="not_configured",
        status=503,
    )


def ensure_key_file() -> tuple[Path, bool]:
    """Create the key file (mode 0600) if there is no key yet; returns (path, created)."""
    path = Path(settings.AUDIT_SIGNING_KEY_FILE)
    if settings.AUDIT_SIGNING_KEY or path.exists():
        return path, False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(note.generate_signer(settings.AUDIT_ORIGIN) + "\n")
    return path, True


def vkey() -> str:
    return note.vkey_for(signer())


def origin_mismatch(key_name: str) -> str:
    """Why a key named `key_name` may not sign this log's checkpoints, or "" if it may.

    A checkpoint's first line is the log's origin (settings.AUDIT_ORIGIN) and the key that
    signs it is named after it: verifiers given the origin look for a signature by that name.
    """
    if key_name == settings.AUDIT_ORIGIN:
        return ""
    return (
        f"the signing key is named {key_name!r} but this log's origin (AUDIT_ORIGIN) is "
        f"{settings.AUDIT_ORIGIN!r}; no checkpoint is signed until they agree (create a key "
        "named after the origin, or set AUDIT_ORIGIN to the key's name)"
    )


def public_key() -> dict[str, str]:
    """What outsiders need to check checkpoints: `origin` is the origin checkpoints carry,
    `key_name` the key's own name (the same, or `warning` says they differ and nothing is
    signed), `public_key` the raw 32-byte Ed25519 key in base64, `vkey` the C2SP
    verifier-key string."""
    verifier = vkey()
    name, key_id, raw = note.parse_vkey(verifier)
    body = {
        "origin": settings.AUDIT_ORIGIN,
        "key_name": name,
        "key_id": key_id.hex(),
        "public_key": base64.b64encode(raw).decode(),
        "vkey": verifier,
    }
    if warning := origin_mismatch(name):
        body["warning"] = warning
    return body
