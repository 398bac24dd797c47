"""Outcome rollups, /metrics for Prometheus, and the providers' status pages."""

import pytest

from integrations.engine import rollups, run
from integrations.engine.status_pages import read_status_page
from integrations.models import OutcomeRollup, ProviderStatusReading
from integrations.selectors import rates
from tests.support import factories
from tests.support.sync import connect, local_records

pytestmark = pytest.mark.django_db


def test_failures_and_successes_are_counted_per_provider_and_endpoint(sandbox):
    integration = connect(sandbox, "greenhouse")
    local_records(integration, 2)
    local_records(integration, 1, email="x@bad.example")
    sandbox.control("greenhouse", reject={"field": "email", "contains": "@bad"})
    run.sync_integration(integration.pk, pull=False)
    greenhouse = rates.error_rates(minutes=15)["greenhouse"]
    assert (greenhouse.calls, greenhouse.errors) == (3, 1)
    assert dict(greenhouse.by_endpoint) == {"/v1/candidates": [1, 3]}
    assert list(greenhouse.by_category) in (["validation"], ["missing_field"])


def test_metrics_exports_integration_errors_total_by_provider_and_endpoint(client, sandbox, settings):
    integration = connect(sandbox, "hubspot")
    local_records(integration, 2)
    sandbox.control("hubspot", mode="down")
    run.sync_integration(integration.pk, pull=False)
    settings.METRICS_PUBLIC = True  # closed by default (issue 13): opened explicitly here
    text = client.get("/metrics").content.decode()
    # HubSpot takes batches (issue 12): two records, one batch/create call, two failed attempts.
    assert (
        'integration_errors_total{endpoint="/crm/v3/objects/contacts/batch/create",provider="hubspot"} 2.0'
        in text
    )
    assert "# TYPE webhook_delivery_failures_total counter" in text
    assert 'lineup_integrations{provider="hubspot",status="error"} 1.0' in text
    assert 'lineup_sync_queue_depth{state="retrying_later"} 2.0' in text
    settings.METRICS_TOKEN = "scrape-me"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me").status_code == 200


def test_counts_add_up_in_one_row_per_minute_and_key():
    for _ in range(3):
        rollups.count(provider="lever", endpoint="/v1/opportunities", category="timeout")
    assert OutcomeRollup.objects.get().count == 3


def test_status_page_is_read_through_the_adapter_and_shows_an_outage(sandbox):
    connect(sandbox, "greenhouse")
    assert read_status_page("greenhouse").indicator == "none"
    sandbox.control("greenhouse", mode="down")
    reading = read_status_page("greenhouse")
    assert reading.indicator in ("major", "critical") and reading.read_at
    assert ProviderStatusReading.objects.count() == 1
    factories.integration(provider="salesforce", base_url=sandbox.base_url("salesforce"))
    assert read_status_page("salesforce").indicator == "none"
    assert read_status_page("workday") is None  # nobody uses it: nothing to read
