from django.db import migrations


def refresh_tokens_is_reconnect(apps, schema_editor):
    """'Refresh tokens' and 'Reconnect' were two checklist actions with one body; Reconnect is the one name."""
    apps.get_model("incidents", "ChecklistItem").objects.filter(action="refresh_tokens").update(action="reconnect")


class Migration(migrations.Migration):
    dependencies = [("incidents", "0002_checklist_depth_source_tenant_contacts")]
    operations = [migrations.RunPython(refresh_tokens_is_reconnect, migrations.RunPython.noop)]
