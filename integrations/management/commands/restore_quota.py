"""manage.py restore_quota --provider P: "Quota is back" (the provider's quota block cleared, parked retries due)."""

from django.conf import settings
from django.core.management.base import BaseCommand

from integrations import services, timespec
from integrations.access.actors import System


class Command(BaseCommand):
    help = (
        "Quota is back: clear the provider's quota block (after a rate limit) and make the retries it parked "
        "due now. Audited as provider.quota_restore. A bad provider exits 2 and changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--provider", required=True)

    def handle(self, *args, provider, **options):
        provider = timespec.provider(provider)
        if settings.RATE_LIMIT_STORAGE_URL.startswith("memory") and not _runs_tasks_here():
            # The block lives in each process's memory here: clearing this one's would say "cleared" and change
            # nothing where the pushes run.
            raise timespec.UsageError(
                "the quota is counted in this process only (RATE_LIMIT_STORAGE_URL=memory://), not in the "
                "workers': set RATE_LIMIT_STORAGE_URL to their Redis (make demo's: "
                f"redis://127.0.0.1:{settings.DEMO_BROKER_PORT}/0), or use Quota is back in the console"
            )
        result = services.provider_quota_restore(
            provider=provider, actor=System("cli"), audit_extra={"command": "restore_quota"}
        )
        self.stdout.write(
            f"Quota is back for {provider}: block cleared (was {result.details['was_blocked_for_seconds']}s), "
            f"{result.changed} parked retries due now."
        )


def _runs_tasks_here() -> bool:
    from lineup_ops.celery import app

    return bool(app.conf.task_always_eager)
