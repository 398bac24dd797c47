"""Detection: the error rate per provider over 15 minutes opens one incident with the runbook of the dominant
category, the provider's severity and the affected tenants; a second pass updates it."""

from datetime import timedelta

import pytest
from django.core.management import call_command

from incidents.detection import rates
from incidents.models import ChecklistItem, Incident
from integrations.engine import rollups
from integrations.models import Record
from tests.support import factories
from tests.support.incidents import failing_logs

pytestmark = pytest.mark.django_db


def _tenants(incident):
    return sorted(incident.affected_tenants.values_list("slug", flat=True))


def test_provider_outage_opens_one_rb01_sev3_incident_with_its_tenants_and_checklist():
    a, b, quiet = factories.tenant(slug="acme"), factories.tenant(slug="bolt"), factories.tenant(slug="quiet")
    for t in (a, b):
        failing_logs(factories.integration(tenant=t, provider="hubspot"), 4)
    healthy = factories.integration(tenant=quiet, provider="hubspot")
    factories.sync_log(integration=healthy, status="SUCCESS")

    [(incident, created)] = rates.detect()

    assert created
    assert (incident.runbook, incident.severity, incident.detector) == ("RB-01", "SEV-3", "console")
    # The console's own detection says so, not the Prometheus alert's name (issue 14).
    assert incident.detected_by.startswith("Lineup detection (fast)")
    assert incident.fallback_available
    assert _tenants(incident) == ["acme", "bolt"]
    assert incident.dominant_category == "provider_5xx"
    assert incident.error_rate == pytest.approx(8 / 9, abs=0.01)
    assert incident.impact["by_endpoint"]["/crm/v3/objects/contacts"]["errors"] == 8
    assert ChecklistItem.objects.filter(incident=incident, action="disable_integration").exists()
    assert incident.events.filter(kind="opened").count() == 1


def test_second_detection_run_updates_the_open_incident_and_adds_new_tenants():
    first = factories.tenant(slug="first")
    failing_logs(factories.integration(tenant=first, provider="hubspot"), 6)
    [(incident, _)] = rates.detect()
    later = factories.tenant(slug="later")
    failing_logs(factories.integration(tenant=later, provider="hubspot"), 6)

    [(again, created)] = rates.detect()

    assert not created and again.pk == incident.pk
    assert Incident.objects.count() == 1
    assert _tenants(again) == ["first", "later"]
    assert again.checklist.count() == incident.checklist.count()


def test_management_command_runs_one_pass(capsys):
    failing_logs(factories.integration(provider="hubspot"), 6)
    call_command("detect_incidents")
    call_command("detect_incidents")
    assert Incident.objects.count() == 1
    assert "updated INC-" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("provider", "category", "runbook", "severity"),
    [
        ("hubspot", "auth_expired", "RB-02", "SEV-3"),
        ("salesforce", "auth_refresh_failed", "RB-02", "SEV-2"),
        ("hubspot", "rate_limited", "RB-03", "SEV-3"),
        ("greenhouse", "validation", "RB-04", "SEV-3"),
        ("hubspot", "missing_field", "RB-04", "SEV-3"),
        ("salesforce", "connection", "RB-01", "SEV-2"),
        ("clearbit", "timeout", "RB-09", "SEV-2"),
        ("pandadoc", "provider_5xx", "RB-09", "SEV-3"),
    ],
)
def test_runbook_follows_the_dominant_category_and_severity_the_fallback(
    provider, category, runbook, severity
):
    failing_logs(factories.integration(provider=provider), 6, category=category)
    [(incident, _)] = rates.detect()
    assert (incident.runbook, incident.severity) == (runbook, severity)


def test_webhook_delivery_failures_make_a_crm_outage_rb09():
    from integrations.models import WebhookDelivery

    integration = factories.integration(provider="hubspot")
    failing_logs(integration, 6, category="connection")
    WebhookDelivery.objects.create(
        integration=integration, provider="hubspot", event_id="e1", status="FAILED"
    )
    rollups.count(
        kind="webhook", provider="hubspot", endpoint="webhook", category="connection"
    )  # as the engine does
    [(incident, _)] = rates.detect()
    assert incident.runbook == "RB-09"


def test_below_threshold_or_too_few_errors_opens_nothing(settings):
    integration = factories.integration(provider="hubspot")
    failing_logs(integration, 4)  # fewer than INCIDENT_MIN_ERRORS (5)
    assert rates.detect() == []
    failing_logs(integration, 2)
    for _ in range(60):
        factories.sync_log(integration=integration, status="SUCCESS", endpoint="/crm/v3/objects/contacts")
    settings.INCIDENT_SLOW_ERROR_RATE_THRESHOLD = 0.1
    assert rates.detect() == []  # 6 errors of 66 attempts: under 20 % (fast) and 10 % (slow)
    settings.INCIDENT_SLOW_ERROR_RATE_THRESHOLD = 0.05
    [(incident, _)] = rates.detect()  # 9 % over 15 minutes, still erring: sustained errors
    assert incident.detected_by.startswith("Lineup detection (slow)")


def test_one_failing_endpoint_opens_an_incident_even_when_the_provider_rate_is_low():
    integration = factories.integration(provider="hubspot")
    failing_logs(integration, 6, endpoint="/crm/v3/objects/contacts/search")
    for _ in range(60):
        factories.sync_log(integration=integration, status="SUCCESS", endpoint="/crm/v3/objects/contacts")
    [(incident, _)] = rates.detect()
    assert incident.impact["hot_endpoints"] == ["/crm/v3/objects/contacts/search"]


def test_errors_older_than_the_window_do_not_count():
    failing_logs(factories.integration(provider="hubspot"), 10, ago=timedelta(minutes=20))
    assert rates.detect() == []


def test_impact_scope_counts_failed_records_per_tenant():
    t = factories.tenant(slug="acme")
    integration = factories.integration(tenant=t, provider="hubspot")
    records = [factories.record(tenant=t) for _ in range(3)]
    Record.objects.filter(pk__in=[r.pk for r in records]).update(crm_sync_status="FAILED")
    for r in records:
        failing_logs(integration, 2, record=r)
    [(incident, _)] = rates.detect()
    assert incident.impact["failed_records_by_tenant"] == {"acme": 3}
    assert incident.impact["failing_integrations"][0]["tenant"] == "acme"


def test_beat_tasks_detect_and_evaluate():
    from incidents import tasks
    from incidents.schedules import SCHEDULES
    from lineup_ops.celery import app

    assert {task: every for task, every in SCHEDULES.values()} == {
        "incidents.detect": 60,
        "incidents.evaluate_checks": 60,
        "incidents.send_due_notifications": 30,
    }
    assert all(task in app.tasks for task, _ in SCHEDULES.values())
    failing_logs(factories.integration(provider="hubspot"), 6)
    assert tasks.detect.delay().get() == {"opened": 1, "updated": 0}
    assert tasks.detect.delay().get() == {"opened": 0, "updated": 1}
    assert tasks.evaluate_checks.delay().get() >= 0
