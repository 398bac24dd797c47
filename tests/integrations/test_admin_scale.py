"""The sync-log changelist at 200,000 rows on PostgreSQL: constant queries, no full-table COUNT."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.support import factories

pytestmark = pytest.mark.django_db


def _fill(integration, n: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO integrations_synclog (integration_id, tenant_id, provider, direction, object_type, operation,
                status, error_category, error_field, error_message, endpoint, attempt, rate_limit_headers,
                request_excerpt, response_excerpt, created_at)
            SELECT %s, %s, %s, 'push', 'contacts', 'create',
                CASE WHEN g %% 10 = 0 THEN 'FAILED' ELSE 'SUCCESS' END,
                CASE WHEN g %% 10 = 0 THEN 'provider_5xx' ELSE '' END, '', '', '/crm/v3/objects/contacts', 1,
                '{}'::jsonb, '', '', now() - (g || ' seconds')::interval
            FROM generate_series(1, %s) AS g
            """,
            [integration.pk, integration.tenant_id, integration.provider, n],
        )
        cursor.execute("ANALYZE integrations_synclog")


def test_sync_log_changelist_at_200k_rows(postgres, client, operator):
    hub = factories.integration(provider="hubspot")
    client.force_login(operator)
    url = reverse("admin:integrations_synclog_changelist")
    filtered = url + "?status__exact=FAILED"

    def render(u):
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(u)
        assert response.status_code == 200
        return response, [q["sql"] for q in ctx.captured_queries]

    _fill(hub, 110_000)  # 11,000 failed: above the size that gets an exact count
    _, small = render(url)
    _, small_filtered = render(filtered)
    _fill(hub, 90_000)
    response, big = render(url)
    _, big_filtered = render(filtered)
    assert len(big) == len(small) and len(big_filtered) == len(small_filtered)
    counts = [q for q in big if "COUNT(" in q.upper() and "integrations_synclog" in q]
    assert counts == [], counts  # the unfiltered list uses the planner's estimate
    assert "reltuples" in " ".join(big)
    shown = re.search(r"([\d,]+)\s+sync logs", response.content.decode())
    assert shown and 180_000 <= int(shown.group(1).replace(",", "")) <= 220_000  # an estimate, near the truth
