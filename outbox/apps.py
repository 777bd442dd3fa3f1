from django.apps import AppConfig

from outbox import email, handlers


class OutboxConfig(AppConfig):
    name = "outbox"
    verbose_name = "Outbox: messages that must not be lost"

    def ready(self) -> None:
        # The one kind of message this app delivers itself; apps above register theirs.
        handlers.register(email.KIND, email.deliver)
