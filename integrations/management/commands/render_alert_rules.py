"""lineup-ops render_alert_rules [--output FILE]: the shipped Prometheus rules, runbook links on CONSOLE_URL."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from integrations.timespec import UsageError
from lineup_ops.alert_rules import render_rules


class Command(BaseCommand):
    help = (
        "Write the shipped Prometheus alert rules (IDISIntegrationProviderErrors, ...) with each runbook_url "
        "on this console's CONSOLE_URL; load the file with Prometheus' rule_files."
    )

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", help="Write to this file (default: standard output).")
        parser.add_argument("--console-url", help="Instead of CONSOLE_URL.")

    def handle(self, *args, output, console_url, **options):
        url = console_url or settings.CONSOLE_URL
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--console-url: '{url}' is not an http(s) URL")
        text = render_rules(url)
        if not output:
            self.stdout.write(text, ending="")
            return
        path = Path(output)
        if not path.parent.is_dir():
            raise UsageError(f"--output: no directory {path.parent}")
        path.write_text(text, encoding="utf-8")
        self.stderr.write(f"Wrote {path} (runbook links on {url}).")
