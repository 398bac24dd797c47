"""Issue 13, M4 and L7: a year-1 time (Alertmanager's zero time) never makes a screen answer 500 west of UTC."""

import json
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from incidents.models import Incident

pytestmark = pytest.mark.django_db

YEAR_ONE = datetime(1, 1, 1, tzinfo=UTC)


def test_alertmanagers_zero_start_time_is_taken_as_unset(client):
    from tests.support import factories

    _, token = factories.api_token(scope="admin")
    body = {
        "version": "4",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "IntegrationErrorRate", "provider": "hubspot"},
                "annotations": {"summary": "HubSpot errors"},
                "startsAt": "0001-01-01T00:00:00Z",
            }
        ],
    }
    answer = client.post(
        "/api/v1/alerts",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert answer.status_code == 200
    assert all(i.started_at is None or i.started_at.year > 1 for i in Incident.objects.all())


def test_a_providers_year_one_timestamp_is_taken_as_absent():
    from integrations.providers.base import parse_timestamp

    assert parse_timestamp("0001-01-01T00:00:00Z") is None
    assert parse_timestamp("2026-01-01T00:00:00Z").year == 2026


def test_the_migration_clears_stored_year_one_start_times():
    import importlib

    from django.apps import apps

    migration = importlib.import_module("incidents.migrations.0006_issue13_clear_year_one_times")
    incident = Incident.objects.create(
        runbook="RB-01", provider="hubspot", title="x", severity="SEV-3", detected_by="test"
    )
    Incident.objects.filter(pk=incident.pk).update(started_at=YEAR_ONE)
    migration.clear(apps, None)
    incident.refresh_from_db()
    assert incident.started_at is None


def test_screens_render_for_an_operator_west_of_utc_after_a_zero_time_alert(client, superuser):
    test_alertmanagers_zero_start_time_is_taken_as_unset(client)
    incident = Incident.objects.first() or Incident.objects.create(
        runbook="RB-01", provider="hubspot", title="x", severity="SEV-3", detected_by="test"
    )
    client.force_login(superuser)
    client.cookies["lo_tz"] = "America/Los_Angeles"
    for url in (
        reverse("admin:index"),
        "/dashboard/",
        reverse("admin:incidents_incident_changelist"),
        reverse("admin:incidents_incident_change", args=[incident.pk]),
    ):
        response = client.get(url)
        assert response.status_code < 500, url
