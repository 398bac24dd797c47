"""Benchmark: the health dashboard's server time and query count at 1 and 10 million sync logs on PostgreSQL.

A fresh database gets 1,400 integrations (200 tenants x 7 providers), then sync logs spread over the last 7 days
(INSERT ... SELECT generate_series; ~3% failed, 0.1% retrying, most with rate-limit headers; HubSpot in outage
for the last 30 minutes), outcome rollups derived from those logs as the sync engine would have kept them,
defects, webhook deliveries, incidents and status readings. Sizes grow in place (1M, then 9M more).
At each size: the median and p95 of several renders of /dashboard/ and /admin/ through Django's test Client,
logged in, and the number of queries of one render. Goal: under 200 ms; the same query count at every size.

Run: .venv/bin/python -m bench.dashboard    (BENCH_SIZES=1000000,10000000 BENCH_RENDERS=15 by default)
"""

import os
import statistics
import time
from datetime import timedelta

SIZES = [int(s) for s in os.environ.get("BENCH_SIZES", "1000000,10000000").split(",") if s.strip()]
RENDERS = int(os.environ.get("BENCH_RENDERS", "15"))
CHUNK = 250_000
TENANTS = 200
DB = os.environ.get("BENCH_DB", "lineup_bench_dashboard")

# One chunk of sync logs: rows g in (start, stop], newest last, spread evenly over 7 days before `now`.
INSERT_LOGS = """
INSERT INTO integrations_synclog (integration_id, tenant_id, provider, direction, object_type, operation, status,
    error_category, error_field, http_status, error_message, endpoint, attempt, next_attempt_at,
    rate_limit_headers, request_excerpt, response_excerpt, duration_ms, created_at, finished_at)
SELECT i.id, i.tenant_id, i.provider, 'push', 'contacts', 'create', s.status, s.category, '',
    CASE WHEN s.status = 'SUCCESS' THEN 200 WHEN s.category = 'connection' THEN NULL ELSE 503 END,
    CASE WHEN s.status = 'SUCCESS' THEN '' ELSE 'bench failure' END,
    CASE WHEN g %% 2 = 0 THEN 'POST /v1/records' ELSE 'GET /v1/records' END,
    1, CASE WHEN s.status = 'RETRYING' THEN t.ts + interval '2 minutes' END,
    CASE WHEN s.category IN ('connection', 'timeout') THEN '{}'::jsonb
         ELSE jsonb_build_object('X-RateLimit-Limit', '100', 'X-RateLimit-Remaining', (g %% 100)::text) END,
    '', '', 120, t.ts, t.ts
FROM generate_series(%(start)s + 1, %(stop)s) AS g
CROSS JOIN LATERAL (SELECT %(now)s::timestamptz - ((%(total)s - g)::float8 / %(total)s) * interval '7 days' AS ts) t
JOIN bench_integ i ON i.n = g %% %(m)s
CROSS JOIN LATERAL (
    SELECT CASE
        WHEN i.provider = 'hubspot' AND t.ts > %(now)s::timestamptz - interval '30 minutes' AND g %% 5 < 2
            THEN 'FAILED'
        WHEN g %% 1000 = 7 THEN 'RETRYING'
        WHEN g %% 100 < 3 THEN 'FAILED'
        ELSE 'SUCCESS' END AS status,
    CASE
        WHEN i.provider = 'hubspot' AND t.ts > %(now)s::timestamptz - interval '30 minutes' AND g %% 5 < 2
            THEN 'connection'
        WHEN g %% 1000 = 7 THEN 'timeout'
        WHEN g %% 100 < 3 THEN (ARRAY['provider_5xx', 'timeout', 'validation'])[1 + g %% 3]
        ELSE '' END AS category
) s
"""

# What the sync engine's rollups.count() would have kept for those logs (one row per minute and key).
ROLLUPS = """
TRUNCATE integrations_outcomerollup;
INSERT INTO integrations_outcomerollup (kind, minute, provider, endpoint, category, count)
SELECT 'sync', date_trunc('minute', created_at), provider, endpoint,
       CASE WHEN status = 'SUCCESS' THEN '' ELSE error_category END, count(*)
FROM integrations_synclog WHERE created_at >= %(now)s::timestamptz - interval '8 days'
GROUP BY 1, 2, 3, 4, 5;
"""


def seed_static(now):
    from django.db import connection

    from incidents.models import Incident
    from integrations.catalog import PROVIDERS
    from integrations.models import Defect, Integration, ProviderStatusReading, Tenant, WebhookDelivery

    tenants = Tenant.objects.bulk_create(
        [Tenant(name=f"Bench {n}", slug=f"bench-{n}") for n in range(TENANTS)]
    )
    integrations = Integration.objects.bulk_create(
        [
            Integration(
                tenant=t,
                provider=p.slug,
                category=p.category,
                auth_type=p.auth_type,
                status="error" if (p.slug == "hubspot" and n % 3 == 0) else "connected",
                expires_at=now + timedelta(hours=5) if n % 50 == 0 else None,
            )
            for n, t in enumerate(tenants)
            for p in PROVIDERS.values()
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE bench_integ AS SELECT id, tenant_id, provider, "
            "row_number() OVER (ORDER BY id) - 1 AS n FROM integrations_integration"
        )
    by_provider = {}
    for i in integrations:
        by_provider.setdefault(i.provider, []).append(i)
    Defect.objects.bulk_create(
        [
            Defect(
                defect_type=["STALE_CRM_SYNC", "STALE_ENRICHMENT", "SYNC_FAILED"][n % 3],
                provider=i.provider,
                tenant_id=i.tenant_id,
                integration=i,
                status="OPEN" if n % 10 == 0 else "RESOLVED",
            )
            for n, i in enumerate(integrations * 20)
        ],
        batch_size=5000,
    )
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                integration=i,
                provider=i.provider,
                event_id=f"evt-{n}",
                status="FAILED" if n % 10 == 8 else "QUEUED" if n % 10 == 9 else "PROCESSED",
            )
            for n, i in enumerate(integrations * 50)
        ],
        batch_size=5000,
    )
    Incident.objects.create(
        runbook="RB-09",
        provider="hubspot",
        title="HubSpot connection errors",
        severity="SEV-2",
        detected_by="IDISIntegrationProviderErrors",
    )
    Incident.objects.create(
        runbook="RB-03", provider="lever", title="Lever rate limited", severity="SEV-3", detected_by="ops"
    )
    for p in PROVIDERS:
        ProviderStatusReading.objects.create(
            provider=p, indicator="major" if p == "hubspot" else "none", description="", read_at=now
        )


def execute(sql: str, params: dict, *, attempts: int = 5):
    """One autocommitted statement, again on a fresh connection if the server cut ours (it rolled back)."""
    from django.db import OperationalError, connection

    for attempt in range(attempts):
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchone() if cursor.description else None
        except OperationalError as e:
            print(f"  (connection lost: {str(e).strip()}; retrying)", flush=True)
            connection.close()
            if attempt == attempts - 1:
                raise


def insert_logs(start: int, stop: int, *, total: int, now) -> None:
    m = 7 * TENANTS
    t0 = time.monotonic()
    for lo in range(start, stop, CHUNK):
        hi = min(stop, lo + CHUNK)
        execute(INSERT_LOGS, {"start": lo, "stop": hi, "total": total, "now": now, "m": m})
        if hi % 1_000_000 == 0 or hi == stop:
            print(f"  inserted sync logs up to {hi:,} ({time.monotonic() - t0:.0f} s)", flush=True)


def measure(size: int, now) -> list[dict]:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    t0 = time.monotonic()
    execute(ROLLUPS, {"now": now})
    execute("ANALYZE", {})
    n_rollups = execute("SELECT count(*) FROM integrations_outcomerollup", {})[0]
    print(f"  rollups rebuilt ({n_rollups:,} rows) and analysed in {time.monotonic() - t0:.0f} s", flush=True)
    user = User.objects.filter(username="bench").first() or User.objects.create_superuser(
        "bench", password="x"
    )
    client = Client()
    client.force_login(user)
    rows = []
    for url in ("/dashboard/", "/admin/", "/dashboard/?provider=hubspot", "/dashboard/?tenant=bench-0"):
        for _ in range(3):  # warm caches and connections
            assert client.get(url).status_code == 200, url
        times = []
        for _ in range(RENDERS):
            t0 = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200
        with CaptureQueriesContext(connection) as ctx:
            client.get(url)
        times.sort()
        rows.append(
            {
                "sync logs": f"{size:,}",
                "rollup rows": f"{n_rollups:,}",
                "page": url,
                "renders": RENDERS,
                "median ms": round(statistics.median(times), 1),
                "p95 ms": round(times[min(len(times) - 1, round(0.95 * (len(times) - 1)))], 1),
                "queries": len(ctx.captured_queries),
                "slowest query ms": round(max(float(q["time"]) for q in ctx.captured_queries) * 1000, 1),
            }
        )
        print("  " + str(rows[-1]), flush=True)
    return rows


def main():
    from bench.harness import setup_django, table

    setup_django(DB, extra_env={"DEBUG": "False", "CONN_MAX_AGE": "60"})
    from django.utils import timezone

    now = timezone.now()
    seed_static(now)
    results, have = [], 0
    for size in sorted(SIZES):
        print(f"growing to {size:,} sync logs", flush=True)
        # The new rows (have, size] land in the most recent part of the week, newest last (as ids grow).
        insert_logs(have, size, total=size, now=now)
        have = size
        results += measure(size, now)
    print()
    print(table(results))


if __name__ == "__main__":
    main()
