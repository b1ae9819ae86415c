import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("plans", "0014_add_on_catalog")]

    operations = [
        migrations.AddField(
            model_name="line",
            name="next_plan",
            field=models.ForeignKey(
                blank=True,
                help_text="The plan the line moves to when its next cycle's allowance is made.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="plans.plan",
            ),
        ),
    ]
