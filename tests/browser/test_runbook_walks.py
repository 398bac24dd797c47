"""Issue 15 acceptance: runbooks walked in Chromium from fault to closed incident, the way a support engineer
works them: tracker buttons, admin actions, the JSON API and commands, in turn. After each step every box the step
concerns is asserted (done or not, and the evidence: who, how, when), and a screenshot is saved under
test-artifacts/walk-<runbook>-NN-<step>.png.

Faults are caused at the sandbox (a real HTTP server); the sync engine runs in-process where the runbook waits for
retries; "15 minutes pass" is simulated by moving the outage's errors back in time (tests/support/incidents.py).
"""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

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


def _cli(name, *args) -> str:
    out = StringIO()
    call_command(name, *args, stdout=out)
    return out.getvalue()


def _reauthorize_in_admin(w, integration):
    """An Integrations admin opens the integration, presses Re-authorize and grants access at the provider."""
    w.page.goto(f"{w.url}/admin/integrations/integration/{integration.pk}/change/")
    assert w.page.inner_text(".field-status_badge .lo-badge") == "Needs re-auth"
    w.page.click("#lo-reauthorize")
    w.page.wait_for_selector("text=Grant access")
    assert w.page.input_value("#account") == integration.tenant.slug
    w.page.click("button.grant")
    w.page.wait_for_selector(f"text=Re-authorized {integration.tenant.name}")
    assert w.page.inner_text(".field-status_badge .lo-badge") == "Connected"


def test_rb02_oauth_token_expiry_from_fault_to_closed(live_server, page, sandbox, artifacts_dir):
    factories.user("operator", group=factories.OPERATOR)
    factories.user("integrations-admin", group=factories.ADMIN)
    _, raw = factories.api_token(scope="admin", name="runbook-curl")
    integrations = _tenants_at(sandbox, "hubspot")
    t0, t1 = integrations
    w = Walk(page, live_server, artifacts_dir, "rb02")

    # Fault: HubSpot expires every access token and revokes the refresh tokens; the next syncs get 401s and the
    # engine marks both integrations needs_reauth. Detection is the beat's command.
    sandbox.control("hubspot", expire_tokens=True, revoke_refresh_tokens=True)
    _traffic(integrations, n=1)
    assert set(Integration.objects.values_list("status", flat=True)) == {"needs_reauth"}
    call_command("detect_incidents", stdout=StringIO())
    w.incident = Incident.objects.get(provider="hubspot", runbook="RB-02")
    assert w.incident.severity == "SEV-3"

    # 1. The operator becomes the commander (tracker button); the tracker says who can re-authorize.
    w.login("operator")
    w.tracker()
    w.page.click("input[name=acknowledge]")
    w.page.wait_for_selector("#tracker")
    assert w.status() == "acknowledged"
    w.box(done=False, evidence="needs_reauth 2", check_name="status_report")
    w.box(done=False, evidence="2 need re-authorization", check_name="token_report")
    w.box(done=False, action="reconnect")
    # HubSpot uses OAuth: RB-02's API-key steps are not this incident's, and say so.
    api_key_step = w.row(text__startswith="Verify API key is still valid")
    assert api_key_step.get_attribute("data-skipped") == "yes"
    assert "Not for HubSpot: a step for API-key providers" in api_key_step.inner_text()
    hints = w.page.locator("#affected-tenants .lo-reauth-hint")
    assert hints.count() == 2 and "needs an Integrations admin" in hints.first.inner_text()
    w.shot("acknowledged")

    # 2. The runbook's curl lines: the status says needs_reauth; the forced refresh fails (the refresh token is
    # gone too), and a refresh that failed ticks nothing.
    status = w.api("GET", "/api/v1/integrations/hubspot/status", raw)
    assert "needs_reauth" in str(status)
    refreshed = w.api("POST", "/api/v1/integrations/hubspot/refresh", raw)
    assert "needs_reauth" in str(refreshed)
    w.tracker()
    w.box(done=False, action="reconnect")
    w.box(done=False, evidence="needs re-authorization: hubspot-t0, hubspot-t1", check_name="no_needs_reauth")
    w.shot("refresh-failed-through-api")

    # 3. The tracker's Reconnect says the same in words that match: failed, not "already so".
    w.run("Reconnect", action="reconnect")
    message = w.page.locator(".messagelist").inner_text()
    assert "0 of 2 reconnected, 2 failed" in message and "already so" not in message
    w.box(done=False, action="reconnect")
    w.shot("reconnect-failed")

    # 4. The command's dry run names both as needing re-authorization, and changes nothing.
    out = _cli("refresh_tokens", "--provider", "hubspot", "--dry-run")
    assert out.count("needs re-authorization") == 2 and "nothing changed" in out
    w.move("recovering")
    w.box(done=False, action="reconnect")
    w.shot("recovering")

    # 5. An Integrations admin re-authorizes tenant 0 in the admin (the provider's consent page): the
    # re-authorize step is done by them, from the admin; tenant 1 still needs it.
    w.login("integrations-admin")
    _reauthorize_in_admin(w, t0)
    w.shot("reauthorized-in-admin")
    w.tracker()
    w.box(done=True, evidence="by integrations-admin (admin)", action="reconnect")
    w.box(done=False, evidence="needs re-authorization: hubspot-t1", check_name="no_needs_reauth")
    w.shot("one-reauthorized")

    # 6. ... and tenant 1. No integration needs re-authorization any more.
    _reauthorize_in_admin(w, t1)
    w.tracker()
    w.box(done=True, evidence="none needs re-authorization", check_name="no_needs_reauth")
    w.shot("both-reauthorized")

    # 7. Sync resumes: new records go out through the sync command.
    for integration in integrations:
        local_records(integration, 2)
    out = _cli("sync", "--provider", "hubspot", "--wait")
    assert out.count("pushed=3 failed=0") == 2, out  # the one that got the 401, and the two new ones
    w.login("operator")
    w.tracker()
    w.move("verifying")
    w.tracker()
    for check in ("token_refreshed", "test_call_ok", "sync_success"):
        w.box(done=True, evidence="check passed at", check_name=check)
    assert "2 of 2 refreshed" in w.row(check_name="token_refreshed").inner_text()
    w.shot("verified")

    # 8. Resolve without override.
    w.move("resolved")
    assert w.status() == "resolved"
    w.shot("resolved")

    # 9. Post-incident. Rotation needs an Integrations admin: the operator sees it disabled, saying so. The admin
    # runs the runbook's command; its box is done, "(command)".
    rotate = w.row(action="rotate_credentials")
    assert rotate.locator("a.lo-run").count() == 0
    assert "needs Integrations admin" in rotate.inner_text()
    out = _cli("rotate_credentials", "--provider", "hubspot", "--store-in-vault")
    assert "refreshed 2" in out, out
    w.tracker()
    w.box(done=True, evidence="(command)", action="rotate_credentials")
    w.shot("rotated-by-command")

    # 10. The TTL review is a person's: skipped with a reason. Proactive refresh: the operator marks it done.
    ttl = w.incident.checklist.get(phase="post_incident", check_name="token_report")
    w.page.fill(f"#item-{ttl.pk} input[name=reason]", "TTL is HubSpot's: 30 minutes, not ours to set.")
    w.page.locator(f"#item-{ttl.pk} input.lo-skip-button").click()
    w.page.wait_for_selector("#tracker")
    assert w.row(pk=ttl.pk).get_attribute("data-skipped") == "yes"
    proactive = w.incident.checklist.get(phase="post_incident", action="", check_name="")
    w.page.locator(f"#item-{proactive.pk} input.lo-tick").click()
    w.page.wait_for_selector("#tracker")
    w.box(done=True, evidence="marked done by operator (tracker)", pk=proactive.pk)
    w.shot("post-incident")

    # 11. Closed. A SEV-3 resolved within 2 hours needs no postmortem, and the closed page does not ask for one.
    w.move("closed")
    assert w.status() == "closed"
    state = w.page.locator("#postmortem-state").inner_text()
    assert "Not required" in state and "Write the postmortem" not in state
    w.shot("closed")


def _admin_action(w, changelist, pks, action, verb):
    """An admin action on selected rows of a changelist, through its confirmation page."""
    w.page.goto(f"{w.url}/admin/integrations/{changelist}/")
    for pk in pks:
        w.page.check(f"input[name=_selected_action][value='{pk}']")
    w.page.select_option("select[name=action]", action)
    w.page.click("button[name=index]")
    w.page.wait_for_selector(".lo-confirm")
    w.page.click(f"input[type=submit][value^='Yes, {verb.lower()}']")


def test_rb04_validation_errors_from_fault_to_closed(live_server, page, sandbox, artifacts_dir):
    from integrations.models import Record

    factories.user("operator", group=factories.OPERATOR)
    _, raw = factories.api_token(scope="admin", name="runbook-curl")
    integrations = _tenants_at(sandbox, "greenhouse", synced=2)
    t0, t1 = integrations
    w = Walk(page, live_server, artifacts_dir, "rb04")

    # Fault: Greenhouse starts rejecting the email field (a schema change at the provider); new records fail
    # validation, the ones already synced keep working. Detection is the beat's command.
    sandbox.control("greenhouse", reject={"field": "email"})
    _traffic(integrations, n=3)
    assert Record.objects.filter(crm_sync_status="FAILED").count() == 6
    call_command("detect_incidents", stdout=StringIO())
    w.incident = Incident.objects.get(provider="greenhouse", runbook="RB-04")
    assert w.incident.dominant_category == "validation"

    # 1. The operator becomes the commander; the failure summary names the field.
    w.login("operator")
    w.tracker()
    w.page.click("input[name=acknowledge]")
    w.page.wait_for_selector("#tracker")
    w.box(done=False, evidence="validation/email 6", phase="detection", check_name="failure_summary")
    w.box(done=False, action="retry_failed")
    w.box(done=False, check_name="no_unsynced_records")
    w.shot("acknowledged")

    # 2. The runbook's curl lines: failed sync logs, the failure summary, one failed record's details.
    logs = w.api("GET", "/api/v1/integrations/greenhouse/sync-logs?status=FAILED", raw)
    rows = logs.get("results") or logs.get("sync_logs") or logs.get("items") or []
    assert len(rows) == 6, logs
    summary = w.api("GET", "/api/v1/integrations/greenhouse/failures", raw)
    assert "email" in str(summary) and "validation" in str(summary)
    one = w.api("GET", f"/api/v1/integrations/greenhouse/sync-logs/{rows[0]['id']}", raw)
    assert "email" in str(one)

    # 3. The pattern is a field validation error: the operator ticks the step (a person's judgement).
    fix = w.incident.checklist.get(text__startswith="Field validation errors")
    w.page.locator(f"#item-{fix.pk} input.lo-tick").click()
    w.page.wait_for_selector("#tracker")
    w.box(done=True, evidence="marked done by operator (tracker)", pk=fix.pk)
    w.move("contained")
    w.shot("pattern-identified")

    # 4. The data format is fixed at the provider. An admin action retries tenant 0's failed logs from the sync
    # log list: the retry box is done, from the admin; half the records are still failed.
    sandbox.control("greenhouse", reject=None)
    w.move("recovering")
    failed0 = SyncLog.objects.filter(integration=t0, status="FAILED").values_list("pk", flat=True)
    _admin_action(w, "synclog", failed0, "retry_failed_logs", "Retry failed syncs")
    w.page.wait_for_selector(".messagelist")
    w.shot("admin-sync-logs-retried")
    assert Record.objects.filter(crm_sync_status="FAILED").count() == 3
    w.tracker()
    w.box(done=True, evidence="by operator (admin)", action="retry_failed")
    w.box(done=False, evidence="3 still failed", check_name="retry_succeeded")
    w.shot("retried-in-admin")

    # 5. The runbook's curl retries the rest.
    body = w.api("POST", "/api/v1/integrations/greenhouse/retry-failed", raw)
    assert body["queued"] == 3, body
    assert Record.objects.filter(crm_sync_status="FAILED").count() == 0
    w.tracker()
    w.box(done=True, evidence="6 previously failed pushes succeeded on retry", check_name="retry_succeeded")
    w.shot("retried-through-api")

    # 6. The runbook's verify_sync command: local and Greenhouse agree.
    out = _cli("verify_sync", "--provider", "greenhouse", "--sample-size", "20")
    assert "0 mismatches" in out, out
    w.move("verifying")
    w.tracker()
    for item in ChecklistItem.objects.filter(incident=w.incident, phase="verification"):
        w.box(done=True, evidence="check passed at", pk=item.pk)
    assert "no mismatch" in w.row(phase="verification", check_name="verify_sync_clean").inner_text()
    w.shot("verified")

    # 7. Resolve. Post-incident: the review of other integrations shows its evidence but is a person's call;
    # one item is done by the operator, the others are skipped with a reason.
    w.move("resolved")
    assert w.status() == "resolved"
    w.tracker()
    w.box(done=False, evidence="validation failures elsewhere: none", check_name="similar_failures_elsewhere")
    logic = w.incident.checklist.get(text="Update validation logic if needed")
    w.page.locator(f"#item-{logic.pk} input.lo-tick").click()
    w.page.wait_for_selector("#tracker")
    w.box(done=True, evidence="marked done by operator (tracker)", pk=logic.pk)
    _skip_open_post_incident_items(w, "No mapping changed; no other provider fails on email.")
    w.shot("post-incident")

    w.move("closed")
    assert w.status() == "closed"
    w.shot("closed")


def test_rb09_provider_outage_two_way_sync_from_fault_to_closed(live_server, page, sandbox, artifacts_dir):
    from incidents.models import TenantContact
    from integrations.engine import dispatch, webhooks
    from integrations.models import Defect, Record, WebhookDelivery

    factories.user("operator", group=factories.OPERATOR)
    factories.user("integrations-admin", group=factories.ADMIN)
    _, raw = factories.api_token(scope="admin", name="runbook-curl")
    integrations = []
    for i in range(2):
        tenant = factories.tenant(slug=f"hubspot-t{i}", name=f"Hubspot tenant {i}")
        TenantContact.objects.create(tenant=tenant, email=f"ops@{tenant.slug}.example.com")
        integration = connect(sandbox, "hubspot", tenant, mode="webhook")
        local_records(integration, 3)
        assert engine_run.sync_integration(integration.pk).pushed == 3
        integrations.append(integration)
    w = Walk(page, live_server, artifacts_dir, "rb09")

    # Fault: HubSpot's API goes down. Our pushes fail; HubSpot's own users keep editing, and the webhooks that
    # reach us cannot be processed (fetching the changed record fails). Detection is the beat's command.
    sandbox.control("hubspot", mode="down")
    _traffic(integrations)
    for integration in integrations:
        remote = sandbox.records("hubspot", integration.tenant.slug)[0]
        sandbox.update_record("hubspot", remote["id"], {"firstname": "Changed-during-outage"})
        delivery = WebhookDelivery.objects.create(
            integration=integration,
            provider="hubspot",
            event_id=f"evt-{integration.pk}",
            payload={"remote_ids": [remote["id"]]},
        )
        assert webhooks.process_webhook(delivery.pk).status == "FAILED"
    call_command("detect_incidents", stdout=StringIO())
    w.incident = Incident.objects.get(provider="hubspot", runbook="RB-09")
    assert w.incident.severity == "SEV-3"  # HubSpot has a polling fallback

    # 1. The operator becomes the commander. The SEV-3 escalation went out by itself (sent, not just queued);
    # the SEV-2 one is not this incident's.
    w.login("operator")
    w.tracker()
    w.page.click("input[name=acknowledge]")
    w.page.wait_for_selector("#tracker")
    w.box(
        done=True,
        evidence="On-call notified (integrations, SEV-3): sent",
        text__startswith="Escalation: SEV-3",
    )
    w.box(done=False, text__startswith="Escalation: SEV-2")
    w.box(done=False, action="switch_to_polling")
    w.shot("acknowledged")

    # 2. Containment, from four places: polling from the tracker, enrichment deferred by an admin action, stale
    # defects and webhook retries by the runbook's commands.
    w.run("Switch to polling", action="switch_to_polling")
    w.box(done=True, evidence="2 of 2 polling", check_name="mode_polling")
    _admin_action(w, "integration", [i.pk for i in integrations], "defer_enrichment_on", "Defer enrichment")
    # The records whose pushes failed, and the two whose edits at HubSpot could not be fetched (stale here too).
    out = _cli("create_stale_defects", "--provider", "hubspot", "--since", "1 hour ago")
    assert "8" in out, out
    out = _cli("queue_webhook_retries", "--provider", "hubspot", "--max-retries", "10")
    assert "2" in out, out
    w.tracker()
    w.box(done=True, evidence="check passed at", check_name="enrichment_deferred")
    w.box(done=True, evidence="(command)", action="create_stale_defects")
    w.box(done=True, evidence="(command)", action="queue_webhook_retries")
    w.shot("contained-four-ways")

    # 3. Communication from the tracker: tenants are told (two mails), a status note is posted.
    w.page.fill("input[name=next_update_minutes]", "30")
    w.page.click("input[type=submit][value='Notify affected tenants']")
    w.page.wait_for_selector("#tracker")
    w.page.fill("#note-form textarea[name=message]", "HubSpot API returns 503; polling on, tenants told.")
    w.page.click("input[type=submit][value='Post internal status note']")
    w.page.wait_for_selector("#tracker")
    w.box(done=True, evidence="by operator", action="notify_tenants")
    w.box(done=True, evidence="by operator", action="status_note")
    w.move("contained")
    w.box(done=False, check_name="no_errors_15m")
    w.shot("communicated")

    # 4. HubSpot is back. Recovery by the runbook's commands: refresh_tokens, then reconcile --since (the edits
    # made at HubSpot during the outage come in), then sync (the queued pushes go out).
    sandbox.control("hubspot", mode="ok")
    w.move("recovering")
    out = _cli("refresh_tokens", "--provider", "hubspot")
    assert "Refreshed 2 hubspot integration(s)" in out, out
    out = _cli("reconcile", "--provider", "hubspot", "--since", "1 hour ago")
    assert "errors 0" in out, out
    assert Record.objects.filter(payload__first_name="Changed-during-outage").count() == 2
    SyncLog.objects.filter(status="RETRYING").update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    out = _cli("sync", "--provider", "hubspot", "--wait")
    assert "failed=0" in out and "retrying=0" in out, out
    for pk in dispatch.due_webhook_ids():  # the worker processes the queued webhook retries
        webhooks.process_webhook(pk)
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"PROCESSED"}
    w.tracker()
    w.box(done=True, evidence="(command)", action="reconnect")
    w.box(done=True, evidence="(command)", action="reconcile")
    w.shot("recovered-by-commands")

    # 5. Rotation needs an Integrations admin: the operator sees the button disabled, saying so; the admin runs
    # it from the tracker.
    assert "needs Integrations admin" in w.row(action="rotate_credentials").inner_text()
    w.login("integrations-admin")
    w.tracker()
    w.run("Rotate credentials", action="rotate_credentials")
    w.box(done=True, evidence="by integrations-admin (tracker)", action="rotate_credentials")
    w.shot("rotated")

    # 6. The stale defects are cleared by an admin action on the defect list; normal mode from the tracker.
    stale = Defect.objects.filter(status="OPEN").values_list("pk", flat=True)
    assert len(stale) == 8
    _admin_action(w, "defect", stale, "clear_stale_defects", "Clear stale defects")
    w.page.wait_for_selector(".messagelist")
    w.shot("admin-defects-cleared")
    assert not Defect.objects.filter(status="OPEN").exists()
    w.tracker()
    w.run("Restore normal mode", action="restore_normal_mode")
    assert set(Integration.objects.values_list("mode", flat=True)) == {"webhook"}
    w.box(done=True, evidence="0 open stale defects", action="clear_stale_defects")  # its check: the effect
    assert "defects.clear_stale" in w.page.locator("#timeline ~ table").inner_text()
    w.box(done=True, evidence="check passed at", check_name="normal_mode")
    # Containment was undone on purpose: its steps keep their record, not unticked, not shown failing.
    for check in ("mode_polling", "enrichment_deferred"):
        row = w.box(done=True, evidence="check passed at", check_name=check)
        assert "untick" not in row.inner_text() and "failing since" not in row.inner_text()
    w.shot("normal-mode")

    # 7. Verification: verify_sync by its command; while the outage's errors are inside 15 minutes, "no new
    # errors" fails and resolving is refused.
    w.move("verifying")
    out = _cli("verify_sync", "--provider", "hubspot", "--sample-size", "20")
    assert "0 mismatches" in out, out
    w.tracker()
    w.box(done=True, evidence="no mismatch", check_name="verify_sync_clean")
    w.box(done=False, check_name="no_errors_15m")
    w.move("resolved")
    assert w.status() == "verifying" and "Cannot resolve" in w.page.locator(".messagelist").inner_text()
    w.shot("resolve-refused")

    # 8. 15 minutes pass without errors; the beat's detection notes the recovery. Every check passes.
    backdate_errors("hubspot")
    call_command("detect_incidents", stdout=StringIO())
    w.tracker()
    for item in ChecklistItem.objects.filter(incident=w.incident, phase="verification").exclude(
        check_name=""
    ):
        w.box(done=True, evidence="check passed at", pk=item.pk)
    assert "record.reconciled audit events" in w.row(check_name="reconciled_audit_present").inner_text()
    w.shot("verified")
    w.move("resolved")
    assert w.status() == "resolved"

    # 9. The postmortem: each answer ticks its own question, and only its own.
    w.page.click("#postmortem-state a")
    w.page.fill("[name=root_cause]", "HubSpot's API returned 503 for forty minutes.")
    w.page.click("input[type=submit][value='Save postmortem']")
    w.page.wait_for_selector("#tracker")
    w.box(done=True, check_name="pm_root_cause")
    w.box(done=False, check_name="pm_fallback_effective")
    w.shot("postmortem-one-answer")
    w.page.click("#postmortem-state a")
    answers = {
        "fallback_effective": "Yes: polling every 5 minutes kept changes flowing.",
        "reconciliation_completeness": "reconcile --since caught both edits; verify_sync clean.",
        "communication_timeliness": "Tenants were told within ten minutes, with a 30-minute update.",
        "multi_provider_strategy": "Not worth a second CRM for a forty-minute outage.",
        "fallback_reliability": "Polling ran throughout the outage.",
        "local_caching": "Cache the provider's lookups for read paths.",
    }
    for name, text in answers.items():
        w.page.fill(f"[name={name}]", text)
    w.page.click("input[type=submit][value='Save postmortem']")
    w.page.wait_for_selector("#tracker")
    for item in ChecklistItem.objects.filter(incident=w.incident, phase="post_incident"):
        w.box(done=True, evidence="check passed at", pk=item.pk)
    w.shot("postmortem-complete")

    # 10. Closed: nothing left to do, and the page asks for nothing.
    w.move("closed")
    assert w.status() == "closed"
    state = w.page.locator("#postmortem-state").inner_text()
    assert "Complete, by integrations-admin" in state and "Read the postmortem" in state
    assert "Write" not in state and "edit" not in state
    assert w.page.locator("input[value='Notify affected tenants']").count() == 0
    w.shot("closed")
