from django.db import migrations, models
from django.db.models.functions import Now


def confirm_the_addresses_in_use(apps, schema_editor):
    """Addresses from before confirmation existed count as confirmed: they have been receiving the
    account's alerts and resets, and asking every user again would cut those off meanwhile."""
    User = apps.get_model("accounts", "User")
    User.objects.exclude(email="").update(email_confirmed_at=Now())


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_user_quiet_hours_end_user_quiet_hours_start"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="email_confirmed_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="e-mail confirmed at"),
        ),
        migrations.RunPython(confirm_the_addresses_in_use, migrations.RunPython.noop),
    ]
