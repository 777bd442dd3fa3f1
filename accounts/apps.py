from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts: people, roles and service tokens, each change audited"

    def ready(self) -> None:
        # Imported here, not at the top: axes' signals module needs the app registry ready.
        from axes.signals import user_locked_out
        from django.contrib.auth.signals import user_login_failed

        from accounts import receivers

        user_login_failed.connect(receivers.login_failed, dispatch_uid="audit-login-failed")
        user_locked_out.connect(receivers.locked_out, dispatch_uid="audit-login-locked-out")
