"""A support operator pauses two integrations in a real Chromium and sees them shown as paused."""

import pytest

from integrations.models import AuditEvent, Integration
from tests.support import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_operator_pauses_two_integrations_in_the_browser(live_server, page, artifacts_dir):
    t = factories.tenant(name="Acme Recruiting", slug="acme")
    hub = factories.integration(tenant=t, provider="hubspot")
    gh = factories.integration(tenant=t, provider="greenhouse")
    factories.integration(tenant=t, provider="lever")
    factories.user("operator", group=factories.OPERATOR)

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", factories.PASSWORD)
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/integrations/integration/")
    for integration in (hub, gh):
        page.check(f"input[name=_selected_action][value='{integration.pk}']")
    page.select_option("select[name=action]", "pause_sync")
    page.click("button[name=index]")
    page.wait_for_selector("text=will act on")
    assert "2" in page.inner_text(".lo-confirm-count")
    page.fill("#id_reason", "RB-03: HubSpot quota exhausted")
    page.click("input[type=submit][value^='Yes']")
    page.wait_for_selector("text=Pause sync: 2 rows changed.")
    page.screenshot(path=str(artifacts_dir / "pause-sync.png"), full_page=True)

    rows = {
        row.query_selector("th").inner_text().strip(): row.inner_text()
        for row in page.query_selector_all("#result_list tbody tr")
    }
    paused = [name for name, text in rows.items() if "Paused" in text]
    assert sorted(paused) == ["Acme Recruiting / Greenhouse", "Acme Recruiting / HubSpot"]
    assert Integration.objects.filter(status="paused").count() == 2
    assert AuditEvent.objects.filter(action="integration.pause", actor="operator").count() == 2
