from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incidents"

    def ready(self):
        # Register the tasks in every process, as integrations does: the outbox sends
        # incidents.send_notification by name, and a registered task honours task_always_eager.
        from incidents import tasks  # noqa: F401
