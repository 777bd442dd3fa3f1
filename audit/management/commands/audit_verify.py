from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from audit import keys, note, sealer
from audit.services import verification_run_now
from audit.verification import Trusted
from audit.verify import UsageError, VerifyError, read_key, read_trusted


class Command(BaseCommand):
    help = "Recompute the audit chain; report OK with the count, or the first bad event."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--key",
            metavar="VKEY",
            help="check checkpoint signatures against this verifier key (or a file holding "
            "it), kept outside this server; default: the server's own signing key",
        )
        parser.add_argument(
            "--trusted",
            metavar="CHECKPOINT",
            action="append",
            default=[],
            help="a signed checkpoint kept outside the database (a note file, a directory of "
            "them such as the checkpoint mirror, or a .jsonl of them): the log must still "
            "extend it (RFC 6962), or the verification fails naming it; repeatable",
        )

    def handle(self, *args, key: str | None = None, trusted: list[str], **options) -> None:
        vkey = _vkey(key) if key else None
        verification = verification_run_now(
            requested_by="command:audit_verify",
            vkey=vkey,
            trusted=_trusted(trusted, vkey or keys.vkey()),
        )
        if not verification.ok:
            raise CommandError(
                f"FAILED at event #{verification.first_bad_seq} ({verification.problem}): "
                f"{verification.message}. {verification.events_checked} events before it are "
                "intact."
            )
        self.stdout.write(f"{verification.message} (last event #{verification.last_seq})")
        staged, oldest = sealer.staged_count(), sealer.oldest_staged()
        if staged:
            age = (timezone.now() - oldest).total_seconds()
            self.stdout.write(
                f"{staged} events recorded but not sealed yet (not verified); the oldest "
                f"waits {age:.1f} s."
            )


def _vkey(value: str) -> str:
    try:
        vkey = read_key(value)
        note.parse_vkey(vkey)
    except (UsageError, note.NoteError) as exc:
        raise CommandError(f"unreadable key: {exc}") from None
    return vkey


def _trusted(paths: list[str], vkey: str) -> list[Trusted]:
    """The trusted checkpoints in `paths`, each signed by the key, of this log."""
    found = []
    for path in paths:
        try:
            checkpoints = read_trusted(path, vkey)
        except (UsageError, VerifyError) as exc:
            raise CommandError(f"--trusted {path}: {exc}") from None
        for t in checkpoints:
            if t.origin != settings.AUDIT_ORIGIN:
                raise CommandError(
                    f"--trusted {t.label}: a checkpoint of the log {t.origin!r}, not of this "
                    f"one ({settings.AUDIT_ORIGIN!r})"
                )
            found.append(Trusted(t.size, t.root, t.label))
    return found
