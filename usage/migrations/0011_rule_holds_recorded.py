"""Lines a rule held before the status machine recorded its moves get that hold as a
LineStatusChange, so the rule holding them is known after plans 0012 drops Line.status_rule."""

from django.db import migrations


def holds_record(apps, schema_editor):
    Line = apps.get_model("plans", "Line")
    LineStatusChange = apps.get_model("usage", "LineStatusChange")
    for line in Line.objects.filter(status_reason="rule").exclude(
        status_changes__transition="rule_hold"
    ):
        LineStatusChange.objects.create(
            line=line,
            transition="rule_hold",
            status=line.status,
            reason="rule",
            rule_id=line.status_rule_id,
            at=line.status_changed_at or line.created_at,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("plans", "0011_pool_notice_columns_dropped"),
        ("usage", "0010_line_status_changes"),
    ]

    operations = [migrations.RunPython(holds_record, migrations.RunPython.noop)]
