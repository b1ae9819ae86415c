from django.apps import AppConfig


class FamilyConfig(AppConfig):
    name = "family"
    verbose_name = "Family pools and gifts"

    def ready(self) -> None:
        # alerts shows notices about requests and invitations but may not import this app.
        from family.notices import notice_subjects_register

        notice_subjects_register()
