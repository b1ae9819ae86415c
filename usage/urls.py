from django.urls import path

from usage import alert_views, views

app_name = "usage"
urlpatterns = [
    path("", views.home, name="home"),
    path("lines/<int:line_id>/", views.line_detail, name="line_detail"),
    path("lines/<int:line_id>/card/", views.line_card, name="line_card"),
    path("lines/<int:line_id>/usage.csv", views.line_export, name="line_export"),
    path("lines/<int:line_id>/rules/", alert_views.line_rules, name="line_rules"),
    path("lines/<int:line_id>/rules/preset/", alert_views.rule_preset, name="rule_preset"),
    path("lines/<int:line_id>/rules/preview/", alert_views.rule_preview_view, name="rule_preview"),
    path("lines/<int:line_id>/rules/<int:rule_id>/", alert_views.rule_edit, name="rule_edit"),
    path("lines/<int:line_id>/rules/<int:rule_id>/delete/", alert_views.rule_delete, name="rule_delete"),
    path("lines/<int:line_id>/rules/<int:rule_id>/snooze/", alert_views.rule_snooze, name="rule_snooze"),
    path(
        "lines/<int:line_id>/rules/<int:rule_id>/firings/<int:firing_id>/acknowledge/",
        alert_views.firing_acknowledge,
        name="firing_acknowledge",
    ),
    path("lines/<int:line_id>/resume/", alert_views.line_resume_view, name="line_resume"),
    path("notifications/", alert_views.notifications, name="notifications"),
    path("notifications/read/", alert_views.notifications_read, name="notifications_read"),
    path("notifications/badge/", alert_views.notification_badge, name="notification_badge"),
    path("webhooks/", alert_views.webhooks, name="webhooks"),
    path("webhooks/<int:webhook_id>/delete/", alert_views.webhook_delete, name="webhook_delete"),
]
