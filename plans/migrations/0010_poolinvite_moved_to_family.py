"""State only: PoolInvite now lives in family, and a line's holding rule is an alerts.AlertRule.
No table changes."""
import django.db.models.deletion
from django.db import migrations, models



class Migration(migrations.Migration):

    dependencies = [
        ('alerts', '0001_initial'),
        ('family', '0001_initial'),
        ('plans', '0009_names_without_control_characters'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='line',
                    name='status_rule',
                    field=models.ForeignKey(blank=True, help_text='The rule that slowed or cut off the line, while it does.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='alerts.alertrule'),
                ),
                migrations.DeleteModel(
                    name='PoolInvite',
                ),
            ],
            database_operations=[],
        ),
    ]
