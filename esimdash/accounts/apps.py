from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AccountsConfig(AppConfig):
    name = "esimdash.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from esimdash.accounts.middleware import idle_clock_start

        user_logged_in.connect(idle_clock_start, dispatch_uid="esimdash-idle-clock-start")


class StaffAdminConfig(admin_apps.AdminConfig):
    """The admin site, opening to staff with a second factor only (admin_site.py)."""

    default = False  # named in INSTALLED_APPS; AccountsConfig is this module's default
    default_site = "esimdash.accounts.admin_site.StaffAdminSite"
