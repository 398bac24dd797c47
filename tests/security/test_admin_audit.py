"""Issue 13, M6: every admin add, change (old and new values, inlines included) and delete is audited."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from incidents.models import TenantContact
from integrations.models import AuditEvent, FieldMapping, Integration, Record, Tenant, WebhookDelivery
from tests.support import factories

pytestmark = pytest.mark.django_db


def events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_tenant_change_and_delete_are_audited_with_old_and_new_values(client, superuser):
    tenant = factories.tenant(name="Acme", slug="acme")
    client.force_login(superuser)
    url = reverse("admin:integrations_tenant_change", args=[tenant.pk])
    assert client.post(url, {"name": "Acme Corp", "slug": "acme", "is_active": ""}).status_code == 302
    [event] = events("admin.change")
    assert event.actor == "root" and event.tenant_id == tenant.pk
    assert event.details["changes"]["name"] == {"old": "Acme", "new": "Acme Corp"}
    assert event.details["changes"]["is_active"] == {"old": True, "new": False}
    delete = reverse("admin:integrations_tenant_delete", args=[tenant.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    [gone] = events("admin.delete")
    assert gone.details["model"] == "integrations.Tenant" and gone.details["values"]["name"] == "Acme Corp"
    assert not Tenant.objects.exists()


def test_bulk_delete_of_records_and_webhook_deliveries_is_audited_per_row(client, superuser):
    tenant = factories.tenant()
    records = [factories.record(tenant=tenant) for _ in range(2)]
    client.force_login(superuser)
    changelist = reverse("admin:integrations_record_changelist")
    client.post(
        changelist,
        {"action": "delete_selected", ACTION_CHECKBOX_NAME: [r.pk for r in records], "post": "yes"},
    )
    assert not Record.objects.exists()
    assert len(events("admin.delete")) == 2
    integration = factories.integration(tenant=tenant, provider="greenhouse")
    delivery = WebhookDelivery.objects.create(integration=integration, provider="greenhouse", event_id="e1")
    client.post(reverse("admin:integrations_webhookdelivery_delete", args=[delivery.pk]), {"post": "yes"})
    assert events("admin.delete")[-1].details["model"] == "integrations.WebhookDelivery"


def test_tenant_contact_add_is_audited(client, superuser):
    tenant = factories.tenant()
    client.force_login(superuser)
    client.post(
        reverse("admin:incidents_tenantcontact_add"),
        {"tenant": tenant.pk, "email": "ops@acme.example", "name": "Ops"},
    )
    assert TenantContact.objects.exists()
    [event] = events("admin.add")
    assert event.details["changes"]["email"]["new"] == "ops@acme.example"


def test_field_mapping_inline_edits_record_what_changed(client, superuser):
    integration = factories.integration(provider="hubspot")
    mapping = FieldMapping.objects.create(integration=integration, local_field="email", remote_field="email")
    client.force_login(superuser)
    url = reverse("admin:integrations_integration_change", args=[integration.pk])
    data = {
        "base_url": "",
        "field_mappings-TOTAL_FORMS": "1",
        "field_mappings-INITIAL_FORMS": "1",
        "field_mappings-0-id": mapping.pk,
        "field_mappings-0-integration": integration.pk,
        "field_mappings-0-local_field": "email",
        "field_mappings-0-remote_field": "work_email",
    }
    page = client.get(url)
    form = page.context["adminform"].form
    data.update(
        {k: v for k, v in form.initial.items() if k in form.fields and v is not None and k not in data}
    )
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    [event] = events("admin.change")
    [inline] = event.details["inlines"]
    assert inline["changed"][0]["changes"]["remote_field"] == {"old": "email", "new": "work_email"}


def test_periodic_task_edits_are_audited(client, superuser):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every = IntervalSchedule.objects.create(every=10, period="minutes")
    task = PeriodicTask.objects.create(name="t", task="integrations.reconcile_integration", interval=every)
    client.force_login(superuser)
    client.post(reverse("admin:django_celery_beat_periodictask_delete", args=[task.pk]), {"post": "yes"})
    assert events("admin.delete")[-1].details["model"] == "django_celery_beat.PeriodicTask"


def test_secret_columns_are_never_written_to_the_audit(client, superuser):
    integration = factories.integration(provider="hubspot", credentials={"access_token": "very-secret"})
    client.force_login(superuser)
    client.post(reverse("admin:integrations_integration_delete", args=[integration.pk]), {"post": "yes"})
    [event] = events("admin.delete")
    assert event.details["values"]["credentials"] == "[redacted]"
    assert "very-secret" not in str(event.details) and integration.webhook_secret_value not in str(
        event.details
    )
    assert not Integration.objects.exists()
