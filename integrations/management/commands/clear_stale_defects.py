"""manage.py clear_stale_defects --provider P --within 4h [--resolution TEXT] [--dry-run] (RB-09 recovery 4)."""

from django.core.management.base import BaseCommand

from integrations import services, timespec
from integrations.access.actors import System
from integrations.errors import ServiceError


class Command(BaseCommand):
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

    def handle(self, *args, provider, within, resolution, defect_type, dry_run, **options):
        provider = timespec.provider(provider)
        window = timespec.duration(within, flag="--within")
        try:
            result = services.defects_clear_stale(
                provider=provider,
                within=window,
                actor=System("cli"),
                resolution=resolution,
                defect_type=defect_type,
                dry_run=dry_run,
                audit_extra={"command": "clear_stale_defects"},
            )
        except ServiceError as e:
            raise timespec.UsageError(e.message) from None
        verb = "Would resolve" if dry_run else "Resolved"
        self.stdout.write(f"{verb} {result.changed} stale {provider} defects created within {within}.")
