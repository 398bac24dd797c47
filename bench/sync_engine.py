"""`python -m bench.sync_engine`: records per provider call, and the engine's own time per record (issue 12).

A backlog of BENCH_SYNC_RECORDS (default 2,000) new records per provider is pushed to the in-process sandbox by
`engine.run.sync_integration`, run after run until nothing is left, on PostgreSQL (BENCH_SYNC_DB, default the
developer's database, dropped and re-created) with the quota in Redis (BENCH_SYNC_REDIS).

- records per call: records pushed / provider calls made (every BaseClient request, token calls included);
- engine overhead per record: (wall time of the runs - time inside provider requests) / records: the
  engine's own queries, sync-log rows, rollups and leases, against the 5 ms goal. The time inside requests
  includes the sandbox's own work, which runs in this process (so this is an upper bound of neither side).
"""

import os
import sys
import time
import uuid


def main() -> None:
    from bench.harness import setup_django

    n = int(os.environ.get("BENCH_SYNC_RECORDS", "2000"))
    redis_url = os.environ.get("BENCH_SYNC_REDIS", "redis://127.0.0.1:6379/5")
    setup_django(
        os.environ.get("BENCH_SYNC_DB", "lineup_wt12"),
        extra_env={"RATE_LIMIT_STORAGE_URL": redis_url, "CELERY_BROKER_URL": redis_url},
    )
    import requests

    from integrations.catalog import PROVIDERS
    from integrations.engine import run
    from integrations.engine.quota import provider_quota
    from integrations.models import Integration, Record, SyncLog, Tenant
    from integrations.providers import base
    from sandbox import SandboxServer

    server = SandboxServer(host="127.0.0.1", port=0)
    server.start()
    spent = {"seconds": 0.0, "calls": 0}
    original = base.BaseClient._request

    def timed(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            spent["seconds"] += time.perf_counter() - started
            spent["calls"] += 1

    base.BaseClient._request = timed
    rows = []
    try:
        for provider in os.environ.get("BENCH_SYNC_PROVIDERS", "hubspot,salesforce").split(","):
            info = PROVIDERS[provider]
            tenant = Tenant.objects.create(
                name=f"Bench {provider}", slug=f"bench-{provider}-{uuid.uuid4().hex[:6]}"
            )
            creds = requests.post(
                f"{server.url}/_control/{provider}/credentials", json={"account": tenant.slug}, timeout=10
            ).json()
            integration = Integration.objects.create(
                tenant=tenant,
                provider=provider,
                category=info.category,
                auth_type=info.auth_type,
                base_url=f"{server.url}/{provider}",
                credentials=creds,
                mode="webhook",
            )
            provider_quota().reset(provider)
            Record.objects.bulk_create(
                [
                    Record(
                        tenant=tenant,
                        kind=info.record_kind,
                        payload={"email": f"p{i}@bench.example", "first_name": "Ada", "last_name": f"P{i}"},
                    )
                    for i in range(n)
                ]
            )
            spent.update(seconds=0.0, calls=0)
            started = time.perf_counter()
            runs = 0
            while True:
                runs += 1
                summary = run.sync_integration(integration.pk, pull=False)
                if not summary.more or not summary.ran:
                    break
            wall = time.perf_counter() - started
            pushed = SyncLog.objects.filter(integration=integration, status="SUCCESS").count()
            rows.append(
                {
                    "provider": provider,
                    "records": n,
                    "pushed": pushed,
                    "provider calls": spent["calls"],
                    "records per call": f"{pushed / max(1, spent['calls']):.1f}",
                    "runs": runs,
                    "wall s": f"{wall:.2f}",
                    "in provider calls s": f"{spent['seconds']:.2f}",
                    "engine ms per record": f"{(wall - spent['seconds']) * 1000 / max(1, pushed):.2f}",
                }
            )
            print(rows[-1], file=sys.stderr)
    finally:
        base.BaseClient._request = original
        server.stop()
    from bench.harness import table

    print(table(rows))


if __name__ == "__main__":
    main()
