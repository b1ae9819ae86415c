from django.urls import path

from alerts import views

app_name = "alerts"
urlpatterns = [
    path("lines/<int:line_id>/rules/", views.line_rules, name="line_rules"),
    path("lines/<int:line_id>/rules/preset/", views.rule_preset, name="rule_preset"),
    path("lines/<int:line_id>/rules/preview/", views.rule_preview_view, name="rule_preview"),
    path("lines/<int:line_id>/rules/<int:rule_id>/", views.rule_edit, name="rule_edit"),
    path("lines/<int:line_id>/rules/<int:rule_id>/delete/", views.rule_delete, name="rule_delete"),
    path("lines/<int:line_id>/rules/<int:rule_id>/restore/", views.rule_restore, name="rule_restore"),
    path("lines/<int:line_id>/rules/<int:rule_id>/snooze/", views.rule_snooze, name="rule_snooze"),
    path(
        "lines/<int:line_id>/rules/<int:rule_id>/firings/<int:firing_id>/acknowledge/",
        views.firing_acknowledge,
        name="firing_acknowledge",
    ),
    path("lines/<int:line_id>/resume/", views.line_resume_view, name="line_resume"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/read/", views.notifications_read, name="notifications_read"),
    path("notifications/<int:notification_id>/open/", views.notification_open, name="notification_open"),
    path(
        "notifications/<int:notification_id>/<str:action>/", views.notification_act, name="notification_act"
    ),
    path("notifications/badge/", views.notification_badge, name="notification_badge"),
    path("webhooks/", views.webhooks, name="webhooks"),
    path("webhooks/<int:webhook_id>/delete/", views.webhook_delete, name="webhook_delete"),
    path("webhooks/<int:webhook_id>/rotate/", views.webhook_rotate, name="webhook_rotate"),
]
