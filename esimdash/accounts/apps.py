from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "esimdash.accounts"
    label = "accounts"
    verbose_name = "Accounts"
