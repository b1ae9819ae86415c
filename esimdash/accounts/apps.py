from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "esimdash.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from esimdash.accounts.middleware import idle_clock_start

        user_logged_in.connect(idle_clock_start, dispatch_uid="esimdash-idle-clock-start")
