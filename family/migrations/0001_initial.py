"""PoolInvite moves here from plans: its table (plans_poolinvite) stays as it is; plans 0010 lets
go of it."""
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from esimdash.model_moves import content_types_move



class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('plans', '0009_names_without_control_characters'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='PoolInvite',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('email', models.EmailField(blank=True, max_length=254)),
                        ('role', models.CharField(choices=[('owner', 'Owner'), ('manager', 'Manager'), ('member', 'Member'), ('supervised', 'Supervised member')], default='member', max_length=16)),
                        ('token_hash', models.CharField(editable=False, max_length=64, unique=True)),
                        ('state', models.CharField(choices=[('pending', 'Pending'), ('accepted', 'Accepted'), ('declined', 'Declined'), ('revoked', 'Revoked')], default='pending', max_length=8)),
                        ('expires_at', models.DateTimeField()),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('answered_at', models.DateTimeField(blank=True, null=True)),
                        ('invited_by', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('pool', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='invites', to='plans.pool')),
                        ('user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='pool_invites', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'plans_poolinvite',
                        'ordering': ['-created_at', '-id'],
                    },
                ),
            ],
            database_operations=[],
        ),
        content_types_move("plans", "family", ["poolinvite"]),
    ]
