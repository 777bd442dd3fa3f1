from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from audit.services import checkpoint_sign
from oversight import demo


class Command(BaseCommand):
    help = "Load the demo (people for every role, the mortgage model, its decisions). Idempotent."

    def handle(self, *args, **options) -> None:
        result = demo.load()
        checkpoint = checkpoint_sign()  # no beat runs in the embedded mode: sign one now
        self.stdout.write(
            f"Demo: model {result['model'].name}, {result['decisions']} decisions "
            f"({result['created']} new)."
        )
        if checkpoint is not None:
            self.stdout.write(f"Signed an audit checkpoint at size {checkpoint.tree_size}.")
        if result["token"]:
            self.stdout.write(
                f"API token of the model service '{demo.SERVICE_NAME}' (shown once): "
                f"{result['token']}"
            )
        if result.get("portal"):
            self.stdout.write(
                f"\nThe person's portal, {settings.SITE_URL}/my-decision/ (demo codes):"
            )
            for row in result["portal"]:
                code = f"reference {row['reference']}  access code {row['access_code']}"
                self.stdout.write(f"  {code}  ({row['what']})")
        self.stdout.write(f"\nOpen {settings.SITE_URL}/ and log in as:")
        for username, password, roles in result["people"]:
            self.stdout.write(f"  {username:<6} password {password:<14} ({', '.join(roles)})")
