"""Issue 15: the dashboard groups providers by kind of trouble, and "failing since" is the first failure's time."""

from datetime import timedelta

import pytest
from django.utils import timezone

from dashboard import selectors
from integrations.engine import rollups
from tests.support import factories

pytestmark = pytest.mark.django_db


def _fail(provider, category, n=10, *, ago=timedelta(seconds=20)):
    integration = factories.integration(provider=provider, tenant=factories.tenant(slug=f"{provider}-t"))
    at = timezone.now() - ago
    for _ in range(n):
        factories.sync_log(
            integration=integration, status="FAILED", error_category=category, created_at=at, count=False
        )
    rollups.count(provider=provider, endpoint="POST /x", category=category, at=at, n=n)
    return integration, at


def test_token_expiry_and_validation_are_not_listed_as_outages():
    _fail("hubspot", "provider_5xx")
    _fail("salesforce", "auth_expired")
    _fail("greenhouse", "rate_limited")
    _fail("lever", "validation")
    groups = {kind: [p.slug for p in rows] for kind, _, rows in selectors.dashboard().by_trouble}
    assert groups == {
        "outage": ["hubspot"],
        "auth": ["salesforce"],
        "rate_limited": ["greenhouse"],
        "data": ["lever"],
    }


def test_failing_since_is_the_first_failures_time_and_is_gone_after_recovery():
    integration, at = _fail("hubspot", "provider_5xx")
    hub = {p.slug: p for p in selectors.dashboard().providers}["hubspot"]
    assert hub.failing_since == at  # not the start of its 15-minute bucket
    factories.sync_log(integration=integration, status="SUCCESS", created_at=timezone.now(), count=False)
    hub = {p.slug: p for p in selectors.dashboard().providers}["hubspot"]
    assert hub.failing_since is None


def test_the_dashboard_card_groups_by_kind(client, operator):
    _fail("hubspot", "provider_5xx")
    _fail("salesforce", "auth_invalid")
    client.force_login(operator)
    page = client.get("/dashboard/").content.decode()
    assert "Providers in trouble" in page
    assert 'data-trouble="outage"' in page and 'data-trouble="auth"' in page
