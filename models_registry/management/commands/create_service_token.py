"""`manage.py create_service_token NAME [--model M ...]`: a model service's API token, printed
once, and the models it may use. It lives here rather than in accounts (where tokens are
made) because granting models is the registry's: accounts stands below it in the layers."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.services import service_token_create
from core.errors import ApplicationError
from models_registry.models import MLModel
from models_registry.services import model_services_grant

ACTOR = "command:create_service_token"


class Command(BaseCommand):
    help = (
        "Create an API token for a model service and print it (it is shown only once); "
        "--model grants it a model (repeat it for several)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="service name: lowercase letters, digits, - or _")
        parser.add_argument(
            "--model",
            action="append",
            default=[],
            dest="models",
            metavar="MODEL",
            help="a registered model the service may send decisions for and read (repeatable)",
        )

    def handle(self, *args, name: str, models: list[str], **options) -> None:
        found = {m.name: m for m in MLModel.objects.filter(name__in=models)}
        missing = [m for m in models if m not in found]
        if missing:
            raise CommandError(f"No registered model named {', '.join(map(repr, missing))}.")
        try:
            with transaction.atomic():  # the token and its grants, or nothing
                service_token, token = service_token_create(name=name, actor=ACTOR)
                for model_name in dict.fromkeys(models):
                    model_services_grant(
                        model=found[model_name], service=service_token.user, actor=ACTOR
                    )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(token)
        if models:
            granted = ", ".join(dict.fromkeys(models))
            self.stderr.write(f"{service_token.user.username} may use: {granted}")
