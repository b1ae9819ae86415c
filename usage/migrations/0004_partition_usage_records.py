"""PostgreSQL only: rebuilds usage_usagerecord as a table partitioned by month of period_start
(see usage/partitions.py). Existing rows are copied into their months. SQLite is left as it is."""

from django.db import migrations

SQL = """
ALTER TABLE usage_usagerecord RENAME TO usage_usagerecord_unpartitioned;
-- Constraint names move with the table; free them for the new one.
ALTER TABLE usage_usagerecord_unpartitioned DROP CONSTRAINT usage_usagerecord_pkey;
ALTER TABLE usage_usagerecord_unpartitioned DROP CONSTRAINT usage_record_unique_external_id;
ALTER TABLE usage_usagerecord_unpartitioned DROP CONSTRAINT usage_period_positive;
CREATE TABLE usage_usagerecord (
    LIKE usage_usagerecord_unpartitioned INCLUDING DEFAULTS INCLUDING IDENTITY
) PARTITION BY RANGE (period_start);
ALTER TABLE usage_usagerecord ADD PRIMARY KEY (id, period_start);
ALTER TABLE usage_usagerecord ADD CONSTRAINT usage_record_unique_external_id
    UNIQUE (source, external_id, period_start);
ALTER TABLE usage_usagerecord ADD CONSTRAINT usage_period_positive CHECK (period_end > period_start);
ALTER TABLE usage_usagerecord ADD CONSTRAINT usage_usagerecord_line_fk
    FOREIGN KEY (line_id) REFERENCES plans_line (id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE usage_usagerecord ADD CONSTRAINT usage_usagerecord_device_fk
    FOREIGN KEY (device_id) REFERENCES usage_device (id) DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX usage_usagerecord_line_period ON usage_usagerecord (line_id, period_start);
CREATE INDEX usage_usagerecord_source_external ON usage_usagerecord (source, external_id);
DO $$
DECLARE month date;
BEGIN
    FOR month IN
        SELECT DISTINCT date_trunc('month', period_start AT TIME ZONE 'UTC')::date
        FROM usage_usagerecord_unpartitioned
    LOOP
        EXECUTE format(
            'CREATE TABLE usage_usagerecord_y%sm%s PARTITION OF usage_usagerecord
             FOR VALUES FROM (%L) TO (%L)',
            to_char(month, 'YYYY'), to_char(month, 'MM'),
            (month::timestamp AT TIME ZONE 'UTC'), ((month + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
    END LOOP;
END $$;
INSERT INTO usage_usagerecord SELECT * FROM usage_usagerecord_unpartitioned;
SELECT setval(pg_get_serial_sequence('usage_usagerecord', 'id'),
              coalesce((SELECT max(id) FROM usage_usagerecord), 0) + 1, false);
DROP TABLE usage_usagerecord_unpartitioned;
"""


def partition(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # A plain cursor: the SQL holds format() placeholders that must not be taken for parameters.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(SQL)


class Migration(migrations.Migration):
    dependencies = [("usage", "0003_integrationtoken")]
    operations = [migrations.RunPython(partition, migrations.RunPython.noop)]
