from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from audit.services import verification_run_now


class Command(BaseCommand):
    help = "Recompute the audit chain; report OK with the count, or the first bad event."

    def handle(self, *args, **options) -> None:
        verification = verification_run_now(requested_by="command:audit_verify")
        if not verification.ok:
            raise CommandError(
                f"FAILED at event #{verification.first_bad_seq} ({verification.problem}): "
                f"{verification.message}. {verification.events_checked} events before it are "
                "intact."
            )
        self.stdout.write(f"{verification.message} (last event #{verification.last_seq})")
