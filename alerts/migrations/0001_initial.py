"""The alert models move here from usage: their tables (usage_*) stay as they are, so only
Django's idea of them changes; usage 0009 lets go of them."""
import django.db.models.deletion
import django.utils.timezone
import esimdash.validators
from django.conf import settings
from django.db import migrations, models

from esimdash.model_moves import content_types_move



class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('plans', '0009_names_without_control_characters'),
        ('usage', '0008_names_without_control_characters'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='AlertRule',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=100, validators=[esimdash.validators.validate_name], verbose_name='name')),
                        ('kind', models.CharField(choices=[('used_percent', 'Share of the allowance used'), ('remaining', 'Remaining data low'), ('window', 'Usage in a time window'), ('tethered', 'Hotspot usage this cycle'), ('new_country', 'Usage in a new country'), ('days_abroad', 'Days abroad in a row'), ('expiry', 'Plan or data expiring soon'), ('background_leak', "An app's background usage jumps"), ('first_cellular', 'An app uses mobile data for the first time')], max_length=20, verbose_name='kind')),
                        ('percent', models.PositiveSmallIntegerField(blank=True, null=True, verbose_name='percent')),
                        ('threshold_bytes', models.PositiveBigIntegerField(blank=True, null=True)),
                        ('window', models.CharField(blank=True, choices=[('24h', 'the last 24 hours'), ('3d', 'the last 3 days'), ('today', 'today')], max_length=8, verbose_name='window')),
                        ('days', models.PositiveSmallIntegerField(blank=True, null=True, verbose_name='days')),
                        ('hours', models.PositiveIntegerField(blank=True, null=True, verbose_name='hours')),
                        ('leak_factor', models.PositiveSmallIntegerField(default=5, verbose_name='times the usual level')),
                        ('action', models.CharField(choices=[('notify', 'Notify only'), ('throttle', 'Slow the line down'), ('suspend', "Cut off the line's data")], default='notify', max_length=8, verbose_name='action')),
                        ('notify_email', models.BooleanField(default=True, verbose_name='e-mail me')),
                        ('notify_webhook', models.BooleanField(default=False, verbose_name='call my webhooks')),
                        ('snoozed_until', models.DateTimeField(blank=True, null=True)),
                        ('last_error', models.TextField(blank=True, help_text='The last delivery that failed for good.')),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('created_by', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('line', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='rules', to='plans.line')),
                    ],
                    options={
                        'db_table': 'usage_alertrule',
                        'ordering': ['line', 'created_at', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='AlertFiring',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('period_key', models.CharField(max_length=96)),
                        ('value', models.BigIntegerField()),
                        ('detail', models.JSONField(blank=True, default=dict)),
                        ('fired_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('resolved_at', models.DateTimeField(blank=True, null=True)),
                        ('acknowledged_at', models.DateTimeField(blank=True, null=True)),
                        ('rule', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='firings', to='alerts.alertrule')),
                    ],
                    options={
                        'db_table': 'usage_alertfiring',
                        'ordering': ['-fired_at', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='Delivery',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('channel', models.CharField(choices=[('email', 'E-mail'), ('webhook', 'Webhook'), ('provisioning', 'Operator provisioning')], max_length=16)),
                        ('payload', models.JSONField(default=dict)),
                        ('state', models.CharField(choices=[('pending', 'Waiting'), ('sending', 'Sending'), ('sent', 'Sent'), ('failed', 'Failed')], default='pending', max_length=8)),
                        ('attempts', models.PositiveSmallIntegerField(default=0)),
                        ('due_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('claimed_at', models.DateTimeField(blank=True, null=True)),
                        ('sent_at', models.DateTimeField(blank=True, null=True)),
                        ('last_error', models.TextField(blank=True)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('rule', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='alerts.alertrule')),
                    ],
                    options={
                        'db_table': 'usage_delivery',
                    },
                ),
                migrations.CreateModel(
                    name='DeliveryAttempt',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('succeeded', models.BooleanField()),
                        ('error', models.TextField(blank=True)),
                        ('delivery', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='attempt_log', to='alerts.delivery')),
                    ],
                    options={
                        'db_table': 'usage_deliveryattempt',
                    },
                ),
                migrations.CreateModel(
                    name='Notification',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('title', models.CharField(max_length=200)),
                        ('body', models.TextField()),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('visible_at', models.DateTimeField(default=django.utils.timezone.now, help_text="After the user's quiet hours.")),
                        ('read_at', models.DateTimeField(blank=True, null=True)),
                        ('firing', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='alerts.alertfiring')),
                        ('line', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='plans.line')),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='notifications', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'usage_notification',
                        'ordering': ['-visible_at', '-id'],
                    },
                ),
                migrations.AddField(
                    model_name='delivery',
                    name='notification',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='alerts.notification'),
                ),
                migrations.CreateModel(
                    name='WebhookEndpoint',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('url', models.URLField(max_length=500)),
                        ('secret', models.CharField(editable=False, max_length=64)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='webhooks', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'usage_webhookendpoint',
                    },
                ),
                migrations.AddField(
                    model_name='delivery',
                    name='webhook',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='alerts.webhookendpoint'),
                ),
                migrations.AddConstraint(
                    model_name='alertfiring',
                    constraint=models.UniqueConstraint(condition=models.Q(('resolved_at__isnull', True)), fields=('rule', 'period_key'), name='alert_firing_open_once_per_period'),
                ),
                migrations.AddIndex(
                    model_name='notification',
                    index=models.Index(fields=['user', 'read_at', 'visible_at'], name='usage_notif_user_id_09e002_idx'),
                ),
                migrations.AddIndex(
                    model_name='delivery',
                    index=models.Index(fields=['state', 'due_at'], name='usage_deliv_state_681ee9_idx'),
                ),
            ],
            database_operations=[],
        ),
        content_types_move(
            "usage",
            "alerts",
            ["alertrule", "alertfiring", "notification", "webhookendpoint", "delivery", "deliveryattempt"],
        ),
    ]
