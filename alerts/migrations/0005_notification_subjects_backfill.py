"""Notices written before they knew their subject: an alert's is its rule, another one about a line
is that line. (A notice of a request or an invitation did not record which one; it keeps its text.)
A migration of its own, like 0003: PostgreSQL refuses to alter a table in the transaction that wrote it."""

from django.db import migrations
from django.db.models import F, OuterRef, Subquery


def subjects_fill(apps, schema_editor):
    Notification = apps.get_model("alerts", "Notification")
    AlertFiring = apps.get_model("alerts", "AlertFiring")
    unknown = Notification.objects.filter(subject_kind="")
    rule_of_firing = AlertFiring.objects.filter(pk=OuterRef("firing_id")).values("rule_id")[:1]
    unknown.filter(firing__isnull=False).update(subject_kind="rule", subject_id=Subquery(rule_of_firing))
    unknown.filter(firing__isnull=True, line__isnull=False).update(
        subject_kind="line", subject_id=F("line_id")
    )


class Migration(migrations.Migration):
    dependencies = [("alerts", "0004_notification_subject_rule_deleted")]

    operations = [migrations.RunPython(subjects_fill, migrations.RunPython.noop)]
