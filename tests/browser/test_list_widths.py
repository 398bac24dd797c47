"""Issue 15: at 1280 px no list page scrolls horizontally. Every changelist the admin index links to, the tracker
and the dashboard's tables are measured in Chromium: no page, results table or dashboard table scrolls sideways.
Rows carry long text (errors, details, resolutions) so that a column that does not truncate shows."""

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.models import TenantContact
from incidents.services.opening import incident_open
from integrations import services
from integrations.access.actors import System
from integrations.models import Defect, WebhookDelivery
from tests.support import factories
from tests.support.incidents import failing_logs

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG = "Connection reset by peer while reading the response body from the provider's API gateway " * 4

MEASURE = """() => {
  const doc = document.documentElement;
  const out = {page: [doc.scrollWidth, doc.clientWidth]};
  const results = document.querySelector('#changelist .results, #tracker');
  if (results) out.results = [results.scrollWidth, results.clientWidth];
  document.querySelectorAll('.dash .table-container').forEach((el, i) => {
    out['dashboard table ' + i] = [el.scrollWidth, el.clientWidth];
  });
  const td = document.querySelector('#result_list tbody td');
  if (td) out.wrap = getComputedStyle(td).overflowWrap;
  return out;
}"""


def _seed():
    tenants = [
        factories.tenant(slug=f"very-long-tenant-slug-{i}", name=f"A tenant with a rather long name {i}")
        for i in range(2)
    ]
    for t in tenants:
        integration = factories.integration(tenant=t, provider="hubspot")
        failing_logs(integration, 3, error_message=LONG, endpoint="/crm/v3/objects/contacts/batch/upsert" * 2)
        record = factories.record(
            tenant=t, kind="contact", email="someone.with.a.long.address@" + "x" * 60 + ".com"
        )
        Defect.objects.create(
            tenant=t,
            provider="hubspot",
            integration=integration,
            record=record,
            defect_type="STALE_CRM_SYNC",
            description=LONG,
            resolution=LONG,
            resolved_by="someone-with-a-long-username",
        )
        WebhookDelivery.objects.create(
            integration=integration,
            provider="hubspot",
            event_id=f"evt-{t.pk}-" + "0123456789" * 6,
            last_error=LONG,
        )
        TenantContact.objects.create(tenant=t, email=f"ops@{t.slug}.example.com", name="Operations " * 5)
        services.integration_pause(integrations=integration, actor=System("cli"), reason=LONG)
    incident = incident_open(
        provider="hubspot",
        runbook="RB-09",
        actor=System("detection"),
        tenants=tenants,
        title="HubSpot API returning 503 on every contact batch upsert for two tenants " * 2,
        started_at=timezone.now() - timedelta(minutes=10),
    )
    return incident


def _login(page, live_server, username):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", factories.PASSWORD)
    page.click("input[type=submit]")


def test_no_list_page_scrolls_horizontally_at_1280_px(live_server, page, artifacts_dir):
    incident = _seed()
    factories.user("root", superuser=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    _login(page, live_server, "root")
    page.goto(f"{live_server.url}/admin/")
    hrefs = sorted(
        {
            href
            for href in page.eval_on_selector_all(
                "#content-main a", "els => els.map(e => e.getAttribute('href'))"
            )
            if href and href.startswith("/admin/") and href.count("/") == 4 and not href.endswith("/add/")
        }
    )
    assert len(hrefs) >= 8, hrefs
    hrefs.append(f"/admin/incidents/incident/{incident.pk}/tracker/")
    # The dashboard's tables scroll inside their box rather than the page: at 1280 px none may need to.
    hrefs.append("/dashboard/")
    too_wide = {}
    for href in hrefs:
        page.goto(f"{live_server.url}{href}")
        widths = page.evaluate(MEASURE)
        name = href.strip("/").replace("/", "-")
        page.screenshot(path=str(artifacts_dir / f"width-1280-{name}.png"))
        widths.pop("wrap", None)
        for what, (scroll, client) in widths.items():
            if scroll > client + 1:
                too_wide[f"{href} {what}"] = (scroll, client)
    assert not too_wide, too_wide
