from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from audit import note, sealer
from audit.services import verification_run_now
from audit.verify import UsageError, read_key


class Command(BaseCommand):
    help = "Recompute the audit chain; report OK with the count, or the first bad event."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--key",
            metavar="VKEY",
            help="check checkpoint signatures against this verifier key (or a file holding "
            "it), kept outside this server; default: the server's own signing key",
        )

    def handle(self, *args, key: str | None = None, **options) -> None:
        verification = verification_run_now(
            requested_by="command:audit_verify", vkey=_vkey(key) if key else None
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
