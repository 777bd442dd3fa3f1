from __future__ import annotations

from django.core.management.base import BaseCommand

from audit import keys


class Command(BaseCommand):
    help = "Create the checkpoint signing key file if there is no key yet; print the public key."

    def handle(self, *args, **options) -> None:
        path, created = keys.ensure_key_file()
        if created:
            self.stdout.write(f"Created the checkpoint signing key in {path} (keep it safe).")
        self.stdout.write(f"Public key (vkey): {keys.vkey()}")
