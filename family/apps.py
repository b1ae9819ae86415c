from django.apps import AppConfig


class FamilyConfig(AppConfig):
    name = "family"
    verbose_name = "Family pools and gifts"
