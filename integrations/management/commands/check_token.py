"""manage.py check_token P [--tenant SLUG] [--json]: RB-09 triage 3, token status of a provider's integrations."""

import json

from django.core.management.base import BaseCommand

from integrations import timespec
from integrations.selectors.tokens import check_token


def _expiry(seconds: int | None) -> str:
    if seconds is None:
        return "no expiry"
    if seconds <= 0:
        return f"EXPIRED {-seconds}s ago"
    return f"expires in {seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Command(BaseCommand):
    help = "Show token expiry, last refresh and refresh-token presence for every integration of a provider."

    def add_arguments(self, parser):
        parser.add_argument("provider")
        parser.add_argument("--tenant", help="Only this tenant (slug).")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print JSON instead of lines."
        )

    def handle(self, *args, provider, tenant, as_json, **options):
        report = check_token(timespec.provider(provider), tenant=tenant)
        if as_json:
            self.stdout.write(json.dumps(report, indent=2, sort_keys=True))
            return
        for row in report["integrations"]:
            self.stdout.write(
                f"{row['tenant']}: {row['status']}, {_expiry(row['seconds_to_expiry'])}, "
                f"last refreshed {row['last_refreshed_at'] or 'never'}, "
                f"refresh token {'stored' if row['has_refresh_token'] else 'missing'}"
            )
        s = report["summary"]
        self.stdout.write(
            f"{provider}: {s['total']} integration(s), {s['expired']} expired, {s['expiring_24h']} "
            f"expiring within 24h, {s['needs_reauth']} needs re-auth, "
            f"{s['no_refresh_token']} without refresh token."
        )
