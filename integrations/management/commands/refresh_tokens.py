"""manage.py refresh_tokens --provider P [--tenant SLUG] [--dry-run]: RB-09 recovery 1, refresh OAuth tokens."""

from integrations import services, timespec
from integrations.catalog import PROVIDERS
from integrations.management.cli import CliCommand, cli_actor
from integrations.models import Integration, IntegrationStatus


class Command(CliCommand):
    help = "Refresh the OAuth tokens of every integration of a provider (or one tenant's) and test each with a call."

    def add_arguments(self, parser):
        parser.add_argument("--provider", required=True)
        parser.add_argument("--tenant", help="Only this tenant (slug).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would be refreshed; change nothing."
        )

    def handle(self, *args, provider, tenant, dry_run, **options):
        provider = timespec.provider(provider)
        if PROVIDERS[provider].auth_type != "oauth2":
            raise timespec.UsageError(
                f"{provider} uses API keys: there is no token to refresh (update the key in the console)"
            )
        qs = Integration.objects.filter(provider=provider)
        if tenant:
            qs = qs.filter(tenant__slug=tenant)
            if not qs.exists():
                raise timespec.UsageError(f"no {provider} integration for tenant '{tenant}'")
        if dry_run:
            for i in qs.select_related("tenant").order_by("pk"):
                if i.status == IntegrationStatus.NEEDS_REAUTH:
                    # The provider already refused this refresh token: a refresh would fail again.
                    self.stdout.write(
                        f"would try integration {i.pk} ({i.tenant.slug}), but its last refresh was refused: "
                        "needs re-authorization (Re-authorize on its page)"
                    )
                    continue
                has_refresh = "yes" if i.credentials.get("refresh_token") else "no (needs re-authorization)"
                self.stdout.write(
                    f"would refresh integration {i.pk} ({i.tenant.slug}): status={i.status} "
                    f"refresh token={has_refresh}"
                )
            self.stdout.write(f"Dry run: {qs.count()} {provider} integration(s), nothing changed.")
            return
        result = services.integrations_reconnect(
            integrations=qs, actor=cli_actor(options), source="refresh_tokens"
        )
        d = result.details
        self.stdout.write(
            f"Refreshed {result.changed} {provider} integration(s); needs re-authorization: "
            f"{d['n_needs_reauth']}, failed: {d['n_failed']}."
        )
