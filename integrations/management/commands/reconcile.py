"""manage.py reconcile --provider P --since "2 hours ago" [--tenant SLUG] [--dry-run] (RB-09 recovery 3)."""

from django.core.management.base import CommandError

from integrations import selectors, services, timespec
from integrations.errors import ServiceError
from integrations.management.cli import CliCommand, cli_actor


class Command(CliCommand):
    help = (
        "Fetch what changed at the provider since --since (its list-updated-since API) and apply what is "
        "missing or different locally; each reconciled record gets a 'record.reconciled' audit event. "
        "--dry-run fetches and reports but changes nothing. Exits 1 when a provider call failed, 2 on bad input."
    )

    def add_arguments(self, parser):
        parser.add_argument("--provider", required=True)
        parser.add_argument("--since", required=True, help="'N minutes/hours/days ago' or an ISO time.")
        parser.add_argument("--tenant", help="Only this tenant (slug).")
        parser.add_argument("--dry-run", action="store_true", help="Fetch and compare; change nothing.")

    def handle(self, *args, provider, since, tenant, dry_run, **options):
        provider = timespec.provider(provider)
        moment = timespec.since(since)
        integrations = selectors.integrations_of(provider, tenant_slug=tenant)
        if tenant and not integrations.exists():
            raise timespec.UsageError(f"no {provider} integration for tenant '{tenant}'")
        try:
            result = services.integrations_reconcile(
                integrations=integrations,
                since=moment,
                actor=cli_actor(options),
                dry_run=dry_run,
                audit_extra={"command": "reconcile"},
            )
        except ServiceError as e:
            raise timespec.UsageError(e.message) from None
        d = result.details
        for row in d["integrations"]:
            self.stdout.write(
                f"{row['tenant']}: checked {row['checked']}, created {row['created']}, updated {row['updated']}, "
                f"unchanged {row['unchanged']}, conflicts {row['conflict']}"
                + (f", error: {row['error']}" if row["error"] else "")
            )
        prefix = "Dry run (nothing changed): " if dry_run else ""
        self.stdout.write(
            f"{prefix}{provider} since {moment.isoformat()}: checked {d['n_checked']}, created {d['n_created']}, "
            f"updated {d['n_updated']}, unchanged {d['n_unchanged']}, conflicts {d['n_conflict']}, "
            f"errors {d['n_errors']}."
        )
        if d["n_errors"]:
            raise CommandError(f"{d['n_errors']} integration(s) could not be reconciled", returncode=1)
