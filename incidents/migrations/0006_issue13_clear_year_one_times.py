"""Issue 13 (M4): incidents opened from an Alertmanager alert with its zero time (year 1) as startsAt made the
screens answer 500 west of UTC. The intake now takes that time as unset; this clears the ones already stored."""

from django.db import migrations


def clear(apps, schema_editor):
    Incident = apps.get_model("incidents", "Incident")
    Incident.objects.filter(started_at__year__lt=1970).update(started_at=None)


class Migration(migrations.Migration):
    dependencies = [("incidents", "0005_issue15_checklist_truth")]

    operations = [migrations.RunPython(clear, migrations.RunPython.noop)]
