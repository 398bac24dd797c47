"""manage.py detect_incidents: one detection pass, as beat runs it every minute."""

from django.core.management.base import BaseCommand

from incidents.detection import rates
from incidents.services import checklist


class Command(BaseCommand):
    help = (
        "Run one incident detection pass (fast and slow error-rate windows, integration states, status pages) "
        "and evaluate open checklists."
    )

    def handle(self, *args, **options):
        results = rates.detect()
        for incident, created in results:
            verb = "opened" if created else "updated"
            self.stdout.write(
                f"{verb} {incident} {incident.severity} error rate "
                f"{(incident.error_rate or 0):.0%}, {incident.affected_tenants.count()} tenants"
            )
        completed = checklist.incidents_evaluate_active()
        self.stdout.write(
            f"{len(results)} incident(s) detected; {completed} checklist item(s) completed by checks."
        )
