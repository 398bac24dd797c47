"""`python -m bench.sync_engine`: records per provider call, and the engine's own time per record (issue 12).

A backlog of BENCH_SYNC_RECORDS (default 10,000) new records per provider (BENCH_SYNC_PROVIDERS, default HubSpot
and Salesforce) is pushed to the in-process sandbox by `engine.run.sync_integration`, run after run until nothing
is left, on PostgreSQL (BENCH_SYNC_DB, default lineup_bench_sync, dropped and re-created) with the quota in Redis
(BENCH_SYNC_REDIS, default the benchmarks' BENCH_REDIS).

- records per call: records pushed / provider calls made (every BaseClient request, token calls included);
  goal RECORDS_PER_CALL_GOAL or more;
- engine overhead per record: (wall time of the runs - time inside provider requests) / records: the
  engine's own queries, sync-log rows, rollups and leases; goal ENGINE_MS_GOAL or less. The time inside
  requests includes the sandbox's own work, which runs in this process, and the client's (JSON, redaction of
  the excerpts); the rest is the engine's. The 1-minute load average is printed with each figure: on a shared
  machine the engine's time grows with it. "Of it Python CPU ms" is this process's own CPU time in the engine
  (the thread that runs it, outside provider requests): what is left is waiting for PostgreSQL (its queries and
  commits) and for the CPU.

`python -m bench` runs it as its "sync_engine" section (`--json`: one JSON line of rows, for the suite).
"""

import json
import os
import sys
import time
import uuid

RECORDS_PER_CALL_GOAL = 50
ENGINE_MS_GOAL = 5.0


def measure() -> list[dict]:
    from bench import harness

    n = int(os.environ.get("BENCH_SYNC_RECORDS", "10000"))
    redis_url = os.environ.get("BENCH_SYNC_REDIS", harness.REDIS)
    harness.setup_django(
        os.environ.get("BENCH_SYNC_DB", "lineup_bench_sync"),
        extra_env={
            "RATE_LIMIT_STORAGE_URL": redis_url,
            "CELERY_BROKER_URL": redis_url,
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
        },
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
    spent = {"seconds": 0.0, "cpu": 0.0, "calls": 0}
    original = base.BaseClient._request

    def timed(self, *args, **kwargs):
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            return original(self, *args, **kwargs)
        finally:
            spent["seconds"] += time.perf_counter() - started
            spent["cpu"] += time.thread_time() - cpu
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
            spent.update(seconds=0.0, cpu=0.0, calls=0)
            load_before = os.getloadavg()[0]
            started, cpu = time.perf_counter(), time.thread_time()
            runs = 0
            while True:
                runs += 1
                summary = run.sync_integration(integration.pk, pull=False)
                if not summary.more or not summary.ran:
                    break
            wall, cpu = time.perf_counter() - started, time.thread_time() - cpu
            pushed = SyncLog.objects.filter(integration=integration, status="SUCCESS").count()
            rows.append(
                {
                    "provider": provider,
                    "records": n,
                    "pushed": pushed,
                    "provider calls": spent["calls"],
                    "records per call": round(pushed / max(1, spent["calls"]), 1),
                    "runs": runs,
                    "wall s": round(wall, 2),
                    "in provider calls s": round(spent["seconds"], 2),
                    "engine ms per record": round((wall - spent["seconds"]) * 1000 / max(1, pushed), 2),
                    "of it Python CPU ms": round((cpu - spent["cpu"]) * 1000 / max(1, pushed), 2),
                    "load 1 min (start, end)": f"{load_before:.2f}, {os.getloadavg()[0]:.2f}",
                }
            )
            print(rows[-1], file=sys.stderr, flush=True)
    finally:
        base.BaseClient._request = original
        server.stop()
    return rows


def goal_lines(rows: list[dict]) -> list[str]:
    lines = []
    for row in rows:
        per_call, ms = row["records per call"], row["engine ms per record"]
        lines.append(
            f"- [{'met' if per_call >= RECORDS_PER_CALL_GOAL else 'MISSED'}] {row['provider']}: records per "
            f"provider call on a {row['records']:,}-record backlog, goal >= {RECORDS_PER_CALL_GOAL}; {per_call}"
        )
        lines.append(
            f"- [{'met' if ms <= ENGINE_MS_GOAL else 'MISSED'}] {row['provider']}: engine overhead per record, "
            f"goal <= {ENGINE_MS_GOAL:g} ms; {ms} ms (load average {row['load 1 min (start, end)']})"
        )
    return lines


def main() -> None:
    rows = measure()
    if "--json" in sys.argv[1:]:
        print(json.dumps(rows))
        return
    from bench.harness import table

    print(table(rows))
    print("\n".join(goal_lines(rows)))


if __name__ == "__main__":
    main()
