"""For migrations that move a model from one app to another without touching its table."""

from django.db import migrations


def content_types_move(old_app: str, new_app: str, models: list[str]) -> migrations.RunPython:
    """Moves the models' content types, and so their permissions and admin history, to the new app."""

    def move(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        ContentType.objects.filter(app_label=old_app, model__in=models).update(app_label=new_app)

    def back(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        ContentType.objects.filter(app_label=new_app, model__in=models).update(app_label=old_app)

    return migrations.RunPython(move, back)
