from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts and notices"

    def ready(self) -> None:
        from alerts import notify  # noqa: F401 - connects the provisioning policy to line_status_changed
        from alerts import orders  # noqa: F401 - connects the order notices to order_changed
