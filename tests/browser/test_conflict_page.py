"""An operator settles a held sync conflict from its defect page in a real Chromium ("Keep ours"), and the provider
receives the local value."""

import pytest
from django.utils import timezone

from integrations import services
from integrations.access.actors import System
from integrations.engine import run
from integrations.models import AuditEvent, Defect, Integration, RecordLink
from tests.support import factories
from tests.support.sync import connect, local_records

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_operator_keeps_ours_from_the_defect_page(live_server, page, sandbox, artifacts_dir):
    integration = connect(sandbox, "hubspot", mode="webhook")
    [record] = local_records(integration, 1, company="Acme")
    run.sync_integration(integration.pk, pull=False)
    remote_id = RecordLink.objects.get(record=record).remote_id
    record.refresh_from_db()
    record.payload = {**record.payload, "company": "Ours"}
    record.save()
    sandbox.update_record("hubspot", remote_id, {"company": "Theirs"})
    services.integrations_reconcile(
        integrations=Integration.objects.filter(pk=integration.pk),
        since=timezone.now() - timezone.timedelta(hours=2),
        actor=System("test"),
    )
    defect = Defect.objects.get(defect_type="SYNC_CONFLICT", status="OPEN")
    factories.user("operator", group=factories.OPERATOR)

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", factories.PASSWORD)
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/integrations/defect/{defect.pk}/change/")
    assert (
        page.inner_text(".lo-conflict").split()
        == "field base ours theirs company 'Acme' 'Ours' 'Theirs'".split()
    )
    page.screenshot(path=str(artifacts_dir / "conflict-defect.png"), full_page=True)
    page.click("#lo-keep-ours")
    page.wait_for_selector("text=will act on")
    page.screenshot(path=str(artifacts_dir / "conflict-confirm.png"), full_page=True)
    page.click("input[type=submit][value^='Yes']")
    page.wait_for_selector(".messagelist")
    page.screenshot(path=str(artifacts_dir / "conflict-kept.png"), full_page=True)

    assert page.url.endswith(f"/admin/integrations/defect/{defect.pk}/change/")
    assert "Keep ours: 1 row changed." in page.inner_text(".messagelist")
    assert page.locator("#lo-keep-ours").count() == 0
    assert Defect.objects.get(pk=defect.pk).status == "RESOLVED"
    assert AuditEvent.objects.filter(action="conflict.keep_ours", actor="operator").count() == 1
    run.sync_integration(integration.pk, pull=False)
    [remote] = [r for r in sandbox.records("hubspot") if r["id"] == remote_id]
    assert remote["fields"]["company"] == "Ours"
