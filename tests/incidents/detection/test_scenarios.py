"""Issue 14's scenarios, replayed with the clock moved rather than waited for: steady traffic every 10 s,
detection once a minute as beat runs it."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from dashboard import selectors as dashboard
from incidents.models import Incident
from incidents.services.status import incident_advance
from tests.support import factories
from tests.support.incidents import failing_logs, replay

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 24, 10, 0, 20, tzinfo=UTC)


@pytest.fixture
def hubspot_tenants():
    return [factories.integration(provider="hubspot", tenant=factories.tenant()) for _ in range(3)]


def opened(passes):
    return [(t, inc) for t, results in passes for inc, created in results if created]


def test_a_full_outage_opens_its_incident_within_2_minutes_of_the_first_error(clock, hubspot_tenants):
    clock.set(T0 - timedelta(minutes=20))
    replay(clock, provider="hubspot", seconds=20 * 60 - 1, failing=lambda t: False)  # 20 healthy minutes
    start = clock.now
    passes = replay(clock, provider="hubspot", seconds=5 * 60, failing=lambda t: True)
    [(t, incident)] = opened(passes)
    assert t <= 120, f"opened {t} s after the first error"
    assert incident.opened_at - start <= timedelta(minutes=2)
    assert incident.detector == "console" and incident.detected_by.startswith("Lineup detection (fast)")


def test_a_1m43s_outage_opens_exactly_one_incident_even_resolved_before_the_window_drains(
    clock, hubspot_tenants, operator
):
    """INC-2 then INC-3 for one finished outage: resolved early, the draining slow window opened a second."""
    clock.set(T0 - timedelta(minutes=20))
    replay(clock, provider="hubspot", seconds=20 * 60 - 1, failing=lambda t: False)

    def resolve_once(t):
        incident = Incident.objects.filter(status="open").first()
        if (
            incident is not None and t > 103 + 60
        ):  # a minute after the outage ended: the window is not drained
            incident_advance(
                incident=incident, actor=operator, to="resolved", override_reason="HubSpot is back"
            )

    passes = replay(
        clock,
        provider="hubspot",
        seconds=30 * 60,
        failing=lambda t: t < 103,
        calls_per_10s=lambda t: 5 if t < 103 else 1,  # traffic falls after the outage, as it did
        each_minute=resolve_once,
    )
    assert len(opened(passes)) == 1
    incident = Incident.objects.get()
    assert incident.status == "resolved"  # nothing reopened it: the outage was over
    assert not incident.events.filter(kind="reopened").exists()


def test_after_recovery_the_dashboard_stops_saying_outage_though_the_15_minute_rate_is_high(
    clock, hubspot_tenants
):
    clock.set(T0 - timedelta(minutes=20))
    replay(clock, provider="hubspot", seconds=20 * 60 - 1, failing=lambda t: False)
    replay(clock, provider="hubspot", seconds=6 * 60, failing=lambda t: t < 6 * 60)  # 6 minutes down
    hub = next(p for p in dashboard.dashboard().providers if p.slug == "hubspot")
    assert hub.outage
    # Ten minutes back, with less traffic than before (as in the report: "Outage" at 39%).
    replay(clock, provider="hubspot", seconds=10 * 60, failing=lambda t: False, calls_per_10s=1)
    hub = next(p for p in dashboard.dashboard().providers if p.slug == "hubspot")
    assert hub.rate_15m > 0.2  # the 15-minute window still remembers the outage ...
    assert not hub.outage  # ... but "Outage" follows the fast window


def test_calls_made_while_processing_webhooks_count_in_the_error_rates(sandbox):
    """HubSpot failures while processing webhooks showed as "0% errors": only webhook failures were counted."""
    from integrations.engine import webhooks
    from integrations.models import WebhookDelivery
    from integrations.selectors.rates import error_rates
    from tests.support.sync import connect

    integration = connect(sandbox, "hubspot", mode="webhook")
    remote = sandbox.create_record("hubspot", integration.tenant.slug, {"email": "w@example.com"})
    sandbox.control("hubspot", mode="down")
    delivery = WebhookDelivery.objects.create(
        integration=integration, provider="hubspot", event_id="e-1", payload={"remote_ids": [remote["id"]]}
    )
    webhooks.process_webhook(delivery.pk)
    sandbox.control("hubspot", mode="ok")
    # Queued again, due now (as "Queue webhook retries" does): a delivery not yet due is not processed.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="QUEUED", next_attempt_at=timezone.now())
    webhooks.process_webhook(delivery.pk)

    hub = error_rates(minutes=2)["hubspot"]
    assert (hub.calls, hub.errors, dict(hub.by_category)) == (2, 1, {"provider_5xx": 1})


def test_every_tenant_of_a_provider_needing_reauth_opens_one_rb02_incident_with_no_calls_at_all():
    """Expired and revoked Salesforce tokens everywhere: needs_reauth integrations stop calling, nothing opened."""
    from incidents.detection import rates

    tenants = [factories.tenant() for _ in range(3)]
    for t in tenants:
        factories.integration(
            provider="salesforce", tenant=t, status="needs_reauth", last_error_category="auth_refresh_failed"
        )
    factories.integration(provider="hubspot", status="connected")

    [(incident, created)] = rates.detect()
    assert created and (incident.provider, incident.runbook) == ("salesforce", "RB-02")
    assert incident.detected_by.startswith("Lineup detection (state): 3 of 3 integrations (3 tenants)")
    assert incident.affected_tenants.count() == 3
    [(again, created)] = rates.detect()
    assert again.pk == incident.pk and not created and Incident.objects.count() == 1


def test_one_tenant_or_a_minority_in_trouble_is_not_a_provider_incident():
    from incidents.detection import rates

    factories.integration(provider="salesforce", status="needs_reauth")  # one tenant only
    assert rates.detect() == []
    for _ in range(3):
        factories.integration(provider="salesforce", status="connected")
    factories.integration(provider="salesforce", status="needs_reauth")  # 2 of 5: under half
    assert rates.detect() == []


def test_erring_integrations_with_calls_stopped_open_an_outage_runbook():
    from django.utils import timezone

    from incidents.detection import rates

    for _ in range(2):
        factories.integration(
            provider="greenhouse",
            status="error",
            last_error_at=timezone.now() - timedelta(minutes=3),
            last_error_category="connection",
        )
    [(incident, _)] = rates.detect()
    assert (incident.provider, incident.runbook, incident.dominant_category) == (
        "greenhouse",
        "RB-01",
        "connection",
    )


def test_a_status_page_at_major_opens_one_incident_without_traffic():
    """The demo's Clearbit: down, its status page at "major", and no incident because no traffic reached it."""
    from django.utils import timezone

    from incidents.detection import rates
    from integrations.models import ProviderStatusReading

    factories.integration(provider="clearbit")
    ProviderStatusReading.objects.create(
        provider="clearbit", indicator="major", description="API outage", read_at=timezone.now()
    )
    [(incident, created)] = rates.detect()
    assert created and (incident.provider, incident.runbook, incident.severity) == (
        "clearbit",
        "RB-09",
        "SEV-2",
    )
    assert "status page says major" in incident.detected_by
    assert rates.detect()[0][0].pk == incident.pk and Incident.objects.count() == 1
    ProviderStatusReading.objects.filter(provider="clearbit").update(
        read_at=timezone.now() - timedelta(hours=3)
    )
    Incident.objects.update(status="closed")
    assert rates.detect() == []  # a stale reading says nothing


def _outage_then_resolve(clock, operator, *, down_seconds=3 * 60):
    clock.set(T0 - timedelta(minutes=20))
    replay(clock, provider="hubspot", seconds=20 * 60 - 1, failing=lambda t: False)
    replay(clock, provider="hubspot", seconds=down_seconds, failing=lambda t: True)
    replay(clock, provider="hubspot", seconds=3 * 60, failing=lambda t: False)  # seems over
    incident = Incident.objects.get()
    incident_advance(incident=incident, actor=operator, to="resolved", override_reason="looks fine")
    return incident


def test_resolving_then_a_late_signal_reopens_the_same_incident(clock, hubspot_tenants, operator):
    incident = _outage_then_resolve(clock, operator)
    replay(clock, provider="hubspot", seconds=10 * 60, failing=lambda t: False)
    assert Incident.objects.get().status == "resolved"  # the draining slow window reopened nothing
    replay(clock, provider="hubspot", seconds=3 * 60, failing=lambda t: True)  # it was not over

    assert Incident.objects.count() == 1
    incident.refresh_from_db()
    assert incident.status == "acknowledged" and incident.resolved_at is None  # it was acknowledged before
    [event] = incident.events.filter(kind="reopened")
    assert "resolved 10 min ago" in event.message and event.details["from"] == "resolved"
    assert incident.events.filter(kind="opened").count() == 1


def test_a_signal_long_after_the_resolution_opens_a_new_incident(clock, hubspot_tenants, operator, settings):
    settings.INCIDENT_REOPEN_MINUTES = 30
    first = _outage_then_resolve(clock, operator)
    replay(clock, provider="hubspot", seconds=31 * 60, failing=lambda t: False)
    replay(clock, provider="hubspot", seconds=3 * 60, failing=lambda t: True)
    assert Incident.objects.count() == 2
    first.refresh_from_db()
    assert first.status == "resolved" and not first.events.filter(kind="reopened").exists()


def test_checks_never_complete_items_of_a_resolved_incident_but_its_postmortem_steps(
    clock, hubspot_tenants, operator
):
    """Checks kept completing items on resolved incidents."""
    from incidents.models import ChecklistItem
    from incidents.services.checklist import incident_evaluate_checks

    incident = _outage_then_resolve(clock, operator)
    before = {i.pk: (i.done, i.check_result, i.checked_at) for i in incident.checklist.all()}
    replay(clock, provider="hubspot", seconds=20 * 60, failing=lambda t: False)  # all clean now
    incident_evaluate_checks(incident=incident)
    after = {i.pk: (i.done, i.check_result, i.checked_at) for i in incident.checklist.all()}
    changed = [pk for pk in before if before[pk] != after[pk]]
    assert changed and set(ChecklistItem.objects.filter(pk__in=changed).values_list("phase", flat=True)) == {
        "post_incident"
    }
    incident.refresh_from_db()
    assert incident.status == "resolved"


def test_five_clean_minutes_after_the_outage_note_recovered_at_t_and_the_verification_check_uses_it(
    clock, hubspot_tenants
):
    from incidents.checklist.checks import success_rate_restored

    clock.set(T0 - timedelta(minutes=20))
    replay(clock, provider="hubspot", seconds=20 * 60 - 1, failing=lambda t: False)
    replay(clock, provider="hubspot", seconds=4 * 60, failing=lambda t: True)
    incident = Incident.objects.get()
    last_error_minute = clock.now.replace(second=0)
    assert incident.recovered_at is None
    assert not success_rate_restored(incident).passed

    replay(clock, provider="hubspot", seconds=4 * 60, failing=lambda t: False)
    incident.refresh_from_db()
    assert incident.recovered_at is None  # four clean minutes are not yet a recovery

    replay(clock, provider="hubspot", seconds=3 * 60, failing=lambda t: False)
    incident.refresh_from_db()
    assert incident.recovered_at == last_error_minute + timedelta(minutes=1)
    [event] = incident.events.filter(kind="recovery")
    assert event.message.startswith(f"Recovered at {incident.recovered_at:%H:%M}")
    assert "recovered at" in success_rate_restored(incident).evidence

    replay(clock, provider="hubspot", seconds=60, failing=lambda t: t < 30)  # errors again
    incident.refresh_from_db()
    assert incident.recovered_at is None
    assert incident.events.filter(kind="recovery").last().message.startswith("Errors again")


def test_silence_is_not_a_recovery(clock, hubspot_tenants):
    clock.set(T0)
    replay(clock, provider="hubspot", seconds=4 * 60, failing=lambda t: True)
    replay(clock, provider="hubspot", seconds=15 * 60, failing=lambda t: False, calls_per_10s=0)
    assert Incident.objects.get().recovered_at is None


def test_integrations_still_showing_error_after_recovery_do_not_reopen_a_resolved_incident(clock, operator):
    """After an outage, sparse traffic leaves integrations in 'error' until their next call: not a new signal."""
    from django.utils import timezone

    from incidents.detection import rates
    from tests.support.incidents import traffic

    integrations = [factories.integration(provider="greenhouse") for _ in range(3)]
    for integration in integrations:
        failing_logs(integration, 2, category="connection")
    [(incident, _)] = rates.detect()
    incident_advance(incident=incident, actor=operator, to="resolved", override_reason="back")
    clock.advance(minutes=3)
    traffic("greenhouse", at=timezone.now(), calls=5)  # calls succeed again
    assert rates.detect() == []
    incident.refresh_from_db()
    assert incident.status == "resolved"
