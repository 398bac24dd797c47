"""`python -m bench.drain`: a backlog left by an outage drains at what the provider's quota allows (issue 12, 5).

A backlog of BENCH_DRAIN_RECORDS (default 100,000) HubSpot contacts waits to be pushed, spread unevenly over
BENCH_DRAIN_TENANTS (default 10) tenants of the one provider app (tenant k of n holds k/(1+...+n) of it: the
biggest ten times the smallest), as an outage leaves it: every record changed while HubSpot was down, none
pushed. Then the provider is back and beat's sweep starts the drain. Real Celery workers do it (2 processes,
--concurrency=8 each, as deploy/systemd runs them) on PostgreSQL and Redis, against the sandbox as a real HTTP
server in this process, with HubSpot's quota set to BENCH_DRAIN_QUOTA calls per window (default 20/10 s, at
the console and at the sandbox alike). The default is chosen so that the quota, not the CPU, is the limit on the
shared 2-core machine: 100 records per batch call, 2 calls a second, 200 records a second, 500 s for 100,000.
Unthrottled, the same two workers pushed about 290 records a second with the machine's load at 5-8, and the
engine, PostgreSQL and the sandbox together take about 3 CPU-ms per record, so 200 a second leaves headroom;
HubSpot's own 100/10 s (1,000 records a second) would measure the CPU. The window stays HubSpot's 10 s, so the
limiter's slack (1% of the window) costs 1%. A thread stands for beat (dispatch every 5 s, sweep every 120 s).

Figures:
- drain time, from the sweep until every record is at the provider, against the quota-limited minimum
  records / (batch size x quota calls per second); the ratio minimum / drain time (goal 0.9 or more). The
  moving window admits one window's worth of calls at once, so a perfect run can beat the minimum slightly;
- fairness: records each tenant drained while every tenant still had a backlog, max/min over the tenants
  (equal shares: 1.0), overall and for the worst 30-second interval (a tenant moves 100 or 200 records at a time, so short
  intervals are coarse);
- priority: a quarter into the drain, "Sync now" (records_sync_now, the priority queue) on the biggest
  tenant's newest record, the one its backlog would push last: seconds until it is at the provider, and how
  much of the backlog was still waiting then;
- the workers' CPU (all their processes) as a share of the machine, and the load average: the quota should be
  the limit, not the CPU.

Environment: BENCH_DRAIN_DB (default lineup_bench_drain: dropped and re-created), BENCH_REDIS (harness),
BENCH_DRAIN_RECORDS, BENCH_DRAIN_TENANTS, BENCH_DRAIN_QUOTA ("20/10"), BENCH_DRAIN_WORKERS (2),
BENCH_DRAIN_CONCURRENCY (8).
Run: .venv/bin/python -m bench.drain  (prints a table; `json` as the argument prints one JSON line).
"""

import json
import os
import statistics
import subprocess
import sys
import threading
import time

PROVIDER = "hubspot"
RECORDS = int(os.environ.get("BENCH_DRAIN_RECORDS", "100000"))
TENANTS = int(os.environ.get("BENCH_DRAIN_TENANTS", "10"))
QUOTA, WINDOW = (int(x) for x in os.environ.get("BENCH_DRAIN_QUOTA", "20/10").split("/"))
WORKERS = int(os.environ.get("BENCH_DRAIN_WORKERS", "2"))
CONCURRENCY = int(os.environ.get("BENCH_DRAIN_CONCURRENCY", "8"))
DB = os.environ.get("BENCH_DRAIN_DB", "lineup_bench_drain")
POLL_SECONDS = 1.0
BUCKET_SECONDS = 30.0
PRIORITY_AT = 0.25  # of the backlog drained when the priority record is asked for


def sizes(total: int, tenants: int) -> list[int]:
    """Tenant k (1..n) holds about k/(1+...+n) of the backlog."""
    weights = list(range(1, tenants + 1))
    out = [total * w // sum(weights) for w in weights]
    out[-1] += total - sum(out)
    return out


def _cpu_seconds(pgids: set[int]) -> float:
    """User + system CPU seconds of every live process in these process groups (the workers and their pools)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in pgids:  # fields[2] is pgrp (the 5th field of stat)
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


class Beat(threading.Thread):
    """What celery beat sends with the shipped schedules: dispatch every 5 s, the sweep every 120 s."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stopped = threading.Event()

    def run(self):
        from integrations.tasks import sync as tasks

        next_sweep = time.monotonic() + 120
        while not self.stopped.wait(5.0):
            tasks.dispatch_due_syncs.delay()
            if time.monotonic() >= next_sweep:
                next_sweep += 120
                tasks.sweep_pending_records.delay()


def run() -> dict:
    from bench.harness import setup_django, workers

    extra = {"PROVIDER_QUOTAS": f"{PROVIDER}={QUOTA}/{WINDOW}", "LOG_LEVEL": "WARNING", "DEBUG": "false"}
    setup_django(DB, extra_env=extra)
    import requests
    from django.db import connection
    from django.db.models import Count

    from integrations import services
    from integrations.access.actors import System
    from integrations.catalog import PROVIDERS
    from integrations.models import Integration, Record, RecordLink, SyncLog, Tenant
    from integrations.providers import get_client_class
    from integrations.tasks import sync as tasks
    from sandbox import SandboxServer

    info = PROVIDERS[PROVIDER]
    batch = get_client_class(PROVIDER).batch_size or 1
    load_start = os.getloadavg()
    sandbox = SandboxServer(host="127.0.0.1", port=0).start()
    ctl = f"{sandbox.url}/_control/{PROVIDER}"
    try:
        requests.post(ctl, json={"rate_limit": QUOTA, "window": WINDOW}, timeout=10).raise_for_status()
        integrations, target = [], None
        for n, size in enumerate(sizes(RECORDS, TENANTS)):
            tenant = Tenant.objects.create(name=f"Drain {n}", slug=f"drain-{n}")
            creds = requests.post(f"{ctl}/credentials", json={"account": tenant.slug}, timeout=10).json()
            integrations.append(
                Integration.objects.create(
                    tenant=tenant,
                    provider=PROVIDER,
                    category=info.category,
                    auth_type=info.auth_type,
                    credentials=creds,
                    base_url=f"{sandbox.url}/{PROVIDER}",
                    mode="webhook",
                )
            )
            for start in range(0, size, 5000):
                Record.objects.bulk_create(
                    [
                        Record(
                            tenant=tenant,
                            kind=info.record_kind,
                            payload={
                                "email": f"p{i}@{tenant.slug}.example",
                                "first_name": "P",
                                "last_name": str(i),
                            },
                        )
                        for i in range(start, min(size, start + 5000))
                    ]
                )
        # The biggest tenant's newest record: its own backlog would push it last.
        target = Record.objects.filter(tenant=integrations[-1].tenant).order_by("-updated_at", "-pk").first()
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        by_integration = {i.pk: i.tenant.slug for i in integrations}
        backlog = dict(zip(by_integration.values(), sizes(RECORDS, TENANTS), strict=True))

        def drained() -> dict[str, int]:
            counts = dict.fromkeys(by_integration.values(), 0)
            for row in (
                RecordLink.objects.filter(synced_at__isnull=False)
                .values("integration_id")
                .annotate(n=Count("pk"))
            ):
                counts[by_integration[row["integration_id"]]] = row["n"]
            return counts

        minimum = RECORDS / (batch * QUOTA / WINDOW)
        samples: list[tuple[float, dict[str, int]]] = []
        priority: dict = {}
        beat = Beat()
        env = {**os.environ, **extra}
        with workers(WORKERS, concurrency=CONCURRENCY, extra_env=env) as procs:
            pgids = {p.pid for p in procs}
            cpu_before = _cpu_seconds(pgids)
            machine_before = _machine_busy()
            own_before = os.times()
            started = time.monotonic()
            tasks.sweep_pending_records.delay()  # the provider is back: beat's sweep finds the backlog
            beat.start()
            deadline = started + 3 * minimum + 120
            while time.monotonic() < deadline:
                counts = drained()
                now = time.monotonic() - started
                samples.append((now, counts))
                total = sum(counts.values())
                if not priority and total >= PRIORITY_AT * RECORDS:
                    services.records_sync_now(
                        records=Record.objects.filter(pk=target.pk), actor=System("bench")
                    )
                    priority = {"asked at s": now, "waiting then": RECORDS - total}
                if priority and "landed after s" not in priority:
                    if RecordLink.objects.filter(record_id=target.pk, synced_at__isnull=False).exists():
                        priority["landed after s"] = now - priority["asked at s"]
                        priority["waiting when it landed"] = RECORDS - total
                if len(samples) % 10 == 0:
                    print(f"{now:6.1f} s {total:7d} {sorted(counts.values())}", file=sys.stderr, flush=True)
                if total >= RECORDS:
                    break
                time.sleep(POLL_SECONDS)
            elapsed = samples[-1][0]
            cpu = _cpu_seconds(pgids) - cpu_before
            machine_after = _machine_busy()
            machine = (machine_after[0] - machine_before[0]) / max(1, machine_after[1] - machine_before[1])
            own = os.times()
            own_cpu = (own.user - own_before.user) + (own.system - own_before.system)
            beat.stopped.set()
        load_end = os.getloadavg()
        stats = requests.get(ctl, timeout=10).json()["stats"]
        failed = SyncLog.objects.filter(status__in=["FAILED", "RETRYING"]).count()
    finally:
        sandbox.stop()

    final = samples[-1][1]
    done = sum(final.values())
    # Fairness while every tenant still had a backlog: from the start until the first tenant is done.
    first_done = next(
        (i for i, (_, c) in enumerate(samples) if any(c[t] >= backlog[t] for t in c)), len(samples) - 1
    )
    shares = samples[first_done][1]
    fair_overall = max(shares.values()) / max(1, min(shares.values()))
    buckets = []
    last = 0
    for i in range(1, first_done + 1):
        if samples[i][0] - samples[last][0] >= BUCKET_SECONDS:
            delta = [samples[i][1][t] - samples[last][1][t] for t in shares]
            buckets.append(max(delta) / max(1, min(delta)))
            last = i
    finished = {t: next((s for s, c in samples if c[t] >= backlog[t]), None) for t in backlog}
    ratio = minimum / elapsed if done >= RECORDS else 0.0
    return {
        "records": f"{done}/{RECORDS}",
        "tenants": f"{TENANTS} ({min(backlog.values())}..{max(backlog.values())} each)",
        "quota": f"{QUOTA}/{WINDOW}s x {batch} per call",
        "workers": f"{WORKERS} x concurrency {CONCURRENCY}",
        "drain s": round(elapsed, 1),
        "minimum s": round(minimum, 1),
        "minimum/drain": round(ratio, 3),
        "calls/s / quota": round(stats["requests"] / elapsed / (QUOTA / WINDOW), 3) if elapsed else 0,
        "provider calls": stats["requests"],
        "429s": stats["rate_limited"],
        "failed or retrying": failed,
        "fairness max/min (all backlogged)": round(fair_overall, 2),
        "fairness worst 30 s": round(max(buckets), 2) if buckets else None,
        "fairness median 30 s": round(statistics.median(buckets), 2) if buckets else None,
        "all backlogged until s": round(samples[first_done][0], 1),
        "tenants done at s": [round(finished[t], 0) if finished[t] is not None else None for t in backlog],
        "priority landed after s": round(priority["landed after s"], 1)
        if "landed after s" in priority
        else None,
        "priority: backlog waiting asked/landed": (
            f"{priority.get('waiting then')}/{priority.get('waiting when it landed')}" if priority else None
        ),
        "worker CPU ms per record": round(cpu * 1000 / max(1, done), 2),
        "worker CPU share": round(cpu / elapsed / (os.cpu_count() or 1), 2) if elapsed else None,
        "bench+sandbox CPU share": round(own_cpu / elapsed / (os.cpu_count() or 1), 2) if elapsed else None,
        "machine CPU busy (everyone's)": round(machine, 2),
        "load start/end": f"{load_start[0]:.2f}/{load_end[0]:.2f}",
    }


def run_isolated() -> dict:
    """In its own process (a fresh database and fresh Django state); used by `python -m bench`."""
    from bench.harness import ROOT

    (ROOT / "bench" / "out").mkdir(exist_ok=True)
    out = subprocess.run(
        [sys.executable, "-m", "bench.drain", "json"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    from bench.harness import ROOT, table

    (ROOT / "bench" / "out").mkdir(exist_ok=True)
    row = run()
    if sys.argv[1:] == ["json"]:
        print(json.dumps(row))
        return
    print(table([{"figure": k, "value": v} for k, v in row.items()]))


if __name__ == "__main__":
    main()
