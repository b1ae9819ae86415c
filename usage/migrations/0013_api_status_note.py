from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("usage", "0012_provisioning")]

    operations = [
        migrations.AddField(
            model_name="linestatuschange",
            name="note",
            field=models.CharField(blank=True, help_text="The operator's reason, as it gave it.", max_length=200),
        ),
    ]
