"""What every console command shares (issue 13, M6): the audit names the OS user who ran it, and --actor NAME
says on whose behalf (a console user that must exist). Bad input exits 2 with one line (timespec.UsageError)."""

import getpass
import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from integrations.access.actors import System


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def cli_actor(options: dict) -> System:
    """System("cli:<os user>"), or System("cli:<os user> as <console user>") with --actor."""
    from integrations import timespec

    name = (options.get("actor") or "").strip()
    label = f"cli:{os_user()}"
    if name:
        if not get_user_model().objects.filter(username=name, is_active=True).exists():
            raise timespec.UsageError(f"--actor: no active console user '{name[:100]}'")
        label = f"{label} as {name}"
    return System(label[:190])


class CliCommand(BaseCommand):
    """BaseCommand with --actor."""

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.add_argument("--actor", help="The console user on whose behalf this runs (for the audit).")
        return parser
