"""State only: the alert models now live in alerts (alerts 0001), their tables unchanged."""
from django.db import migrations



class Migration(migrations.Migration):

    dependencies = [
        ('alerts', '0001_initial'),
        ('plans', '0010_poolinvite_moved_to_family'),
        ('usage', '0008_names_without_control_characters'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(
                    model_name='alertfiring',
                    name='alert_firing_open_once_per_period',
                ),
                migrations.RemoveField(
                    model_name='alertrule',
                    name='created_by',
                ),
                migrations.RemoveField(
                    model_name='alertrule',
                    name='line',
                ),
                migrations.RemoveIndex(
                    model_name='delivery',
                    name='usage_deliv_state_681ee9_idx',
                ),
                migrations.RemoveField(
                    model_name='deliveryattempt',
                    name='delivery',
                ),
                migrations.RemoveIndex(
                    model_name='notification',
                    name='usage_notif_user_id_09e002_idx',
                ),
                migrations.RemoveField(
                    model_name='webhookendpoint',
                    name='user',
                ),
                migrations.RemoveField(
                    model_name='alertfiring',
                    name='rule',
                ),
                migrations.RemoveField(
                    model_name='delivery',
                    name='notification',
                ),
                migrations.RemoveField(
                    model_name='delivery',
                    name='rule',
                ),
                migrations.RemoveField(
                    model_name='delivery',
                    name='webhook',
                ),
                migrations.DeleteModel(
                    name='DeliveryAttempt',
                ),
                migrations.RemoveField(
                    model_name='notification',
                    name='firing',
                ),
                migrations.RemoveField(
                    model_name='notification',
                    name='line',
                ),
                migrations.RemoveField(
                    model_name='notification',
                    name='user',
                ),
                migrations.DeleteModel(
                    name='AlertRule',
                ),
                migrations.DeleteModel(
                    name='Delivery',
                ),
                migrations.DeleteModel(
                    name='WebhookEndpoint',
                ),
                migrations.DeleteModel(
                    name='AlertFiring',
                ),
                migrations.DeleteModel(
                    name='Notification',
                ),
            ],
            database_operations=[],
        ),
    ]
