"""manage.py rotate_credentials --provider P [--store-in-vault] [--dry-run]: RB-09 recovery 2."""

from integrations import services, timespec
from integrations.management.cli import CliCommand, cli_actor
from integrations.selectors import tokens


class Command(CliCommand):
    help = (
        "Rotate a provider's credentials: refresh every OAuth token; with --store-in-vault re-encrypt every "
        "stored credential with the newest FERNET_KEYS key so older keys can be dropped."
    )

    def add_arguments(self, parser):
        parser.add_argument("--provider", required=True)
        parser.add_argument(
            "--store-in-vault",
            action="store_true",
            help="Re-encrypt the stored credentials with the first key of FERNET_KEYS.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Say what would change; change nothing.")

    def handle(self, *args, provider, store_in_vault, dry_run, **options):
        provider = timespec.provider(provider)
        if dry_run:
            plan = tokens.rotation_plan(provider)
            reencrypt = plan["not_current_key"] if store_in_vault else 0
            self.stdout.write(
                f"Dry run: {plan['total']} {provider} integration(s): would refresh {plan['would_refresh']}, "
                f"cannot refresh {plan['no_refresh_token']} (no refresh token), would re-encrypt {reencrypt}; "
                "nothing changed."
            )
            return
        result = services.credentials_rotate(
            provider=provider,
            actor=cli_actor(options),
            store_in_vault=store_in_vault,
            source="rotate_credentials",
        )
        d = result.details
        self.stdout.write(
            f"Rotated {provider}: refreshed {d['n_refreshed']}, re-encrypted {d['n_reencrypted']}, "
            f"failed {d['n_failed']} (of {result.total})."
        )
