from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from audit.services import checkpoint_sign
from core.errors import ApplicationError


class Command(BaseCommand):
    help = "Seal new audit events into the Merkle tree and sign a checkpoint now."

    def handle(self, *args, **options) -> None:
        try:
            checkpoint = checkpoint_sign()
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        if checkpoint is None:
            self.stdout.write("The log has not grown since the last checkpoint; nothing signed.")
            return
        self.stdout.write(checkpoint.note)
