from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self):
        # Register the tasks in every process (web, commands, tests), not only in workers: services send them by
        # name, and a registered task honours task_always_eager where an unknown name would go to the broker.
        from integrations import tasks  # noqa: F401

        # Issue 13 (M1): every admin screen allows only its declared filter lookups (admin.site is complete now:
        # django.contrib.admin, listed first, discovered every admin module in its own ready()).
        from integrations.admin.lookups import protect_every_admin

        protect_every_admin()
        from integrations.services.logins import connect_login_signals

        connect_login_signals()
