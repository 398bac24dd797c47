"""manage.py sync --provider P [--tenant SLUG] [--wait]: run a sync now."""

from django.core.management.base import BaseCommand

from integrations import services, timespec
from integrations.engine import run
from integrations.models import Integration


class Command(BaseCommand):
    help = "Run a sync now for every integration of a provider (or one tenant's): push changes, pull when polling."

    def add_arguments(self, parser):
        parser.add_argument("--provider", required=True)
        parser.add_argument("--tenant", help="Only this tenant (slug).")
        parser.add_argument(
            "--wait", action="store_true", help="Run here and wait for the result instead of queueing."
        )
        parser.add_argument("--pull", action="store_true", help="Also pull changes, even in webhook mode.")

    def handle(self, *args, provider, tenant, wait, pull, **options):
        provider = timespec.provider(provider)
        qs = Integration.objects.filter(provider=provider)
        if tenant:
            qs = qs.filter(tenant__slug=tenant)
            if not qs.exists():
                raise timespec.UsageError(f"no {provider} integration for tenant '{tenant}'")
        ids = list(qs.order_by("pk").values_list("pk", flat=True))
        if not wait:
            services.enqueue_syncs(ids)
            self.stdout.write(f"Queued syncs for {len(ids)} {provider} integration(s).")
            return
        for pk in ids:
            while True:
                s = run.sync_integration(pk, pull=True if pull else None)
                self.stdout.write(
                    f"integration {pk}: {'ran' if s.ran else 'skipped'} {s.reason} pushed={s.pushed} "
                    f"failed={s.failed} retrying={s.retrying} pulled={s.pulled or '-'}"
                )
                if not s.more or not s.ran:
                    break
