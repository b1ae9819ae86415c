from django.contrib import admin

from alerts.models import AlertFiring, AlertRule, Delivery, Notification


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "line", "action", "snoozed_until", "last_error")
    list_filter = ("kind", "action")
    raw_id_fields = ("line", "created_by")


@admin.register(AlertFiring)
class AlertFiringAdmin(admin.ModelAdmin):
    list_display = ("rule", "period_key", "value", "fired_at", "resolved_at", "acknowledged_at")
    raw_id_fields = ("rule",)


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("title", "user", "visible_at", "read_at")
    raw_id_fields = ("user", "line", "firing")


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    """The outbox, for operators to see what was sent, what waits and what failed."""

    list_display = ("pk", "channel", "state", "attempts", "due_at", "sent_at", "last_error")
    list_filter = ("channel", "state")
    raw_id_fields = ("notification", "rule", "webhook")
