"""manage.py clear_stale_defects --provider P --within 4h [--since WHEN] [--incident N] [--resolution TEXT]
[--dry-run] (RB-09 recovery 4)."""

from datetime import timedelta

from integrations import services, timespec
from integrations.errors import ServiceError
from integrations.management.cli import CliCommand, cli_actor
from integrations.models import AuditAction, AuditEvent, Defect

# The defects an incident's "Create stale defects" made are inserted with its audit row: this much either side.
CREATED_WITH = timedelta(minutes=1)


class Command(CliCommand):
    help = (
        "Resolve the provider's OPEN stale defects (STALE_ENRICHMENT and STALE_CRM_SYNC, or --defect-type) "
        "created within --within, in one UPDATE, with a resolution. Bad input exits 2 and changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--provider", required=True)
        parser.add_argument(
            "--within", default="4h", help="Created within this long: 4h, 90m, '2 days' (default 4h)."
        )
        parser.add_argument("--resolution", default=services.DEFAULT_RESOLUTION)
        parser.add_argument("--defect-type", help="Only this type (default: both stale types).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be resolved; change nothing."
        )
        parser.add_argument(
            "--since", help="Only defects created since: 'N minutes/hours ago' or an ISO time."
        )
        parser.add_argument(
            "--incident",
            help="Only the defects incident N's 'Create stale defects' made (INC-N or N).",
        )

    def handle(self, *args, provider, within, resolution, defect_type, dry_run, since, incident, **options):
        provider = timespec.provider(provider)
        window = timespec.duration(within, flag="--within")
        defects = None
        if since is not None:
            defects = Defect.objects.filter(created_at__gte=timespec.since(since))
        if incident is not None:
            number = incident.upper().removeprefix("INC-")
            if not number.isdigit():
                raise timespec.UsageError(f"--incident: '{incident}' is not an incident number")
            made = AuditEvent.objects.filter(
                action=AuditAction.DEFECTS_CREATE_STALE, provider=provider, details__incident=int(number)
            ).values_list("created_at", flat=True)
            if not made:
                raise timespec.UsageError(f"--incident: INC-{number} created no stale {provider} defects")
            scoped = Defect.objects.filter(
                created_at__gte=min(made) - CREATED_WITH, created_at__lte=max(made) + CREATED_WITH
            )
            defects = scoped if defects is None else defects & scoped
        try:
            result = services.defects_clear_stale(
                provider=provider,
                defects=defects,
                within=window,
                actor=cli_actor(options),
                resolution=resolution,
                defect_type=defect_type,
                dry_run=dry_run,
                audit_extra={"command": "clear_stale_defects"},
            )
        except ServiceError as e:
            raise timespec.UsageError(e.message) from None
        verb = "Would resolve" if dry_run else "Resolved"
        self.stdout.write(f"{verb} {result.changed} stale {provider} defects created within {within}.")
