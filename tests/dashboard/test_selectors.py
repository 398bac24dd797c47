"""The dashboard's numbers: from rollups, integrations, queues, defects, incidents and status readings."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from dashboard import selectors
from dashboard.charts import meter, sparkline
from integrations.engine import rollups
from tests.support import factories
from tests.support.dashboard_seed import HUB_ENDPOINT, outage_scene

pytestmark = pytest.mark.django_db


def by_slug(dash):
    return {p.slug: p for p in dash.providers}


def test_error_rate_and_errors_by_endpoint_come_from_the_last_15_minutes_of_rollups():
    scene = outage_scene()
    hub = by_slug(selectors.dashboard(now=scene["now"]))["hubspot"]

    assert (hub.calls_15m, hub.errors_15m) == (100, 40)
    assert hub.rate_15m == pytest.approx(0.4)
    assert hub.by_endpoint == [(HUB_ENDPOINT, 30), ("GET /crm/v3/objects/contacts", 10)]
    assert hub.by_category == [("provider_5xx", 30), ("timeout", 10)]
    # The 15 minutes before were clean: the rate is rising.
    assert (hub.calls_prev, hub.errors_prev) == (100, 0)
    assert hub.trend == "worse"


def test_the_24_hour_series_has_96_quarter_hours_and_ignores_older_rollups():
    scene = outage_scene()
    dash = by_slug(selectors.dashboard(now=scene["now"]))
    hub, gh = dash["hubspot"], dash["greenhouse"]

    assert len(hub.series) == 96
    assert sum(b.calls for b in hub.series) == 100 + 100 + 7
    assert sum(b.errors for b in hub.series) == 40 + 7
    assert sum(b.errors for b in gh.series) == 2  # the 50 errors of 30 hours ago are off the chart
    assert hub.series[-1].start <= scene["now"] < hub.series[-1].start + timedelta(minutes=15)
    assert hub.failing_since is not None


def test_buckets_are_quarter_hours_in_utc():
    now = datetime(2026, 3, 1, 12, 7, 30, tzinfo=UTC)
    factories.integration(provider="lever")
    rollups.count(
        provider="lever", endpoint="GET /v1/opportunities", at=datetime(2026, 3, 1, 11, 59, tzinfo=UTC), n=4
    )
    rollups.count(
        provider="lever",
        endpoint="GET /v1/opportunities",
        category="timeout",
        at=datetime(2026, 3, 1, 12, 1, tzinfo=UTC),
        n=1,
    )
    lever = by_slug(selectors.dashboard(now=now))["lever"]

    assert lever.series[-1].start == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert (lever.series[-1].calls, lever.series[-1].errors) == (1, 1)
    assert lever.series[-2].start == datetime(2026, 3, 1, 11, 45, tzinfo=UTC)
    assert (lever.series[-2].calls, lever.series[-2].errors) == (4, 0)


def test_status_counts_and_tokens_expiring_within_24_hours():
    scene = outage_scene()
    dash = by_slug(selectors.dashboard(now=scene["now"]))

    assert dash["hubspot"].status_counts == {"connected": 1, "error": 1}
    assert dash["greenhouse"].status_counts == {"connected": 1, "needs_reauth": 1}
    assert dash["greenhouse"].expiring_24h == 1  # the other one expires in 3 days
    assert dash["hubspot"].expiring_24h == 0


def test_rate_limit_headroom_uses_the_newest_headers_even_behind_a_newer_row_without_them():
    scene = outage_scene()
    dash = by_slug(selectors.dashboard(now=scene["now"]))

    hub = dash["hubspot"].headroom
    assert (hub.remaining, hub.limit, hub.log_id) == (7, 100, scene["headers_log"].pk)
    assert hub.fraction == pytest.approx(0.07)
    gh = dash["greenhouse"].headroom
    assert (gh.remaining, gh.limit) == (44, 50)


def test_queue_depths_defects_incidents_and_status_pages():
    scene = outage_scene()
    dash = selectors.dashboard(now=scene["now"])
    hub = by_slug(dash)["hubspot"]

    assert hub.queue == {
        "retrying": 2,
        "retrying_due": 1,
        "pending": 0,
        "running": 0,
        "webhook_failed": 2,
        "webhook_queued": 0,
    }
    assert hub.defects == {"STALE_CRM_SYNC": 3, "STALE_ENRICHMENT": 1}
    assert [i["id"] for i in dash.incidents] == [scene["incident"].pk]  # the closed one is not open
    assert dash.incidents[0]["n_tenants"] == 1
    assert hub.status_page["indicator"] == "major"


def test_a_provider_is_in_outage_for_its_error_rate_its_status_page_or_an_open_sev2():
    scene = outage_scene()
    dash = by_slug(selectors.dashboard(now=scene["now"]))

    assert dash["hubspot"].outage
    assert dash["hubspot"].outage_reasons == [
        "error rate 33% over 20% in the last 2 min",
        "status page: major",
        "open SEV-2 incident",
    ]
    assert not dash["greenhouse"].outage  # 2% errors, status page "none"


def test_a_few_errors_on_a_quiet_provider_are_not_an_outage():
    factories.integration(provider="workday")
    rollups.count(provider="workday", endpoint="GET /prospects", category="timeout", n=2)
    workday = by_slug(selectors.dashboard())["workday"]
    assert workday.rate_15m == 1.0
    assert not workday.outage  # below INCIDENT_MIN_ERRORS (5)


def test_totals_add_up_every_provider_shown():
    scene = outage_scene()
    dash = selectors.dashboard(now=scene["now"])
    totals = dash.totals

    assert totals.is_total
    assert (totals.calls_15m, totals.errors_15m) == (200, 42)
    assert totals.status_counts == {"connected": 2, "error": 1, "needs_reauth": 1}
    assert totals.queue["webhook_failed"] == 2
    assert sum(b.calls for b in totals.series) == 207 + 100


def test_filtered_to_a_tenant_counts_only_its_integrations_queues_defects_and_incidents():
    scene = outage_scene()
    dash = selectors.dashboard(now=scene["now"], tenant_slug="globex")
    hub = by_slug(dash)["hubspot"]

    assert dash.tenant == scene["globex"]
    assert hub.status_counts == {"connected": 1}
    assert hub.queue["retrying"] == 1
    assert hub.queue["webhook_failed"] == 0
    assert hub.defects == {"STALE_ENRICHMENT": 1}
    assert dash.incidents == []  # the SEV-2 affects acme only
    assert hub.calls_15m == 100  # error rates stay provider-wide (rollups have no tenant)


def test_filtered_to_one_provider_and_to_an_unknown_tenant():
    scene = outage_scene()
    only_gh = selectors.dashboard(now=scene["now"], provider="greenhouse")
    assert [p.slug for p in only_gh.providers] == ["greenhouse"]
    assert only_gh.incidents == []

    unknown = selectors.dashboard(now=scene["now"], tenant_slug="nobody")
    assert unknown.tenant_missing and unknown.providers == []
    # An unknown provider slug is ignored rather than an error.
    assert selectors.dashboard(now=scene["now"], provider="../etc").provider_filter == ""


def test_an_empty_database_shows_no_providers():
    dash = selectors.dashboard()
    assert dash.providers == [] and dash.incidents == []
    assert dash.totals.calls_15m == 0


def test_unused_providers_stay_off_the_dashboard():
    factories.integration(provider="lever")
    assert [p.slug for p in selectors.dashboard().providers] == ["lever"]


def test_charts_are_inline_svg_with_an_accessible_name():
    now = timezone.now()
    buckets = [selectors.Bucket(start=now, calls=10, errors=e) for e in (0, 1, 5)] + [
        selectors.Bucket(start=now)
    ]
    svg = str(sparkline(buckets, threshold=0.2, label="HubSpot <24h>"))
    assert svg.startswith("<svg") and 'role="img"' in svg and "HubSpot &lt;24h&gt;" in svg
    assert svg.count("<rect") == 4
    assert "dash-spark-bad" in svg and "dash-spark-ok" in svg and "dash-spark-none" in svg
    assert "dash-meter-bad" in str(meter(0.05, label="x"))
    assert str(meter(None, label="x")) == ""
