from django.apps import AppConfig


class LearningConfig(AppConfig):
    name = "learning"
    verbose_name = "Learning: labels, their delivery, retraining"

    def ready(self) -> None:
        # Imported here: services need the app registry (models) to be ready.
        from learning import services
        from outbox import handlers
        from reviews import hooks

        hooks.on_settled(services.label_record)
        hooks.on_ingested(services.on_ingested)
        handlers.register("label", services.deliver_label)
        handlers.register("webhook", services.deliver_webhook)
