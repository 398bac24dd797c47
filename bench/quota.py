"""Benchmark: twenty tenants on one provider app share its quota Q per window.

Prints the achieved request rate as a fraction of Q and the 429s after the first window, for the global
limiter (one moving window in Redis for every worker) against the baseline of a per-worker limit (each
worker process counts Q per window on its own, as Celery's per-worker `rate_limit` does: the same limiter
with in-process storage).
Goal: at least 0.9 of Q with no 429 after the first window.

Run: .venv/bin/python -m bench.quota  (PostgreSQL and Redis on 127.0.0.1)
"""

import json
import os
import statistics
import subprocess
import sys
import time

TENANTS = 20
RECORDS_PER_TENANT = int(os.environ.get("BENCH_RECORDS", "15"))
QUOTA = int(os.environ.get("BENCH_QUOTA", "20"))
WINDOW = int(os.environ.get("BENCH_WINDOW", "1"))
WORKERS, CONCURRENCY = 2, 4


def run(label: str, *, baseline: bool) -> dict:
    from bench.harness import setup_django, workers

    extra = {
        "PROVIDER_QUOTAS": f"hubspot={QUOTA}/{WINDOW}",
        "SYNC_BACKOFF_BASE_SECONDS": "0.5",
        "SYNC_LEASE_SECONDS": "10",
    }
    if baseline:
        # No shared window: every worker process keeps its own count of the quota.
        extra["RATE_LIMIT_STORAGE_URL"] = "memory://"
    setup_django("lineup_bench_quota", extra_env=extra)
    from django.conf import settings

    from integrations import services
    from integrations.models import Integration, Record, Tenant
    from sandbox import SandboxServer

    sandbox = SandboxServer(port=0).start()
    try:
        import requests

        ctl = f"{sandbox.url}/_control"
        requests.post(
            f"{ctl}/hubspot", json={"rate_limit": QUOTA, "window": WINDOW}, timeout=5
        ).raise_for_status()
        ids = []
        for n in range(TENANTS):
            tenant = Tenant.objects.create(name=f"Bench {n}", slug=f"bench-{n}")
            creds = requests.post(
                f"{ctl}/hubspot/credentials", json={"account": tenant.slug}, timeout=5
            ).json()
            integration = Integration.objects.create(
                tenant=tenant,
                provider="hubspot",
                category="crm",
                auth_type="oauth2",
                credentials=creds,
                base_url=f"{sandbox.url}/hubspot",
                mode="webhook",
            )
            ids.append(integration.pk)
            Record.objects.bulk_create(
                [
                    Record(
                        tenant=tenant,
                        kind="contact",
                        payload={
                            "email": f"p{i}@{tenant.slug}.example",
                            "first_name": "P",
                            "last_name": str(i),
                        },
                    )
                    for i in range(RECORDS_PER_TENANT)
                ]
            )
        total = TENANTS * RECORDS_PER_TENANT
        with workers(WORKERS, concurrency=CONCURRENCY, extra_env={**os.environ, **extra}):
            from integrations.tasks import sync as tasks

            started = time.monotonic()
            services.enqueue_syncs(ids)
            while time.monotonic() - started < 300:
                arrived = sum(
                    len(
                        requests.get(
                            f"{ctl}/hubspot/records", params={"account": f"bench-{n}"}, timeout=5
                        ).json()["records"]
                    )
                    for n in range(TENANTS)
                )
                if arrived >= total:
                    break
                tasks.dispatch_due_syncs.delay()
                time.sleep(1)
            elapsed = time.monotonic() - started
        stats = requests.get(f"{ctl}/hubspot", timeout=5).json()["stats"]
    finally:
        sandbox.stop()
    windows = [w for w in stats["windows"] if w["requests"]]
    steady = windows[1:-1] or windows
    accepted = [w["requests"] - w["rejected"] for w in steady]
    return {
        "limiter": label,
        "quota": f"{QUOTA}/{WINDOW}s",
        "records": f"{arrived}/{total}",
        "seconds": round(elapsed, 1),
        "rate/quota (median window)": round(statistics.median(accepted) / QUOTA, 2) if accepted else 0,
        "429 in first window": windows[0]["rejected"] if windows else 0,
        "429 after first window": sum(w["rejected"] for w in windows[1:]),
        "settings": settings.PROVIDER_QUOTAS.get("hubspot"),
    }


def main():
    from bench.harness import ROOT, table

    (ROOT / "bench" / "out").mkdir(exist_ok=True)
    which = sys.argv[1] if len(sys.argv) > 1 else "both"
    if which == "global":
        print(json.dumps(run("global (Redis moving window)", baseline=False)))
        return
    if which == "baseline":
        print(json.dumps(run("baseline (per-worker limit)", baseline=True)))
        return
    print(table(run_both()))


def run_both() -> list[dict]:
    """Both variants, each in its own process (a fresh database and fresh Django state); used by `python -m bench`."""
    from bench.harness import ROOT

    (ROOT / "bench" / "out").mkdir(exist_ok=True)
    rows = []
    for variant in ("global", "baseline"):
        out = subprocess.run(
            [sys.executable, "-m", "bench.quota", variant],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        row = json.loads(out.strip().splitlines()[-1])
        row.pop("settings", None)
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()
