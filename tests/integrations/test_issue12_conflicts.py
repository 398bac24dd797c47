"""Issue 12, part 1: field-level, conflict-aware apply, and "Keep ours" / "Take theirs".

Reported: `apply_remote` let the provider's copy win whatever changed locally since the last push, for
reconcile, webhook processing and polling pulls alike.
"""

import json
from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from integrations import services
from integrations.access.actors import System
from integrations.engine import run
from integrations.engine.webhooks import process_webhook
from integrations.models import AuditEvent, Defect, Integration, Record, RecordLink, WebhookDelivery
from tests.support import factories
from tests.support.sync import connect, local_records

pytestmark = pytest.mark.django_db

SINCE = timedelta(hours=2)


def _synced(sandbox, **kw):
    integration = connect(sandbox, "hubspot", mode="webhook", **kw)
    [record] = local_records(integration, 1, company="Acme")
    run.sync_integration(integration.pk, pull=False)
    link = RecordLink.objects.get(record=record, integration=integration)
    assert link.base["company"] == "Acme"  # the agreed values are kept on the link
    return integration, record, link.remote_id


def _edit_here(record, **changes):
    record.refresh_from_db()
    record.payload = {**record.payload, **changes}
    record.save()


def _remote(sandbox, remote_id):
    [r] = [r for r in sandbox.records("hubspot") if r["id"] == remote_id]
    return r["fields"]


def _reconcile(integration):
    return services.integrations_reconcile(
        integrations=Integration.objects.filter(pk=integration.pk),
        since=timezone.now() - SINCE,
        actor=System("test"),
    )


def test_a_webhook_for_another_field_does_not_overwrite_an_unpushed_local_edit(sandbox):
    integration, record, remote_id = _synced(sandbox)
    _edit_here(record, title="Local title")  # not pushed yet
    sandbox.update_record("hubspot", remote_id, {"company": "Their company"})
    delivery = WebhookDelivery.objects.create(
        integration=integration, provider="hubspot", event_id="e1", payload={"remote_ids": [remote_id]}
    )

    process_webhook(delivery.pk)

    record.refresh_from_db()
    assert (record.payload["title"], record.payload["company"]) == ("Local title", "Their company")
    run.sync_integration(integration.pk, pull=False)  # the local edit still goes out
    assert _remote(sandbox, remote_id)["jobtitle"] == "Local title"
    assert _remote(sandbox, remote_id)["company"] == "Their company"


def test_an_older_remote_copy_never_overwrites_an_unpushed_local_change(sandbox):
    integration, record, _ = _synced(sandbox)
    _edit_here(record, company="Ours now")
    result = _reconcile(integration)  # HubSpot still holds the old value: one side changed, ours stays
    record.refresh_from_db()
    assert record.payload["company"] == "Ours now"
    assert result.details["n_conflict"] == 0
    assert not Defect.objects.exists()


def test_a_held_conflict_shows_both_values_and_keep_ours_pushes_ours(sandbox, client):
    integration, record, remote_id = _synced(sandbox)
    _edit_here(record, company="Ours")
    sandbox.update_record("hubspot", remote_id, {"company": "Theirs"})

    result = _reconcile(integration)

    assert result.details["n_conflict"] == 1
    defect = Defect.objects.get(defect_type="SYNC_CONFLICT", status="OPEN")
    assert defect.details["fields"]["company"] == {
        "remote_field": "company",
        "base": "Acme",
        "ours": "Ours",
        "theirs": "Theirs",
    }
    record.refresh_from_db()
    assert record.payload["company"] == "Ours"
    run.sync_integration(integration.pk, pull=False)  # held: not pushed over theirs while undecided
    assert _remote(sandbox, remote_id)["company"] == "Theirs"
    # The defect page shows the base and both values.
    staff = factories.user("op", group=factories.OPERATOR)
    client.force_login(staff)
    page = client.get(reverse("admin:integrations_defect_change", args=[defect.pk])).content.decode()
    assert "&#x27;Acme&#x27;" in page and "&#x27;Ours&#x27;" in page and "&#x27;Theirs&#x27;" in page

    # "Keep ours" through the API.
    _, token = factories.api_token(scope="tenant", tenant=integration.tenant)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    url = f"/api/v1/conflicts/{defect.pk}/resolve"
    bad = client.post(url, json.dumps({"choice": "mine"}), content_type="application/json", **headers)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "choice"
    ok = client.post(url, json.dumps({"choice": "ours"}), content_type="application/json", **headers)
    assert ok.status_code == 200 and ok.json()["resolved"] == 1
    again = client.post(url, json.dumps({"choice": "ours"}), content_type="application/json", **headers)
    assert again.status_code == 404

    run.sync_integration(integration.pk, pull=False)
    assert _remote(sandbox, remote_id)["company"] == "Ours"
    defect.refresh_from_db()
    assert defect.status == "RESOLVED"
    event = AuditEvent.objects.get(action="conflict.keep_ours")
    assert event.details["fields"] == {"company": "Ours"} and event.integration_id == integration.pk
    assert RecordLink.objects.get(record=record).base["company"] == "Ours"


def test_take_theirs_from_the_admin_applies_the_providers_value(sandbox, client):
    integration, record, remote_id = _synced(sandbox)
    _edit_here(record, company="Ours")
    sandbox.update_record("hubspot", remote_id, {"company": "Theirs"})
    _reconcile(integration)
    defect = Defect.objects.get(defect_type="SYNC_CONFLICT")
    client.force_login(factories.user("op", group=factories.OPERATOR))

    client.post(
        reverse("admin:integrations_defect_changelist"),
        {"action": "conflict_take_theirs", ACTION_CHECKBOX_NAME: [defect.pk], "confirm": "yes"},
        follow=True,
    )

    record.refresh_from_db()
    assert record.payload["company"] == "Theirs"
    assert Defect.objects.get(pk=defect.pk).status == "RESOLVED"
    assert AuditEvent.objects.filter(action="conflict.take_theirs", actor="op").count() == 1
    # Nothing left to push, and a later pull finds both sides agreeing.
    assert run.sync_integration(integration.pk, pull=False).pushed == 0
    assert _reconcile(integration).details["n_conflict"] == 0
    assert Record.objects.get(pk=record.pk).payload["company"] == "Theirs"


def test_a_viewer_may_not_resolve_a_conflict(sandbox, viewer):
    integration, record, remote_id = _synced(sandbox)
    _edit_here(record, company="Ours")
    sandbox.update_record("hubspot", remote_id, {"company": "Theirs"})
    _reconcile(integration)
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.conflict_take_theirs(defects=Defect.objects.all(), actor=viewer)
    assert Defect.objects.get().status == "OPEN"


def _held_conflict(sandbox):
    integration, record, remote_id = _synced(sandbox)
    _edit_here(record, company="Ours")
    sandbox.update_record("hubspot", remote_id, {"company": "Theirs"})
    _reconcile(integration)
    return integration, record, remote_id, Defect.objects.get(defect_type="SYNC_CONFLICT", status="OPEN")


def test_the_defect_page_offers_keep_ours_and_confirms_before_pushing(sandbox, client):
    """Walked in Chromium: the defect page showed both values but no way to settle them from there."""
    integration, record, remote_id, defect = _held_conflict(sandbox)
    client.force_login(factories.user("op", group=factories.OPERATOR))
    page_url = reverse("admin:integrations_defect_change", args=[defect.pk])
    page = client.get(page_url).content.decode()
    assert 'id="lo-keep-ours"' in page and 'id="lo-take-theirs"' in page
    url = reverse("admin:integrations_defect_conflict", args=[defect.pk, "ours"])
    assert f'action="{url}"' in page

    confirm = client.post(url)  # the button: a confirmation page first, nothing changed yet
    assert confirm.status_code == 200
    assert "Keep ours</strong> will act on <strong>1</strong>" in confirm.content.decode()
    assert Defect.objects.get(pk=defect.pk).status == "OPEN"
    assert client.get(url).url == page_url  # "No, take me back" leads to the defect page

    done = client.post(url, {"confirm": "yes"})
    assert done.status_code == 302 and done.url == page_url
    assert Defect.objects.get(pk=defect.pk).status == "RESOLVED"
    assert AuditEvent.objects.filter(action="conflict.keep_ours", actor="op").count() == 1
    run.sync_integration(integration.pk, pull=False)
    assert _remote(sandbox, remote_id)["company"] == "Ours"
    after = client.get(page_url).content.decode()
    assert (
        'id="lo-keep-ours"' not in after and "Kept ours" in after
    )  # settled: no buttons, the resolution shows


def test_the_defect_page_take_theirs_applies_theirs(sandbox, client):
    _, record, _, defect = _held_conflict(sandbox)
    client.force_login(factories.user("op", group=factories.OPERATOR))
    url = reverse("admin:integrations_defect_conflict", args=[defect.pk, "theirs"])
    client.post(url, {"confirm": "yes"})
    record.refresh_from_db()
    assert record.payload["company"] == "Theirs"
    assert AuditEvent.objects.filter(action="conflict.take_theirs", actor="op").count() == 1


def test_the_defect_page_buttons_refuse_a_viewer_and_bad_input(sandbox, client):
    _, record, _, defect = _held_conflict(sandbox)
    client.force_login(factories.user("view", group=factories.VIEWER))
    page = client.get(reverse("admin:integrations_defect_change", args=[defect.pk])).content.decode()
    assert 'id="lo-keep-ours"' not in page
    ours = reverse("admin:integrations_defect_conflict", args=[defect.pk, "ours"])
    assert client.post(ours, {"confirm": "yes"}).status_code == 403
    assert Defect.objects.get(pk=defect.pk).status == "OPEN"

    client.force_login(factories.user("op", group=factories.OPERATOR))
    base = reverse("admin:integrations_defect_change", args=[defect.pk])
    assert client.post(base + "conflict/mine/", {"confirm": "yes"}).status_code == 404
    assert (
        client.post("/admin/integrations/defect/nope/conflict/ours/", {"confirm": "yes"}).status_code == 404
    )
    assert (
        client.post(reverse("admin:integrations_defect_conflict", args=[999999, "ours"])).status_code == 404
    )
    other = Defect.objects.create(tenant=record.tenant, provider="hubspot", defect_type="STALE_CRM_SYNC")
    refused = client.post(
        reverse("admin:integrations_defect_conflict", args=[other.pk, "ours"]), {"confirm": "yes"}
    )
    assert refused.status_code == 302  # back to its page, saying it is not an open sync conflict
    assert Defect.objects.get(pk=other.pk).status == "OPEN"
    assert Defect.objects.get(pk=defect.pk).status == "OPEN"
    assert not AuditEvent.objects.filter(action__startswith="conflict.").exists()


@pytest.mark.django_db(transaction=True)
def test_a_record_edited_in_the_console_is_pushed_at_once_and_shows_pending_until_then(sandbox, client):
    """Walked on make demo: an admin's edit of a record waited for the 2-minute sweep (README: "local changes sync
    at once"), and the record said "Synced" all that time."""
    from lineup_ops.celery import app

    integration, record, remote_id = _synced(sandbox)
    record.refresh_from_db()
    assert record.crm_sync_status == "SYNCED"
    client.force_login(factories.user("root", superuser=True))
    url = reverse("admin:integrations_record_change", args=[record.pk])
    form = {
        "tenant": record.tenant_id,
        "kind": record.kind,
        "payload": json.dumps({**record.payload, "title": "Edited in the console"}),
        "crm_sync_status": record.crm_sync_status,
        "enrichment_status": record.enrichment_status,
        "links-TOTAL_FORMS": "1",
        "links-INITIAL_FORMS": "1",
        "links-MIN_NUM_FORMS": "0",
        "links-MAX_NUM_FORMS": "1000",
        "links-0-id": RecordLink.objects.get(record=record).pk,
        "links-0-record": record.pk,
    }
    app.conf.task_always_eager = False  # see the status before the push
    queued = []
    from integrations.services import syncs

    real = syncs.enqueue_after_commit
    syncs.enqueue_after_commit = lambda *a: queued.append(a)
    try:
        response = client.post(url, form)
    finally:
        syncs.enqueue_after_commit = real
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Record.objects.get(pk=record.pk).crm_sync_status == "PENDING"
    assert ("integrations.sync_integration", integration.pk, None, None) in queued
    run.sync_integration(integration.pk, pull=False)  # what the queued task runs
    assert _remote(sandbox, remote_id)["jobtitle"] == "Edited in the console"
    assert Record.objects.get(pk=record.pk).crm_sync_status == "SYNCED"


def test_a_record_no_integration_pushes_does_not_show_pending_after_an_edit(client):
    """Second read: an edit of a record that no CRM integration pushes (only enrichment, or none) showed Pending
    for ever."""
    tenant = factories.tenant()
    factories.integration(tenant=tenant, provider="clearbit")
    record = factories.record(tenant=tenant, email="a@example.com")
    Record.objects.filter(pk=record.pk).update(crm_sync_status="SYNCED")
    client.force_login(factories.user("root", superuser=True))
    form = {
        "tenant": tenant.pk,
        "kind": record.kind,
        "payload": json.dumps({**record.payload, "title": "Edited"}),
        "crm_sync_status": "SYNCED",
        "enrichment_status": record.enrichment_status,
        "links-TOTAL_FORMS": "0",
        "links-INITIAL_FORMS": "0",
        "links-MIN_NUM_FORMS": "0",
        "links-MAX_NUM_FORMS": "1000",
    }
    response = client.post(reverse("admin:integrations_record_change", args=[record.pk]), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Record.objects.get(pk=record.pk).crm_sync_status == "SYNCED"
    assert Record.objects.get(pk=record.pk).payload["title"] == "Edited"
