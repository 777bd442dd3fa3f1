"""Appeal attachments: PDF, PNG or JPEG as told by their first bytes (never by their name),
at most APPEAL_ATTACHMENT_MAX_BYTES, kept under APPEAL_FILES_DIR (outside static files) by
a random name, and served only as a download to staff who may see the appeal."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from core.errors import invalid

# (first bytes, content type, file extension)
KINDS = (
    (b"%PDF-", "application/pdf", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
)
NAME_RE = re.compile(r"[^A-Za-z0-9._ -]+")


@dataclass
class Attachment:
    name: str
    content_type: str
    extension: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def detect(data: bytes) -> tuple[str, str] | None:
    """(content type, extension) from the file's first bytes, or None."""
    for magic, content_type, extension in KINDS:
        if data.startswith(magic):
            return content_type, extension
    return None


def check(name: str, data: bytes, *, field: str = "attachment") -> Attachment:
    limit = settings.APPEAL_ATTACHMENT_MAX_BYTES
    if not data:
        raise invalid({field: ["is empty"]})
    if len(data) > limit:
        raise invalid({field: [f"is {len(data):,} bytes; the limit is {limit:,} (5 MB)"]})
    kind = detect(data)
    if kind is None:
        raise invalid({field: ["must be a PDF, PNG or JPEG file (read from its content)"]})
    return Attachment(_clean_name(name, kind[1]), kind[0], kind[1], data)


def _clean_name(name: str, extension: str) -> str:
    """The name as the person called it, for staff to read; never used as a path."""
    base = NAME_RE.sub("_", os.path.basename(str(name or "").replace("\\", "/"))).strip(" .")
    return (base or f"attachment.{extension}")[:200]


def root() -> Path:
    return Path(settings.APPEAL_FILES_DIR)


def store(attachment: Attachment) -> str:
    """Write the file under a random name; returns its path relative to APPEAL_FILES_DIR."""
    folder = root()
    folder.mkdir(parents=True, exist_ok=True)
    relative = f"{secrets.token_hex(16)}.{attachment.extension}"
    fd = os.open(folder / relative, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(attachment.data)
    return relative


def path_of(relative: str) -> Path:
    """The stored file's path, refusing anything that would lead outside the folder."""
    if not re.fullmatch(r"[0-9a-f]{32}\.(pdf|png|jpg)", relative or ""):
        raise FileNotFoundError(relative)
    return root() / relative


def remove(relative: str) -> None:
    if relative:
        with contextlib.suppress(FileNotFoundError):
            path_of(relative).unlink()
