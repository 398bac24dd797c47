"""manage.py set_mode --provider P --mode polling --poll-interval 5m [--tenant SLUG] (RB-09 containment 1)."""

from integrations import selectors, services, timespec
from integrations.errors import ServiceError
from integrations.management.cli import CliCommand, cli_actor


class Command(CliCommand):
    help = (
        "Switch a provider's integrations (or one tenant's) to polling every --poll-interval (default 5m), or "
        "back to webhook mode (the interval returns to the default; providers without webhooks stay polled). "
        "Bad input exits 2 and changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--provider", required=True)
        parser.add_argument("--mode", required=True, help="polling or webhook")
        parser.add_argument("--poll-interval", help="With polling: 30s to 24h, e.g. 5m (default 5m).")
        parser.add_argument("--tenant", help="Only this tenant (slug).")
        parser.add_argument("--dry-run", action="store_true", help="Count what would change; change nothing.")

    def handle(self, *args, provider, mode, poll_interval, tenant, dry_run, **options):
        provider = timespec.provider(provider)
        if mode not in ("polling", "webhook"):
            raise timespec.UsageError(f"--mode: '{mode}' is not polling or webhook")
        if poll_interval is not None and mode == "webhook":
            raise timespec.UsageError("--poll-interval: applies to --mode polling only")
        interval = (
            timespec.duration(poll_interval, flag="--poll-interval") if poll_interval is not None else None
        )
        integrations = selectors.integrations_of(provider, tenant_slug=tenant)
        if tenant and not integrations.exists():
            raise timespec.UsageError(f"no {provider} integration for tenant '{tenant}'")
        try:
            result = services.integrations_set_mode(
                integrations=integrations,
                actor=cli_actor(options),
                mode=mode,
                poll_interval=interval,
                audit_extra={"command": "set_mode"},
                dry_run=dry_run,
            )
        except ServiceError as e:
            raise timespec.UsageError(
                f"--poll-interval: {e.message}" if e.field == "poll_interval" else e.message
            ) from None
        verb = "Would set" if dry_run else "Set"
        line = f"{verb} {result.changed} {provider} integration(s) to {mode}; {result.unchanged} already so."
        if result.details.get("n_polling_only"):
            line += f" {result.details['n_polling_only']} stay polled (the provider sends no webhooks)."
        self.stdout.write(line)
