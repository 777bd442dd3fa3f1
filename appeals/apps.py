from django.apps import AppConfig


class AppealsConfig(AppConfig):
    name = "appeals"
    verbose_name = "Appeals: notices, the person's portal, appeals"

    def ready(self) -> None:
        # An appeal is in review from the moment a senior claims its task (in that claim's
        # transaction; reviews, below this app, calls it through its hooks).
        from appeals.services import appeal_review_started  # models are loaded only now
        from reviews import hooks

        hooks.on_claimed(appeal_review_started)
