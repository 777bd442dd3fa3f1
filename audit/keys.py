"""The checkpoint signing key: from the environment or a key file, never from the database."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from django.conf import settings

from audit import note
from core.errors import ApplicationError


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


def public_key() -> dict[str, str]:
    """What outsiders need to check checkpoints: `public_key` is the raw 32-byte Ed25519 key
    in base64, `vkey` the C2SP verifier-key string."""
    name, key_id, raw = note.parse_vkey(vkey())
    return {
        "origin": name,
        "key_id": key_id.hex(),
        "public_key": base64.b64encode(raw).decode(),
        "vkey": vkey(),
    }
