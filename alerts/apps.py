from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts and notices"

    def ready(self) -> None:
        # Connect the provisioning policy to line_status_changed, the order notices to order_changed.
        from alerts import notify, orders  # noqa: F401
