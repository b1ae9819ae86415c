"""Record keys move to their own table (see UsageRecordKey): filled from the stored records, then the
unique constraint on the records is dropped. On PostgreSQL that constraint held period_start too."""

from django.db import migrations, models

FILL = (
    "INSERT INTO usage_usagerecordkey (source, external_id, period_start) "
    "SELECT source, external_id, min(period_start) FROM usage_usagerecord GROUP BY source, external_id"
)


class RemoveRecordConstraint(migrations.RemoveConstraint):
    """Undone on PostgreSQL as migration 0004 made it: a unique constraint of a partitioned table
    must hold the partition key."""

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        schema_editor.execute(
            "ALTER TABLE usage_usagerecord ADD CONSTRAINT usage_record_unique_external_id "
            "UNIQUE (source, external_id, period_start)"
        )


class Migration(migrations.Migration):
    dependencies = [("usage", "0006_drop_redundant_indexes")]

    operations = [
        migrations.CreateModel(
            name="UsageRecordKey",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "source", "external_id", blank=True, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("source", models.CharField(max_length=32)),
                ("external_id", models.CharField(max_length=128)),
                ("period_start", models.DateTimeField()),
            ],
            options={"indexes": [models.Index(fields=["period_start"], name="usage_record_key_period")]},
        ),
        migrations.RunSQL(FILL, migrations.RunSQL.noop),
        RemoveRecordConstraint(model_name="usagerecord", name="usage_record_unique_external_id"),
    ]
