"""In a real Chromium: an operator runs "Switch to polling" from an incident's checklist and sees it done and on
the timeline; a Support viewer sees the same tracker without a single button."""

import pytest

from incidents.models import ChecklistItem
from incidents.services.opening import incident_open
from integrations.models import AuditEvent, Integration
from tests.support import factories
from tests.support.incidents import failing_logs

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _login(page, live_server, username):
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", factories.PASSWORD)
    page.click("input[type=submit]")


def test_operator_switches_to_polling_from_the_checklist_and_viewer_sees_no_buttons(
    live_server, page, artifacts_dir
):
    operator = factories.user("operator", group=factories.OPERATOR)
    factories.user("viewer", group=factories.VIEWER)
    tenants = []
    for name, slug in (("Acme Recruiting", "acme"), ("Bolt Hiring", "bolt")):
        t = factories.tenant(name=name, slug=slug)
        failing_logs(factories.integration(tenant=t, provider="hubspot"), 3)
        tenants.append(t)
    incident = incident_open(
        provider="hubspot",
        runbook="RB-09",
        actor=operator,
        tenants=tenants,
        title="HubSpot API returning 503",
    )
    item = ChecklistItem.objects.get(incident=incident, action="switch_to_polling")

    _login(page, live_server, "operator")
    page.goto(f"{live_server.url}/admin/incidents/incident/")
    page.click(f"text=INC-{incident.pk} RB-09 hubspot")
    page.wait_for_selector("#tracker")
    row = page.locator(f"#item-{item.pk}")
    assert row.get_attribute("data-done") == "no"
    row.locator("a.lo-run", has_text="Switch to polling").click()
    page.wait_for_selector("text=Polling every 5 minutes")
    page.click("input[type=submit][value='Yes, switch to polling']")
    page.wait_for_selector("text=Switch to polling: 2 rows changed.")

    row = page.locator(f"#item-{item.pk}")
    assert row.get_attribute("data-done") == "yes"
    assert "Done: check passed at" in row.inner_text()
    assert "2 of 2 polling" in row.inner_text()
    actions = page.locator("#timeline ~ table tr[data-kind='action']")
    assert "Switch to polling: 2 rows changed" in actions.first.inner_text()
    assert page.locator("#timeline ~ table tr[data-kind='integration.set_mode']").count() == 2
    page.screenshot(path=str(artifacts_dir / "incident-tracker-operator.png"), full_page=True)
    page.locator("table[data-phase='containment']").screenshot(
        path=str(artifacts_dir / "incident-tracker-item.png")
    )
    page.locator("#timeline ~ table").screenshot(path=str(artifacts_dir / "incident-tracker-timeline.png"))
    assert set(Integration.objects.values_list("mode", flat=True)) == {"polling"}
    assert AuditEvent.objects.filter(action="integration.set_mode", actor="operator").count() == 2

    _login(page, live_server, "viewer")
    page.goto(f"{live_server.url}/admin/incidents/incident/{incident.pk}/tracker/")
    page.wait_for_selector("#tracker")
    assert page.locator("#tracker").get_attribute("data-can-operate") == "no"
    assert page.locator("#tracker a.lo-run, #tracker input[type=submit], #tracker button").count() == 0
    assert "Switch to polling" in page.locator(f"#item-{item.pk}").inner_text()
    page.screenshot(path=str(artifacts_dir / "incident-tracker-viewer.png"))
