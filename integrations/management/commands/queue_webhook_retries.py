"""manage.py queue_webhook_retries --provider P --max-retries 10 [--dry-run] (RB-09 containment 4)."""

from integrations import services, timespec
from integrations.errors import ServiceError
from integrations.management.cli import CliCommand, cli_actor


class Command(CliCommand):
    help = (
        "Queue the provider's FAILED and DEAD webhook deliveries for processing again, with --max-retries "
        "attempts in all (attempts so far count); the dispatcher picks them up within seconds. "
        "Bad input exits 2 and changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--provider", required=True)
        parser.add_argument("--max-retries", default="10", help="1 to 100 (default 10).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be queued; change nothing."
        )

    def handle(self, *args, provider, max_retries, dry_run, **options):
        provider = timespec.provider(provider)
        max_retries = timespec.positive_int(max_retries, flag="--max-retries")
        try:
            result = services.webhooks_queue_retries(
                provider=provider,
                actor=cli_actor(options),
                max_retries=max_retries,
                dry_run=dry_run,
                audit_extra={"command": "queue_webhook_retries"},
            )
        except ServiceError as e:
            raise timespec.UsageError(
                f"--max-retries: {e.message}" if e.field == "max_retries" else e.message
            ) from None
        if dry_run:
            self.stdout.write(
                f"Would queue {result.changed} {provider} webhook deliveries (max retries {max_retries})."
            )
            return
        self.stdout.write(
            f"Queued {result.changed} {provider} webhook deliveries for retry "
            f"({result.details['n_were_dead']} were dead); max retries {max_retries}."
        )
