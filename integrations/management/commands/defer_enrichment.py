"""manage.py defer_enrichment --provider P --on|--off [--tenant SLUG] (RB-09 containment 2, recovery 5)."""

from integrations import selectors, services, timespec
from integrations.errors import ServiceError
from integrations.management.cli import CliCommand, cli_actor


class Command(CliCommand):
    help = (
        "Defer enrichment steps on error (--on) or stop deferring (--off) for a provider's integrations. "
        "Exactly one of --on/--off; bad input exits 2 and changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--provider", required=True)
        parser.add_argument("--on", action="store_true")
        parser.add_argument("--off", action="store_true")
        parser.add_argument("--tenant", help="Only this tenant (slug).")
        parser.add_argument("--dry-run", action="store_true", help="Count what would change; change nothing.")

    def handle(self, *args, provider, on, off, tenant, dry_run, **options):
        provider = timespec.provider(provider)
        if on == off:
            raise timespec.UsageError("give exactly one of --on or --off")
        integrations = selectors.integrations_of(provider, tenant_slug=tenant)
        if tenant and not integrations.exists():
            raise timespec.UsageError(f"no {provider} integration for tenant '{tenant}'")
        try:
            result = services.integrations_set_enrichment_defer(
                integrations=integrations,
                actor=cli_actor(options),
                on=on,
                audit_extra={"command": "defer_enrichment"},
                dry_run=dry_run,
            )
        except ServiceError as e:
            raise timespec.UsageError(e.message) from None
        state = "on" if on else "off"
        self.stdout.write(
            ("Would set: e" if dry_run else "E")
            + f"nrichment deferral {state} for {result.changed} {provider} integration(s); "
            f"{result.unchanged} already so."
        )
