"""Issue 14's scenarios, replayed with the clock moved rather than waited for: steady traffic every 10 s,
detection once a minute as beat runs it."""

from datetime import UTC, datetime, timedelta

import pytest

from dashboard import selectors as dashboard
from incidents.models import Incident
from incidents.services.status import incident_advance
from tests.support import factories
from tests.support.incidents import replay

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
