"""Issue 15 acceptance: runbooks walked in Chromium from fault to closed incident, the way a support engineer
works them: tracker buttons, admin actions, the JSON API and commands, in turn. After each step every box the step
concerns is asserted (done or not, and the evidence: who, how, when), and a screenshot is saved under
test-artifacts/walk-<runbook>-NN-<step>.png.

Faults are caused at the sandbox (a real HTTP server); the sync engine runs in-process where the runbook waits for
retries; "15 minutes pass" is simulated by moving the outage's errors back in time (tests/support/incidents.py).
"""

from io import StringIO

import pytest
from django.core.management import call_command

from incidents.models import ChecklistItem, Incident
from integrations.engine import run as engine_run
from integrations.models import Integration, SyncLog
from tests.support import factories
from tests.support.incidents import backdate_errors
from tests.support.sync import connect, local_records

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


class Walk:
    """One runbook walk: the page, where screenshots go, and assertions on the tracker's boxes."""

    def __init__(self, page, live_server, artifacts_dir, name):
        self.page, self.url, self.dir, self.name, self.n = page, live_server.url, artifacts_dir, name, 0
        self.incident = None

    def shot(self, label):
        self.n += 1
        self.page.screenshot(
            path=str(self.dir / f"walk-{self.name}-{self.n:02d}-{label}.png"), full_page=True
        )

    def login(self, username):
        self.page.context.clear_cookies()
        self.page.goto(f"{self.url}/admin/login/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", factories.PASSWORD)
        self.page.click("input[type=submit]")

    def tracker(self):
        self.page.goto(f"{self.url}/admin/incidents/incident/{self.incident.pk}/tracker/")
        self.page.wait_for_selector("#tracker")

    def row(self, **kw):
        item = ChecklistItem.objects.filter(incident=self.incident, **kw).order_by("position").first()
        assert item is not None, kw
        return self.page.locator(f"#item-{item.pk}")

    def box(self, *, done: bool, evidence: str = "", **kw):
        row = self.row(**kw)
        assert row.get_attribute("data-done") == ("yes" if done else "no"), (kw, row.inner_text())
        if evidence:
            assert evidence in row.inner_text(), (kw, evidence, row.inner_text())
        return row

    def run(self, button_label, *, fill=None, **kw):
        """A tracker button: open the action's confirmation, fill its form, confirm."""
        self.row(**kw).locator("a.lo-run").click()
        self.page.wait_for_selector(".lo-confirm")
        for name, value in (fill or {}).items():
            self.page.fill(f"[name={name}]", value)
        self.page.click(f"input[type=submit][value='Yes, {button_label.lower()}']")
        self.page.wait_for_selector("#tracker")

    def move(self, status, reason=""):
        if reason:
            self.page.fill("input[name=override_reason]", reason)
        self.page.click(f"input[data-transition='{status}']")
        self.page.wait_for_selector("#tracker")

    def status(self) -> str:
        return Incident.objects.get(pk=self.incident.pk).status

    def api(self, method, path, token, body=None):
        response = self.page.request.fetch(
            f"{self.url}{path}",
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            data=body,
        )
        assert response.status < 300, (path, response.status, response.text())
        return response.json()


def _tenants_at(sandbox, provider, n=2, synced=3):
    out = []
    for i in range(n):
        tenant = factories.tenant(slug=f"{provider}-t{i}", name=f"{provider.title()} tenant {i}")
        integration = connect(sandbox, provider, tenant)
        local_records(integration, synced)
        assert engine_run.sync_integration(integration.pk).pushed == synced
        out.append(integration)
    return out


def _traffic(integrations, n=3):
    for integration in integrations:
        local_records(integration, n)
        engine_run.sync_integration(integration.pk)


def _retries_come_due(integrations):
    from datetime import timedelta

    from django.utils import timezone

    SyncLog.objects.filter(status="RETRYING").update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    for integration in integrations:
        for _ in range(3):
            if not engine_run.sync_integration(integration.pk).more:
                break


def test_rb01_provider_downtime_from_fault_to_closed(live_server, page, sandbox, artifacts_dir):
    factories.user("operator", group=factories.OPERATOR)
    token, raw = factories.api_token(scope="admin", name="runbook-curl")
    integrations = _tenants_at(sandbox, "salesforce")
    w = Walk(page, live_server, artifacts_dir, "rb01")

    # Fault: Salesforce goes down at the sandbox; syncs fail. Detection is the beat's command.
    sandbox.control("salesforce", mode="down")
    _traffic(integrations)
    call_command("detect_incidents", stdout=StringIO())
    w.incident = Incident.objects.get(provider="salesforce", runbook="RB-01")
    assert w.incident.severity == "SEV-2"  # Salesforce sends no webhooks: no polling fallback

    # 1. The operator finds it in the incident list and becomes the commander (tracker button).
    w.login("operator")
    w.page.goto(f"{w.url}/admin/incidents/incident/")
    w.page.click(f"text=INC-{w.incident.pk} RB-01 salesforce")
    w.page.wait_for_selector("#tracker")
    w.page.click("input[name=acknowledge]")
    w.page.wait_for_selector("#tracker")
    assert w.status() == "acknowledged"
    assert "operator" in w.page.locator("#incident-commander").inner_text()
    w.box(done=False, action="check_status_page")
    w.box(done=False, action="disable_integration")
    w.shot("acknowledged")

    # 2. Check provider status page (tracker button): done, by the operator, from the tracker.
    w.run("Check provider status page", action="check_status_page")
    w.box(done=True, evidence="by operator (tracker)", action="check_status_page")
    assert "major" in w.page.locator(".messagelist").inner_text()
    w.shot("status-page")

    # 3. Test connectivity (tracker button).
    w.run("Test connectivity", action="test_connectivity")
    w.box(done=True, evidence="Test connectivity by operator (tracker)", action="test_connectivity")
    w.shot("connectivity")

    # 4. The runbook's own curl disables tenant 0 through the API: the disable box is done, "by token (API)".
    t0, t1 = integrations
    body = w.api(
        "PATCH", f"/api/v1/admin/tenants/{t0.tenant.slug}/integrations/salesforce", raw, {"enabled": False}
    )
    assert body
    w.tracker()
    w.box(done=True, evidence="Disable by token:runbook-curl (API)", action="disable_integration")
    w.shot("disabled-through-api")

    # 5. The tracker's Disable takes the other one; the incident is contained.
    w.run("Disable integrations", fill={"reason": "cascading failures"}, action="disable_integration")
    assert set(Integration.objects.values_list("enabled", flat=True)) == {False}
    w.move("contained")
    assert w.status() == "contained"
    enable = w.box(done=False, action="enable_integration")
    assert "still disabled" in enable.inner_text()
    w.box(done=False, check_name="status_connected")
    w.shot("contained")

    # 6. Salesforce is back. An admin action enables tenant 0 (the one the API disabled) ...
    sandbox.control("salesforce", mode="ok")
    w.page.goto(f"{w.url}/admin/integrations/integration/?provider__exact=salesforce")
    w.page.check(f"input[name=_selected_action][value='{t0.pk}']")
    w.page.select_option("select[name=action]", "enable")
    w.page.click("button[name=index]")
    w.page.wait_for_selector(".lo-confirm")
    w.page.click("input[type=submit][value='Yes, enable']")
    assert Integration.objects.get(pk=t0.pk).enabled
    w.tracker()
    enable = w.box(done=False, action="enable_integration")
    assert t1.tenant.slug in enable.inner_text() and t0.tenant.slug not in enable.inner_text()
    w.shot("enabled-in-admin")

    # 7. ... and the tracker's undo lists what is left, enables it, and the box is done: none left.
    w.row(action="enable_integration").locator("a.lo-run").click()
    w.page.wait_for_selector("#confirm-targets-intro")
    assert t1.tenant.name in w.page.locator(".lo-confirm-list").inner_text()
    assert t0.tenant.name not in w.page.locator(".lo-confirm-list").inner_text()
    w.shot("undo-confirmation")
    w.page.click("input[type=submit][value^='Yes, enable']")
    w.page.wait_for_selector("#tracker")
    assert set(Integration.objects.values_list("enabled", flat=True)) == {True}
    w.move("recovering")
    w.box(
        done=True,
        evidence="no integration disabled during the incident is left disabled",
        action="enable_integration",
    )
    w.shot("enabled-by-tracker")

    # 8. Retries come due and succeed; 15 minutes pass without errors. Verification passes by itself.
    _retries_come_due(integrations)
    backdate_errors("salesforce")
    w.move("verifying")
    w.tracker()
    for check in ("status_connected", "sync_success", "no_errors_15m", "no_unsynced_records"):
        w.box(done=True, evidence="check passed at", check_name=check)
    assert "every record reached Salesforce" in w.row(check_name="no_unsynced_records").inner_text()
    w.shot("verified")

    # 9. Resolve: no override needed.
    w.move("resolved")
    assert w.status() == "resolved"
    w.box(done=True, check_name="incident_resolved")
    w.box(done=True, check_name="no_failed_records")
    w.shot("resolved")

    # 10. Closing is refused while post-incident items are open and the SEV-2 postmortem is missing.
    w.move("closed")
    assert w.status() == "resolved"
    assert "postmortem" in w.page.locator(".messagelist").inner_text()
    w.shot("close-refused")

    # 11. The postmortem is written on its page.
    w.page.click("#postmortem-state a")
    w.page.fill("[name=root_cause]", "Salesforce's API was down for forty minutes.")
    w.page.fill("[name=fallback_effective]", "No fallback: Salesforce sends no webhooks to poll instead of.")
    w.page.fill("[name=reconciliation_completeness]", "Every queued push was retried and reached Salesforce.")
    w.page.fill("[name=communication_timeliness]", "On-call was paged at detection; tenants within minutes.")
    w.page.click("input[type=submit][value='Save postmortem']")
    w.page.wait_for_selector("#tracker")
    assert "Complete, by operator" in w.page.locator("#postmortem-state").inner_text()
    w.shot("postmortem")

    # 12. "Review failed sync logs for retryable items": nothing failed is left, so retrying changes nothing and
    # ticks nothing (API call); the operator skips it with a reason, then closes.
    w.api("POST", "/api/v1/integrations/salesforce/retry-failed", raw)
    w.tracker()
    w.box(done=False, action="retry_failed")
    w.page.fill(
        f"#item-{w.incident.checklist.get(action='retry_failed').pk} input[name=reason]",
        "No failed logs left.",
    )
    w.row(action="retry_failed").locator("input.lo-skip-button").click()
    w.page.wait_for_selector("#tracker")
    assert w.row(action="retry_failed").get_attribute("data-skipped") == "yes"
    assert "Skipped: No failed logs left." in w.row(action="retry_failed").inner_text()
    w.shot("skipped")

    w.move("closed")
    assert w.status() == "closed"
    assert "Closed" in w.page.locator("#incident-status").inner_text()
    w.shot("closed")


def _skip_open_post_incident_items(w, reason):
    for item in ChecklistItem.objects.filter(
        incident=w.incident, phase="post_incident", done=False, skipped=False
    ):
        row = w.page.locator(f"#item-{item.pk}")
        row.locator("input[name=reason]").fill(reason)
        row.locator("input.lo-skip-button").click()
        w.page.wait_for_selector("#tracker")
        row = w.page.locator(f"#item-{item.pk}")
        assert row.get_attribute("data-skipped") == "yes" and f"Skipped: {reason}" in row.inner_text()


def test_rb03_rate_limit_exhaustion_from_fault_to_closed(
    live_server, page, sandbox, artifacts_dir, monkeypatch
):
    from integrations.engine import calls
    from integrations.engine.quota import provider_quota

    monkeypatch.setattr(calls, "QUOTA_WAIT_SECONDS", 0.2)
    factories.user("operator", group=factories.OPERATOR)
    _, raw = factories.api_token(scope="admin", name="runbook-curl")
    integrations = _tenants_at(sandbox, "hubspot", synced=1)
    critical, other = integrations
    Integration.objects.filter(pk=critical.pk).update(is_critical=True)
    w = Walk(page, live_server, artifacts_dir, "rb03")

    # Fault: HubSpot's quota runs out at the sandbox; syncs get 429s. Detection is the beat's command.
    sandbox.control("hubspot", rate_limit=1, window=3600)
    # HubSpot takes batches (issue 12): one call per tenant and run, so two rounds of traffic exhaust it.
    _traffic(integrations, n=4)
    _traffic(integrations, n=4)
    call_command("detect_incidents", stdout=StringIO())
    w.incident = Incident.objects.get(provider="hubspot", runbook="RB-03")

    # 1. Commander (tracker button).
    w.login("operator")
    w.tracker()
    w.page.click("input[name=acknowledge]")
    w.page.wait_for_selector("#tracker")
    assert w.status() == "acknowledged"
    w.box(done=False, action="pause_non_critical")
    w.shot("acknowledged")

    # 2. The runbook's "Pause Sync" through the API for the non-critical tenant: the pause box is done by it.
    w.api(
        "PATCH",
        f"/api/v1/admin/tenants/{other.tenant.slug}/integrations/hubspot",
        raw,
        {"sync_paused": True, "sync_paused_reason": "RB-03 quota exhausted"},
    )
    w.tracker()
    w.box(done=True, evidence="Pause sync by token:runbook-curl (API)", action="pause_non_critical")
    w.shot("paused-through-api")

    # 3. The tracker's "Pause non-critical syncs" now changes nothing: it is said so, and nothing new ticks.
    w.run("Pause non-critical syncs", action="pause_non_critical")
    assert "0 rows changed" in w.page.locator(".messagelist").inner_text()
    assert dict(Integration.objects.values_list("pk", "sync_paused")) == {critical.pk: False, other.pk: True}
    w.move("contained")
    resume = w.box(done=False, action="resume_paused")
    assert "still paused" in resume.inner_text()
    w.shot("contained")

    # 4. The provider's window passes. The tracker's resume lists the API's pause, resumes it; none is left.
    sandbox.control("hubspot", rate_limit=None)
    provider_quota().reset("hubspot")
    w.row(action="resume_paused").locator("a.lo-run").click()
    w.page.wait_for_selector("#confirm-targets-intro")
    assert other.tenant.name in w.page.locator(".lo-confirm-list").inner_text()
    w.shot("resume-confirmation")
    w.page.click("input[type=submit][value^='Yes, resume']")
    w.page.wait_for_selector("#tracker")
    assert not Integration.objects.filter(sync_paused=True).exists()
    w.move("recovering")
    w.box(
        done=True, evidence="no integration paused during the incident is left paused", action="resume_paused"
    )
    w.shot("resumed")

    # 5. Retries drain; 15 minutes pass. Verification passes by itself; resolve without override.
    _retries_come_due(integrations)
    backdate_errors("hubspot")
    w.move("verifying")
    w.tracker()
    for item in ChecklistItem.objects.filter(incident=w.incident, phase="verification").exclude(
        check_name=""
    ):
        w.box(done=True, evidence="check passed at", pk=item.pk)
    w.shot("verified")
    w.move("resolved")
    assert w.status() == "resolved"
    w.shot("resolved")

    # 6. Post-incident items that are a person's review are skipped with a reason; then the incident closes.
    w.move("closed")
    assert w.status() == "resolved" and "post-incident" in w.page.locator(".messagelist").inner_text()
    _skip_open_post_incident_items(w, "Reviewed in the weekly integrations meeting.")
    w.shot("skipped")
    w.move("closed")
    assert w.status() == "closed"
    w.shot("closed")
