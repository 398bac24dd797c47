"""manage.py create_stale_defects --provider P --since "1 hour ago" [--dry-run] (RB-09 containment 3)."""

from integrations import services, timespec
from integrations.errors import ServiceError
from integrations.management.cli import CliCommand, cli_actor


class Command(CliCommand):
    help = (
        "Open a defect for every record the provider left stale since --since: STALE_ENRICHMENT for enrichment "
        "providers, STALE_CRM_SYNC otherwise (or --defect-type). Records with an open one are skipped, so "
        "running it twice creates nothing new. Bad input exits 2 and changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--provider", required=True)
        parser.add_argument("--since", required=True, help="'N minutes/hours/days ago' or an ISO time.")
        parser.add_argument(
            "--defect-type", help="STALE_ENRICHMENT or STALE_CRM_SYNC (default: by provider)."
        )
        parser.add_argument("--dry-run", action="store_true", help="Count the records; create nothing.")

    def handle(self, *args, provider, since, defect_type, dry_run, **options):
        provider = timespec.provider(provider)
        moment = timespec.since(since)
        try:
            result = services.defects_create_stale(
                provider=provider,
                since=moment,
                actor=cli_actor(options),
                defect_type=defect_type,
                dry_run=dry_run,
                audit_extra={"command": "create_stale_defects"},
            )
        except ServiceError as e:
            raise timespec.UsageError(e.message) from None
        kind = result.details["defect_type"]
        verb = "Would create" if dry_run else "Created"
        self.stdout.write(
            f"{verb} {result.changed} {kind} defects for {provider} since {moment.isoformat()}; "
            f"{result.unchanged} records already had one."
        )
