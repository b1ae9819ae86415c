"""Indexes that repeat another index's leading columns: each costs every ingested record a write
and serves no query the other does not. The record key (source, external_id, period_start) finds
records by (source, external_id) as well as the plain index migration 0004 made on PostgreSQL."""

import django.db.models.deletion
from django.db import migrations, models


def drop_source_external_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS usage_usagerecord_source_external")


def create_source_external_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX usage_usagerecord_source_external ON usage_usagerecord (source, external_id)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("plans", "0007_gifts"),
        ("usage", "0005_alertrule_alertfiring_delivery_deliveryattempt_and_more"),
    ]

    operations = [
        migrations.AlterField(
            model_name="dailyusage",
            name="line",
            field=models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="plans.line"
            ),
        ),
        migrations.AlterField(
            model_name="hourlyusage",
            name="line",
            field=models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="plans.line"
            ),
        ),
        migrations.AlterField(
            model_name="usagerecord",
            name="line",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="usage_records",
                to="plans.line",
            ),
        ),
        migrations.RunPython(drop_source_external_index, create_source_external_index),
    ]
