"""Benchmark data on PostgreSQL, generated in SQL (INSERT ... SELECT generate_series), then VACUUM ANALYZE.

Sizes come from the environment (BENCH_SCALE multiplies the defaults; BENCH_N_* set one size outright):

    BENCH_N_TENANTS       2,000         BENCH_N_LOGS     10,000,000
    BENCH_N_INTEGRATIONS 10,000         BENCH_N_DEFECTS   1,000,000
    BENCH_N_RECORDS   1,000,000 (at least BENCH_N_DEFECTS; one RecordLink each)

The layout is deterministic, so the benchmarks know their selections without counting:
- sync log g (0 <= g < N, ids ascending with created_at over the last 14 days) belongs to integration j = g % I;
  round = g // I; it FAILED (a push of a record) when (round + j) % 10 == 0: exactly N/10 rows, scattered
  among successes as they are in production (one FAILED row in ten, never in runs);
- one FAILED log in ten has error_category provider_5xx (N/100 rows: the "100,000" selection at full size);
- the newest 15 minutes of Lever logs are RETRYING with connection errors: an outage for detection to find;
- defect d (created over the last 3 hours, all OPEN) is STALE_ENRICHMENT when d % 10 == 0 (D/10 rows), else
  STALE_CRM_SYNC.
Bulk loads drop the table's secondary indexes and constraints and build them again afterwards (as a restore does).
"""

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import psycopg

from integrations.catalog import PROVIDERS

SLUGS = list(PROVIDERS)
LEVER = SLUGS.index("lever")
DAYS = 14
RECENT_SECONDS = 15 * 60
DEFECT_SPAN_SECONDS = 3 * 3600
CATEGORIES = [
    "provider_5xx",
    "connection",
    "timeout",
    "rate_limited",
    "auth_expired",
    "validation",
    "missing_field",
    "duplicate",
    "mapping",
    "unknown",
]
HTTP = {
    "provider_5xx": 503,
    "rate_limited": 429,
    "auth_expired": 401,
    "validation": 422,
    "missing_field": 422,
    "duplicate": 409,
    "mapping": 422,
    "unknown": 500,
}
ENDPOINTS = {
    "hubspot": "/crm/v3/objects/contacts",
    "salesforce": "/services/data/v59.0/sobjects/Contact",
    "greenhouse": "/v1/candidates",
    "lever": "/v1/opportunities",
    "workday": "/ccx/api/v1/prospects",
    "pandadoc": "/public/v1/documents",
    "clearbit": "/v2/people/find",
}
BATCH = 500_000


@dataclass(frozen=True)
class Sizes:
    tenants: int
    integrations: int
    records: int
    logs: int
    defects: int

    @classmethod
    def from_env(cls) -> "Sizes":
        scale = float(os.environ.get("BENCH_SCALE", "1"))

        def size(name: str, default: int, minimum: int) -> int:
            return max(minimum, int(os.environ.get(f"BENCH_N_{name}") or round(default * scale)))

        tenants = size("TENANTS", 2000, 10)
        # Integrations per tenant: at most one per provider.
        integrations = min(size("INTEGRATIONS", 10_000, 10), tenants * len(SLUGS))
        integrations -= integrations % tenants or 0
        defects = size("DEFECTS", 1_000_000, 100)
        records = max(size("RECORDS", 1_000_000, 100), defects, tenants)
        logs = size("LOGS", 10_000_000, 1000)
        return cls(tenants, max(integrations, tenants), records, logs, defects)

    @property
    def failed_logs(self) -> int:
        return self.logs // 10

    def describe(self) -> str:
        return (
            f"{self.tenants:,} tenants, {self.integrations:,} integrations, {self.records:,} records, "
            f"{self.logs:,} sync logs, {self.defects:,} defects"
        )


def _arr(values) -> str:
    return "(ARRAY[" + ", ".join(f"'{v}'" for v in values) + "])"


PROVIDER_ARR = _arr(SLUGS)
CATEGORY_ARR = _arr(p.category for p in PROVIDERS.values())
AUTH_ARR = _arr(p.auth_type for p in PROVIDERS.values())
MODE_ARR = _arr("webhook" if p.supports_webhooks else "polling" for p in PROVIDERS.values())
KIND_ARR = _arr(p.record_kind for p in PROVIDERS.values())
OBJECT_ARR = _arr(p.object_type for p in PROVIDERS.values())
ENDPOINT_ARR = _arr(ENDPOINTS[s] for s in SLUGS)
ERRCAT_ARR = _arr(CATEGORIES)
HTTP_ARR = "(ARRAY[" + ", ".join(str(HTTP.get(c, "NULL")) for c in CATEGORIES) + "]::int[])"


def _drop_secondary(conn, table: str) -> list[str]:
    """Drop the table's foreign keys, unique constraints and secondary indexes; return the SQL to restore them."""
    cons = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid), contype FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('f', 'u')",
        [table],
    ).fetchall()
    idx = conn.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s::regclass "
        "AND NOT indisprimary AND indexrelid NOT IN (SELECT conindid FROM pg_constraint WHERE conrelid = %s::regclass)",
        [table, table],
    ).fetchall()
    for name, _, _ in cons:
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in idx:
        conn.execute(f"DROP INDEX {name}")
    restore = [definition for _, definition in idx]
    # Unique constraints first (foreign keys may need them), then foreign keys.
    restore += [
        f'ALTER TABLE {table} ADD CONSTRAINT "{n}" {d}' for n, d, t in sorted(cons, key=lambda c: c[2] != "u")
    ]
    return restore


def _connect(url: str):
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SET synchronous_commit = off")
    conn.execute("SET maintenance_work_mem = '512MB'")
    conn.execute("SET work_mem = '64MB'")
    return conn


def _batched(url: str, sql: str, total: int, threads: int = 2) -> None:
    """Run `sql` (with @LO@ and @HI@ bounds of g) over [0, total) in batches, on `threads` connections."""
    bounds = [(lo, min(total, lo + BATCH)) for lo in range(0, total, BATCH)]

    def work(part):
        with _connect(url) as conn:
            for lo, hi in part:
                conn.execute(sql.replace("@LO@", str(lo)).replace("@HI@", str(hi)))

    parts = [bounds[i::threads] for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        for f in [pool.submit(work, p) for p in parts if p]:
            f.result()


def generate(url: str, sizes: Sizes, log=print) -> dict:
    """Fill an empty, migrated database. Returns the seconds each step took."""
    T, NI, R, N, D = sizes.tenants, sizes.integrations, sizes.records, sizes.logs, sizes.defects
    K = NI // T  # integrations per tenant
    per_tenant = max(1, R // T)
    step = DAYS * 86400.0 / N
    recent_from = N - int(RECENT_SECONDS / step)
    times: dict[str, float] = {}
    conn = _connect(url)
    conn.execute("SELECT setseed(0.42)")

    def timed(label: str, fn):
        started = time.monotonic()
        fn()
        times[label] = round(time.monotonic() - started, 1)
        log(f"  {label}: {times[label]} s")

    restore: dict[str, list[str]] = {}
    for table in (
        "integrations_record",
        "integrations_recordlink",
        "integrations_synclog",
        "integrations_defect",
    ):
        restore[table] = _drop_secondary(conn, table)

    def small():
        conn.execute(f"""
            INSERT INTO integrations_tenant (id, name, slug, is_active, created_at)
            SELECT t + 1, 'Tenant ' || lpad(t::text, 5, '0'), 'tenant-' || t, true, now() - interval '400 days'
            FROM generate_series(0, {T - 1}) AS t""")
        conn.execute(f"""
            INSERT INTO integrations_integration (id, tenant_id, provider, category, auth_type, status, enabled,
                sync_paused, sync_paused_reason, sync_paused_source, mode, poll_interval, enrichment_defer_on_error, is_critical, base_url,
                credentials, expires_at, last_success_at, last_error, last_error_category, sync_lease_owner,
                provider_account, webhook_secret, created_at, updated_at)
            SELECT j + 1, j % {T} + 1, {PROVIDER_ARR}[p + 1], {CATEGORY_ARR}[p + 1], {AUTH_ARR}[p + 1],
                CASE WHEN p = {LEVER} THEN 'error' ELSE 'connected' END, true, false, '', '', {MODE_ARR}[p + 1],
                interval '5 minutes', false, j % 20 = 0, '', '', now() + make_interval(hours => j % 72),
                now() - interval '1 minute', '', '', '', '', '', now() - interval '300 days', now() - interval '1 day'
            FROM (SELECT j, (j % {T} + j / {T}) % 7 AS p FROM generate_series(0, {NI - 1}) AS j) AS s""")

    def records():
        _batched(
            url,
            f"""
            INSERT INTO integrations_record (id, tenant_id, kind, external_id, payload, crm_sync_status,
                enrichment_status, created_at, updated_at)
            SELECT r + 1, r % {T} + 1, {KIND_ARR}[(r % {T} + (r / {T}) % {K}) % 7 + 1], gen_random_uuid(),
                jsonb_build_object('email', 'p' || r || '@t' || (r % {T}) || '.example', 'first_name', 'P',
                                   'last_name', r::text),
                CASE WHEN r % 20 = 0 THEN 'FAILED' ELSE 'SYNCED' END, 'NONE', now() - interval '30 days',
                now() - make_interval(secs => (r % 86400)::float8 * 10)
            FROM generate_series(@LO@, @HI@ - 1) AS r""",
            R,
        )
        _batched(
            url,
            f"""
            INSERT INTO integrations_recordlink (id, record_id, integration_id, remote_id, synced_at, failed_at,
                last_error_category)
            SELECT r + 1, r + 1, r % {T} + {T} * ((r / {T}) % {K}) + 1, 'R' || r, now() - interval '1 day',
                CASE WHEN r % 20 = 0 THEN now() - interval '2 hours' END, ''
            FROM generate_series(@LO@, @HI@ - 1) AS r""",
            R,
        )

    def logs():
        _batched(
            url,
            f"""
            INSERT INTO integrations_synclog (id, integration_id, tenant_id, provider, direction, object_type,
                record_id, operation, status, error_category, error_field, http_status, error_message, endpoint,
                attempt, next_attempt_at, rate_limit_headers, request_excerpt, response_excerpt, duration_ms,
                created_at, finished_at)
            SELECT g + 1, j + 1, t + 1, {PROVIDER_ARR}[p + 1], CASE WHEN pull THEN 'pull' ELSE 'push' END,
                {OBJECT_ARR}[p + 1], CASE WHEN pull THEN NULL ELSE t + {T} * (rnd % {per_tenant}) + 1 END,
                CASE WHEN g % 3 = 0 THEN 'create' ELSE 'update' END,
                CASE WHEN outage THEN 'RETRYING' WHEN failed THEN 'FAILED' ELSE 'SUCCESS' END,
                CASE WHEN outage THEN 'connection' WHEN failed THEN {ERRCAT_ARR}[cat + 1] ELSE '' END,
                CASE WHEN failed AND NOT outage AND cat = 6 THEN 'email' ELSE '' END,
                CASE WHEN outage THEN NULL WHEN failed THEN {HTTP_ARR}[cat + 1] ELSE 200 END,
                CASE WHEN outage THEN 'connection refused'
                     WHEN failed THEN {ERRCAT_ARR}[cat + 1] || ': the provider refused the push' ELSE '' END,
                {ENDPOINT_ARR}[p + 1], 1,
                CASE WHEN outage THEN created + interval '1 minute' END, '{{}}'::jsonb, '', '', (g * 37) % 2000,
                created, created + make_interval(secs => ((g * 37) % 2000) / 1000.0)
            FROM (
                SELECT g, j, t, p, rnd, cat, failed, outage, pull AND NOT (failed OR outage) AS pull,
                    now() - make_interval(secs => ({N - 1} - g) * {step}) AS created
                FROM (
                    SELECT g, j, j % {T} AS t, (j % {T} + j / {T}) % 7 AS p, g / {NI} AS rnd,
                        (j / 10 + g / {NI}) % 10 AS cat, (g / {NI} + j) % 10 = 0 AS failed,
                        g >= {recent_from} AND (j % {T} + j / {T}) % 7 = {LEVER} AS outage, g % 20 = 7 AS pull
                    FROM (SELECT g, g % {NI} AS j FROM generate_series(@LO@, @HI@ - 1) AS g) AS a
                ) AS b
            ) AS c""",
            N,
        )

    def defects():
        _batched(
            url,
            f"""
            INSERT INTO integrations_defect (id, defect_type, provider, status, description, resolution, created_at,
                resolved_by, tenant_id, integration_id, record_id)
            SELECT d + 1, CASE WHEN d % 10 = 0 THEN 'STALE_ENRICHMENT' ELSE 'STALE_CRM_SYNC' END,
                {PROVIDER_ARR}[(t + k) % 7 + 1], 'OPEN', 'Stale data after a provider outage', '',
                now() - make_interval(secs => ({D - 1} - d) * {DEFECT_SPAN_SECONDS / D}), '', t + 1,
                t + {T} * k + 1, d + 1
            FROM (SELECT d, d % {T} AS t, (d / {T}) % {K} AS k FROM generate_series(@LO@, @HI@ - 1) AS d) AS s""",
            D,
        )

    timed("tenants and integrations", small)
    timed(f"{R:,} records and record links", records)
    timed(f"{N:,} sync logs", logs)
    timed(f"{D:,} defects", defects)

    def indexes():
        for statements in restore.values():
            for sql in statements:
                conn.execute(sql)

    timed("indexes and constraints", indexes)

    def sequences():
        for table in (
            "integrations_tenant",
            "integrations_integration",
            "integrations_record",
            "integrations_recordlink",
            "integrations_synclog",
            "integrations_defect",
        ):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
            )

    timed("sequences", sequences)

    def rollups():
        # What the engine would have counted as it went: the last day's outcomes per minute (detection, dashboard).
        conn.execute("""
            INSERT INTO integrations_outcomerollup (kind, minute, provider, endpoint, category, count)
            SELECT 'sync', date_trunc('minute', created_at), provider, endpoint,
                   CASE WHEN status = 'SUCCESS' THEN '' ELSE error_category END, count(*)
            FROM integrations_synclog
            WHERE created_at >= now() - interval '24 hours' AND status IN ('SUCCESS', 'FAILED', 'RETRYING')
            GROUP BY 1, 2, 3, 4, 5
            ON CONFLICT DO NOTHING""")

    timed("outcome rollups (last 24 h)", rollups)
    timed("VACUUM ANALYZE", lambda: conn.execute("VACUUM ANALYZE"))
    conn.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value jsonb)")
    conn.execute(
        "INSERT INTO bench_meta VALUES ('sizes', %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        [psycopg.types.json.Jsonb({**asdict(sizes), "generated_at": time.time()})],
    )
    conn.close()
    return times


def stored_sizes(url: str) -> dict | None:
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT value FROM bench_meta WHERE key = 'sizes'").fetchone()
            return row[0] if row else None
    except psycopg.Error:
        return None
