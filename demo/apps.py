from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "demo"
    verbose_name = "Demo data"

    def ready(self) -> None:
        from demo import billing  # noqa: F401 - connects the demo billing backend to order_changed
