"""Create the beat schedules (idempotent)."""

from django.core.management.base import BaseCommand

from integrations.services.schedules import all_schedules, ensure_schedules


class Command(BaseCommand):
    help = "Create or correct the periodic tasks that beat runs."

    def handle(self, *args, **options):
        changed = ensure_schedules()
        self.stdout.write(f"Schedules: {len(all_schedules())} in place, {len(changed)} created or corrected.")
