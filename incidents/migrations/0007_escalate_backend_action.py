from django.db import migrations

SEV2_STEP = "Escalation: SEV-2 (no fallback, material impact): + Backend on-call"


def sev2_step_is_escalate_backend(apps, schema_editor):
    """RB-09's SEV-2 escalation step had the SEV-3 step's action, so paging Integrations on-call ticked both."""
    items = apps.get_model("incidents", "ChecklistItem").objects
    items.filter(action="escalate", text=SEV2_STEP).update(action="escalate_backend")


def back(apps, schema_editor):
    items = apps.get_model("incidents", "ChecklistItem").objects
    items.filter(action="escalate_backend", text=SEV2_STEP).update(action="escalate")


class Migration(migrations.Migration):
    dependencies = [("incidents", "0006_issue13_clear_year_one_times")]
    operations = [migrations.RunPython(sev2_step_is_escalate_backend, back)]
