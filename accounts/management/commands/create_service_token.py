from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.services import service_token_create
from core.errors import ApplicationError


class Command(BaseCommand):
    help = "Create an API token for a model service and print it (it is shown only once)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="service name: lowercase letters, digits, - or _")

    def handle(self, *args, name: str, **options) -> None:
        try:
            _, token = service_token_create(name=name, actor="command:create_service_token")
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(token)
