"""The fault suite's runner: set-up, the six faults in turn, one line per fault, clean-up whatever happens."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bench import harness
from bench.harness import PG, setup_django
from faults import procs as P

DB_NAME = os.environ.get("FAULTS_DB", "lineup_faults")
REDIS_URL = os.environ.get("FAULTS_REDIS", "redis://127.0.0.1:6379/12")
PG_DSN = f"{PG}/postgres"
SUITE_LIMIT = 27 * 60  # the whole run stays under 30 minutes
SETTLE_LIMIT = 150.0  # after a fault, seconds for everything to come home
PROGRESS_LIMIT = 60.0  # before a fault, seconds to wait for the batch to be under way
EDITABLE_LIMIT = 20.0  # and for synced records to edit during it
SLOW = 0.15  # the sandbox answers this much later while a fault is injected: batches take a while
WEBHOOK_SECRET = "sandbox-webhook-secret"
# Requests per window, ours and the sandbox's alike; a real limiter in Redis, with windows short enough to run fast.
# Salesforce keeps its catalogue quota (100,000 a day): see faults/README.md, "Findings", on its 24 h block.
QUOTAS = {
    "hubspot": (40, 1),
    "greenhouse": (40, 1),
    "lever": (20, 1),
    "workday": (40, 1),
    "pandadoc": (40, 1),
}
ENGINE_ENV = {
    "SYNC_BACKOFF_BASE_SECONDS": "0.5",
    # Longer than one record's worst step (a quota wait of 20 s plus a call): a shorter lease lapses mid-push.
    "SYNC_LEASE_SECONDS": "30",
    "SYNC_STUCK_AFTER_SECONDS": "4",
    "PROVIDER_TIMEOUT_SECONDS": "5",
    # A webhook whose fetch failed (the provider down) is tried again within seconds, not the default 30 s.
    # 4, 8, 16, 32 s: five tries outlast the flaps of fault 1 (with 1 s, deliveries went DEAD while it flapped).
    "WEBHOOK_RETRY_BASE_SECONDS": "4",
    "PROVIDER_QUOTAS": ",".join(f"{p}={n}/{w}" for p, (n, w) in QUOTAS.items()),
    "PROVIDER_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "LOG_LEVEL": "WARNING",
}


@dataclass
class Result:
    number: int
    title: str
    held: bool | None  # None: skipped
    check: object = None
    settle_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    edits: object = None  # faults.edits.EditCheck

    def line(self) -> str:
        head = f"{self.number}. {self.title:<44}"
        if self.held is None:
            return f"{head} {'; '.join(self.notes)}"
        c, e = self.check, self.edits
        figures = (
            f"lost_edits={e.lost if e else '?'} doubled={c.duplicates} conflicts_raised={e.conflicts if e else '?'} "
            f"expected={c.expected} at_sandbox={c.at_sandbox} stuck_logs={c.stuck} settle={self.settle_s:.1f}s"
        )
        notes = f"  ({'; '.join(self.notes)})" if self.notes else ""
        return f"{head} {'held' if self.held else 'lost':<5} {figures}{notes}"


class Scheduler(threading.Thread):
    """What beat does, every second (dispatch) and every 3 s (sweep), sent through the broker like beat."""

    def __init__(self):
        super().__init__(name="faults-scheduler", daemon=True)
        self.stop_event = threading.Event()
        self.sent = self.failed = 0

    def run(self) -> None:
        from integrations.tasks import sync as tasks

        tick = 0
        while not self.stop_event.wait(1.0):
            tick += 1
            for task, every in ((tasks.dispatch_due_syncs, 1), (tasks.sweep_pending_records, 3)):
                if tick % every:
                    continue
                try:
                    task.apply_async(retry=False)
                    self.sent += 1
                except Exception:  # noqa: BLE001 - the broker is down for a moment: the next tick tries again
                    self.failed += 1


class Suite:
    def __init__(self, args):
        self.args = args
        self.procs = P.Procs()
        self.workers: list[P.Proc] = []
        self.worker_seq = 0
        self.env: dict = {}
        self.console = ""
        self.token = ""
        self.sandbox = None
        self.server = None
        self.scheduler = None
        self.started = time.monotonic()

    # -------------------------------------------------------------------------------------- set-up

    def setup(self) -> None:
        import redis

        global REDIS_URL, PG_DSN
        if P.PRIVATE:
            REDIS_URL = f"{P.start_private_redis()}/{REDIS_URL.rsplit('/', 1)[-1]}"
            harness.PG = P.start_private_pg()
            PG_DSN = f"{harness.PG}/postgres"
            print(f"  own servers: Redis {REDIS_URL}, PostgreSQL {harness.PG}", flush=True)
        if not P.redis_up() or not P.pg_up(PG_DSN):
            raise RuntimeError("PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) must be running")
        setup_django(
            DB_NAME,
            extra_env={"CELERY_BROKER_URL": REDIS_URL, "RATE_LIMIT_STORAGE_URL": REDIS_URL, **ENGINE_ENV},
        )
        redis.Redis.from_url(REDIS_URL).flushdb()
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)

        from faults.world import Sandbox
        from integrations.models import ApiToken
        from sandbox import SandboxServer

        self.server = SandboxServer(host="127.0.0.1", port=0)
        self.server.start()
        self.sandbox = Sandbox(self.server.url)
        for p, (n, w) in QUOTAS.items():
            self.sandbox.control(p, rate_limit=n, window=w)

        raw = ApiToken.generate()
        ApiToken.objects.create(name="faults", scope="admin", prefix=raw[:10], token_hash=ApiToken.hash(raw))
        self.token = raw
        port = P.free_port()
        self.console = f"http://127.0.0.1:{port}"
        P.start_console(self.procs, port, {**self.env, "CONSOLE_URL": self.console})
        for _ in range(2):
            self.start_worker()
        if not self.wait_console(30):
            raise RuntimeError("the console did not answer within 30 s (faults/out/console.log)")
        if not self.wait_workers():
            raise RuntimeError("the workers did not answer a ping within 45 s (faults/out/w*.log)")
        self.scheduler = Scheduler()
        self.scheduler.start()

    def start_worker(self) -> P.Proc:
        self.worker_seq += 1
        proc = P.start_worker(self.procs, f"w{self.worker_seq}", self.env)
        self.workers.append(proc)
        return proc

    def wait_workers(self, seconds: float = 45.0) -> bool:
        from lineup_ops.celery import app

        return P.wait_workers(app, [w.name for w in self.workers if w.alive()], seconds=seconds)

    def wait_console(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.console_ok(tries=1)[0]:
                return True
            time.sleep(0.5)
        return False

    def console_ok(self, tries: int = 3) -> tuple[bool, str]:
        import requests

        got = ""
        for attempt in range(tries):
            try:
                login = requests.get(f"{self.console}/admin/login/", timeout=10).status_code
                status = requests.get(
                    f"{self.console}/api/v1/integrations/status",
                    timeout=20,
                    headers={"Authorization": f"Bearer {self.token}"},
                ).status_code
            except requests.RequestException as e:
                login = status = type(e).__name__
            if login == 200 and status == 200:
                return True, ""
            got = f"console: admin/login {login}, integrations/status {status}"
            if attempt + 1 < tries:
                time.sleep(2)
        return False, got

    def teardown(self) -> list[str]:
        if self.scheduler:
            self.scheduler.stop_event.set()
            self.scheduler.join(timeout=5)
        self.procs.stop_all()
        if self.server:
            self.server.stop()
        problems = P.ensure_services_running(PG_DSN)
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001 - Django may not be set up (a set-up failure)
            pass
        P.stop_private()
        return problems

    # -------------------------------------------------------------------------------------- helpers

    def set_mode(self, batch, mode: str, **kw) -> None:
        from faults.world import safe

        for p in {i.provider for i in batch.integrations()}:
            safe(self.sandbox.control, p, mode=mode, **kw)

    def providers_of(self, batch) -> set[str]:
        return {i.provider for i in batch.integrations()}

    def under_way(self, batch, share: float) -> tuple[int, int]:
        """Wait until `share` of the batch's pushes are done; (pushed, expected) at that moment."""
        from faults.world import expected_pushes, pushed, safe, wait_for

        expected = safe(expected_pushes, batch, default=0)
        wait_for(lambda: pushed(batch) >= share * expected, seconds=PROGRESS_LIMIT)
        return safe(pushed, batch, default=-1), expected

    def editable(self, batch) -> None:
        """Before the fault: until each integration has synced records to edit (at most EDITABLE_LIMIT s)."""
        from faults.edits import wait_editable
        from faults.world import safe

        safe(wait_editable, batch, EDITABLE_LIMIT)

    def edit(self, batch, notes: list[str]) -> None:
        """Edits on both sides while the fault is on (faults/edits.py); checked by `finish`."""
        from faults.edits import make_edits
        from faults.world import safe

        batch.edits = safe(make_edits, batch, self.sandbox, f"F{batch.key}")
        if batch.edits is None:
            notes.append("the edits could not be made (the database or the sandbox did not answer)")
            return
        notes.append(f"edited {batch.edits.made} fields ({len(batch.edits.same)} same-field pairs)")
        notes.extend(batch.edits.notes)

    def finish(
        self, number: int, title: str, batch, notes: list[str], ok_extra: bool = True, extra_quiet=None
    ) -> Result:
        from faults.edits import Edits, check_edits
        from faults.world import safe, settle

        for p in self.providers_of(batch):
            self.sandbox.control(p, mode="ok")
        edits = batch.edits or Edits()

        def quiet() -> bool:
            if extra_quiet is not None and not extra_quiet():
                return False
            return check_edits(batch, edits, self.sandbox).lost == 0

        c, took, settled = settle(batch, self.sandbox, seconds=SETTLE_LIMIT, extra_quiet=quiet)
        e = safe(check_edits, batch, edits, self.sandbox)
        if not settled:
            notes.append(
                f"not quiet after {SETTLE_LIMIT:.0f}s: retrying={c.retrying} pending={c.pending} "
                f"failed={c.failed} webhooks_open={c.webhooks_open} needs_reauth={c.needs_reauth}"
            )
        notes.extend(c.problems[:4])
        if e is not None:
            notes.append(e.figures())
            notes.extend(e.problems[:4])
        else:
            notes.append("the field check could not run")
        if batch.edits is None:
            notes.append("no edits were made: the field check checked nothing")
        notes.append(self.evidence(batch))
        safe(self.quiesce, batch)
        console, why = self.console_ok()
        if not console:
            notes.append(why)
        held = (
            c.intact
            and c.needs_reauth == 0
            and console
            and ok_extra
            and e is not None
            and e.lost == 0
            and batch.edits is not None
        )
        return Result(number, title, held, c, took, notes, edits=e)

    @staticmethod
    def quiesce(batch) -> None:
        """A checked batch's polling integrations go back to the default interval: they stop loading the next
        faults with a poll every few seconds."""
        from integrations.models import DEFAULT_POLL_INTERVAL, Integration

        Integration.objects.filter(pk__in=batch.integration_ids).update(poll_interval=DEFAULT_POLL_INTERVAL)

    @staticmethod
    def evidence(batch) -> str:
        """What the engine went through: push logs that needed more than one attempt, and how they ended."""
        from django.db.models import Count, Sum

        from faults.world import safe
        from integrations.models import SyncLog

        def figures():
            logs = SyncLog.objects.filter(integration_id__in=batch.integration_ids, record__isnull=False)
            retried = logs.filter(attempt__gt=1).aggregate(n=Count("id"), extra=Sum("attempt"))
            return (
                f"{retried['n']} push logs retried ({(retried['extra'] or 0) - retried['n']} extra attempts)"
            )

        return safe(figures, default="(no figures: the database did not answer)")

    # -------------------------------------------------------------------------------------- the faults

    def fault_flap(self) -> Result:
        """1. The providers flap down and up three times while the batch syncs."""
        from faults.world import create_batch

        plan = [
            ["hubspot", "greenhouse"],
            ["lever", "workday"],
            ["salesforce", "greenhouse"],
            ["hubspot", "lever"],
        ]
        batch = create_batch("1", self.sandbox, plan, per_kind=0, enqueue=False, webhooks_to=self.console)
        for p in self.providers_of(batch):
            self.sandbox.control(p, mode="slow", delay=SLOW)
        batch = self._fill(batch, plan, per_kind=20)
        done, expected = self.under_way(batch, 0.1)
        self.editable(batch)
        notes = [f"at fault {done}/{expected} pushed"]
        for flap in range(3):
            self.set_mode(batch, "down")
            if flap == 0:
                self.edit(batch, notes)  # while the providers are down
            time.sleep(3)
            self.set_mode(batch, "slow", delay=SLOW)
            time.sleep(2)
        notes.append("3 flaps of 3 s down")
        return self.finish(1, "provider flaps down and up (x3)", batch, notes)

    def fault_kill_worker(self) -> Result:
        """2. A worker is killed with SIGKILL mid-batch (its whole process group), then another starts."""
        from lineup_ops.celery import app

        batch = self._slow_batch(
            "2",
            [["hubspot", "salesforce"], ["greenhouse"], ["lever", "workday"], ["pandadoc", "hubspot"]],
            per_kind=20,
        )
        done, expected = self.under_way(batch, 0.25)
        self.editable(batch)
        victim = next(w for w in self.workers if w.alive())
        try:
            active = app.control.inspect(timeout=1.0).active() or {}
        except Exception:  # noqa: BLE001
            active = {}
        running = sum(len(v) for k, v in active.items() if k.startswith(f"{victim.name}@"))
        victim.kill_group(signal.SIGKILL)
        victim.popen.wait(timeout=10)
        self.workers.remove(victim)
        notes = [f"at fault {done}/{expected} pushed", f"killed {victim.name} running {running} task(s)"]
        self.edit(batch, notes)  # one worker left, the killed one's tasks unacknowledged
        fresh = self.start_worker()
        if not self.wait_workers():
            notes.append(f"{fresh.name} did not answer a ping")
        return self.finish(2, "worker killed with SIGKILL mid-batch", batch, notes)

    def fault_redis(self) -> Result:
        """3. Redis (broker and quota storage) restarts mid-sync: queued tasks are lost, sweep/dispatch recover."""
        batch = self._slow_batch(
            "3",
            [["hubspot", "greenhouse"], ["lever", "salesforce"], ["workday"], ["pandadoc", "greenhouse"]],
            per_kind=20,
        )
        done, expected = self.under_way(batch, 0.25)
        self.editable(batch)
        t0 = time.monotonic()
        notes = []
        # The edits start while Redis is down (a local edit's enqueue then fails after ~0.6 s of retries: the
        # sweep must find it) and go on in a thread, so that the outage stays ~2 s.
        editing = threading.Thread(target=self.edit, args=(batch, notes), name="faults-edits")
        try:
            P.stop_redis()
            editing.start()
            time.sleep(2)
        finally:
            up = P.start_redis()
            if editing.ident is not None:
                editing.join(timeout=120)
        outage = time.monotonic() - t0
        notes[:0] = [f"at fault {done}/{expected} pushed", f"Redis down {outage:.1f}s"]
        if not up:
            notes.append("Redis did not come back")
        result = self.finish(3, "Redis restarted mid-sync", batch, notes)
        if not self.wait_workers(seconds=15):
            result.notes.append("workers did not answer a ping after the restart")
        return result

    def fault_postgres(self) -> Result:
        """4. PostgreSQL restarts mid-sync (only where it can be restarted: root and pg_ctlcluster)."""
        title = "PostgreSQL restarted mid-sync"
        if P.pg_cluster() is None:
            return Result(4, title, None, notes=["skipped: cannot restart PostgreSQL here"])
        from django.db import connections

        batch = self._slow_batch(
            "4",
            [["hubspot", "lever"], ["greenhouse", "salesforce"], ["workday"], ["pandadoc", "hubspot"]],
            per_kind=20,
        )
        done, expected = self.under_way(batch, 0.25)
        self.editable(batch)
        connections.close_all()
        t0 = time.monotonic()
        try:
            P.pg_ctl("stop")
            time.sleep(2)
        finally:
            up = P.start_pg(PG_DSN)
        outage = time.monotonic() - t0
        connections.close_all()
        notes = [f"at fault {done}/{expected} pushed", f"PostgreSQL down {outage:.1f}s"]
        if not up:
            notes.append("PostgreSQL did not come back")
        self.edit(batch, notes)  # nobody can edit here while the database is down: as soon as it is back
        return self.finish(4, title, batch, notes)

    def fault_webhooks(self) -> Result:
        """5. Duplicate and forged webhooks to the console: duplicates processed once, forged refused (401)."""
        from faults.world import UI_FIELDS, create_batch, safe
        from integrations.models import Record, RecordLink, WebhookDelivery

        plan = [["hubspot"], ["greenhouse"], ["lever"]]
        batch = create_batch("5", self.sandbox, plan, per_kind=15)
        notes = []
        ok = True
        integrations = list(batch.integrations())
        # Remote records made before any subscription: only our own (signed or forged) webhooks name them.
        targets = {}
        for i in integrations:
            dup = self.sandbox.create_record(i.provider, i.tenant.slug, UI_FIELDS[i.provider](f"d{i.pk}"))
            forged = self.sandbox.create_record(i.provider, i.tenant.slug, UI_FIELDS[i.provider](f"x{i.pk}"))
            targets[i.pk] = (str(dup["id"]), str(forged["id"]))

        # Forged first, while nothing else sends webhooks: every one refused, nothing stored, nothing fetched.
        before = (
            WebhookDelivery.objects.count(),
            Record.objects.filter(tenant_id__in=batch.tenant_ids).count(),
        )
        refused = sent = 0
        for i in integrations:
            url = f"{self.console}/webhooks/{i.provider}/{i.tenant.slug}/"
            forged = forged_deliveries(i.provider, url, targets[i.pk][1], secret=i.webhook_secret_value)
            for label, (headers, body) in forged.items():
                status = post(url, headers, body)
                sent += 1
                if status == 401:
                    refused += 1
                else:
                    notes.append(f"forged {i.provider} {label}: {status}")
        time.sleep(2)
        after = (
            WebhookDelivery.objects.count(),
            Record.objects.filter(tenant_id__in=batch.tenant_ids).count(),
        )
        forged_fetched = RecordLink.objects.filter(
            integration_id__in=batch.integration_ids, remote_id__in=[t[1] for t in targets.values()]
        ).count()
        if refused != sent or before != after or forged_fetched:
            ok = False
            notes.append(
                f"forged changed something: deliveries/records {before} -> {after}, fetched {forged_fetched}"
            )
        for i in integrations:
            self.sandbox.delete_record(i.provider, targets[i.pk][1])  # no webhook: it never comes home
        notes.append(f"forged {refused}/{sent} refused 401")

        # The sandbox's own webhooks: subscribe the console and make records "in the provider's UI".
        for i in integrations:
            self.sandbox.subscribe(
                i.provider,
                i.tenant.slug,
                f"{self.console}/webhooks/{i.provider}/{i.tenant.slug}/",
                i.webhook_secret_value,  # each integration's own secret (issue 13)
            )
            for n in range(3):
                self.sandbox.create_record(i.provider, i.tenant.slug, UI_FIELDS[i.provider](f"u{i.pk}-{n}"))

        # Duplicates: one signed delivery sent 5 times (2 in a row, then 3 at once).
        event_ids = {}
        received = duplicates = 0
        for i in integrations:
            url = f"{self.console}/webhooks/{i.provider}/{i.tenant.slug}/"
            headers, body, event_id = signed_delivery(
                i.provider, url, targets[i.pk][0], secret=i.webhook_secret_value
            )
            event_ids[i.provider] = event_id
            answers = [post_json(url, headers, body) for _ in range(2)]
            with ThreadPoolExecutor(3) as pool:
                answers += list(pool.map(lambda args: post_json(*args), [(url, headers, body)] * 3))
            received += sum(a.get("received", 0) for a in answers)
            duplicates += sum(a.get("duplicates", 0) for a in answers)
        expected_received = len(integrations)
        if (received, duplicates) != (expected_received, 4 * expected_received):
            ok = False
        notes.append(
            f"duplicates: {5 * expected_received} sent, {received} stored, {duplicates} answered duplicate"
        )
        self.editable(batch)
        self.edit(batch, notes)  # while the duplicated deliveries are processed

        def duplicates_once() -> bool:
            for provider, event_id in event_ids.items():
                rows = list(
                    WebhookDelivery.objects.filter(provider=provider, event_id=event_id).values_list(
                        "status", flat=True
                    )
                )
                if rows != ["PROCESSED"]:
                    return False
            return True

        result = self.finish(
            5, "duplicate and forged webhooks", batch, notes, ok_extra=ok, extra_quiet=duplicates_once
        )
        if not safe(duplicates_once, default=False):
            result.held = False
            result.notes.append("a duplicated event is not stored exactly once and PROCESSED")
        for p in {i.provider for i in integrations}:
            safe(self.sandbox.unsubscribe_all, p)
        return result

    def fault_tokens(self) -> Result:
        """6. Access tokens expire mid-sync (twice): refreshed transparently, nothing lost, nobody needs re-auth."""
        from integrations.models import SyncLog

        batch = self._slow_batch(
            "6", [["hubspot", "salesforce"], ["lever"], ["hubspot", "lever"], ["salesforce"]], per_kind=20
        )
        done, expected = self.under_way(batch, 0.2)
        oauth = sorted(self.providers_of(batch))
        for p in oauth:
            self.sandbox.control(p, expire_tokens=True)
        notes = []
        self.editable(batch)
        self.edit(batch, notes)  # between the two expiries
        done2, _ = self.under_way(batch, 0.6)
        for p in oauth:
            self.sandbox.control(p, expire_tokens=True)
        notes.insert(0, f"tokens expired at {done}/{expected} and {done2}/{expected} pushed")
        result = self.finish(6, "access tokens expire mid-sync (x2)", batch, notes)
        refreshed = SyncLog.objects.filter(
            integration_id__in=batch.integration_ids, operation="refresh_token"
        )
        result.notes.append(
            f"refreshes {refreshed.filter(status='SUCCESS').count()} ok, "
            f"{refreshed.exclude(status='SUCCESS').count()} failed"
        )
        return result

    def _slow_batch(self, key: str, plan: list[list[str]], per_kind: int):
        from faults.world import create_batch

        batch = create_batch(key, self.sandbox, plan, per_kind=0, enqueue=False, webhooks_to=self.console)
        for p in self.providers_of(batch):
            self.sandbox.control(p, mode="slow", delay=SLOW)
        return self._fill(batch, plan, per_kind)

    def _fill(self, batch, plan, per_kind: int):
        """Records for the batch's tenants, then the console's enqueue (what an edit in the UI does)."""
        from faults.world import _payload
        from integrations import services
        from integrations.catalog import PROVIDERS
        from integrations.models import Record, Tenant

        ids = []
        for tenant_id, providers in zip(batch.tenant_ids, plan, strict=True):
            slug = Tenant.objects.get(pk=tenant_id).slug
            for kind in sorted({PROVIDERS[p].record_kind for p in providers}):
                for n in range(per_kind):
                    ids.append(
                        Record.objects.create(tenant_id=tenant_id, kind=kind, payload=_payload(slug, n)).pk
                    )
        batch.record_ids = ids
        services.records_changed(record_ids=ids)
        return batch


# ------------------------------------------------------------------------------------------ webhook bodies


def _now_ms() -> int:
    return int(time.time() * 1000)


def _body(provider: str, remote_id: str, nonce: str) -> bytes:
    if provider == "hubspot":
        return json.dumps(
            [
                {
                    "eventId": int(nonce, 16) % 10**9,
                    "subscriptionType": "contact.creation",
                    "objectId": int(remote_id) if remote_id.isdigit() else remote_id,
                    "occurredAt": _now_ms(),
                    "portalId": 1,
                    "attemptNumber": 0,
                }
            ]
        ).encode()
    if provider == "greenhouse":
        return json.dumps(
            {"action": "candidate_created", "payload": {"candidate": {"id": remote_id, "nonce": nonce}}}
        ).encode()
    return json.dumps(
        {"id": nonce, "event": "candidateCreated", "data": {"opportunityId": remote_id}}
    ).encode()


def signed_delivery(provider: str, url: str, remote_id: str, *, secret: str = WEBHOOK_SECRET, now=None):
    """(headers, body, event id) of a delivery signed as the provider signs it."""
    from integrations.providers import get_client_class

    cls = get_client_class(provider)
    _, headers, body = cls.sign_webhook(
        secret=secret, url=url, body=_body(provider, remote_id, secrets.token_hex(8)), now=now
    )
    headers = {"Content-Type": "application/json", **headers}
    return headers, body, cls.parse_webhook(headers=headers, body=body)[0].event_id


def forged_deliveries(
    provider: str, url: str, remote_id: str, *, secret: str = WEBHOOK_SECRET
) -> dict[str, tuple[dict, bytes]]:
    """Deliveries an attacker could send: wrong secret, no signature, a signed body altered, a stale one."""
    out = {}
    headers, body, _ = signed_delivery(provider, url, remote_id, secret="not-the-webhook-secret")
    out["wrong secret"] = (headers, body)
    plain = {"Content-Type": "application/json"}
    out["no signature"] = (plain, _body(provider, remote_id, secrets.token_hex(8)))
    headers, body, _ = signed_delivery(provider, url, remote_id, secret=secret)
    if provider == "lever":  # Lever signs token + triggeredAt only: alter the signature itself
        data = json.loads(body)
        data["signature"] = ("0" if data["signature"][0] != "0" else "1") + data["signature"][1:]
        out["altered signature"] = (headers, json.dumps(data).encode())
    else:
        out["altered body"] = (headers, _body(provider, remote_id, secrets.token_hex(8)))
    if provider in ("hubspot", "lever"):
        headers, body, _ = signed_delivery(
            provider, url, remote_id, secret=secret, now=datetime.now(UTC) - timedelta(minutes=10)
        )
        out["stale timestamp"] = (headers, body)
    return out


def post(url: str, headers: dict, body: bytes) -> int | str:
    import requests

    try:
        return requests.post(url, data=body, headers=headers, timeout=15).status_code
    except requests.RequestException as e:
        return type(e).__name__


def post_json(url: str, headers: dict, body: bytes) -> dict:
    import requests

    try:
        r = requests.post(url, data=body, headers=headers, timeout=15)
        return r.json() if r.status_code == 200 else {"status": r.status_code}
    except (requests.RequestException, ValueError) as e:
        return {"error": type(e).__name__}


# ------------------------------------------------------------------------------------------ main

FAULTS = {
    1: "fault_flap",
    2: "fault_kill_worker",
    3: "fault_redis",
    4: "fault_postgres",
    5: "fault_webhooks",
    6: "fault_tokens",
}


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m faults", description=__doc__)
    parser.add_argument("--only", default="", help="comma-separated fault numbers (default: all six)")
    args = parser.parse_args(argv)
    chosen = [int(x) for x in args.only.split(",") if x.strip()] or list(FAULTS)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # also when started in the background with SIGINT ignored
    for old_log in P.OUT.glob("*.log"):
        old_log.unlink()
    suite = Suite(args)
    results: list[Result] = []
    code = 0
    where = "servers of its own (FAULTS_PRIVATE=1)" if P.PRIVATE else f"Redis {REDIS_URL}"
    print(f"Fault suite: database {DB_NAME}, {where}, logs in faults/out/", flush=True)
    try:
        suite.setup()
        print(
            f"  sandbox {suite.server.url}, console {suite.console}, workers "
            f"{', '.join(w.name for w in suite.workers)}, set up in {time.monotonic() - suite.started:.0f}s",
            flush=True,
        )
        for number in chosen:
            if time.monotonic() - suite.started > SUITE_LIMIT:
                results.append(
                    Result(number, FAULTS[number], False, notes=["not run: suite time limit reached"])
                )
                print(f"{number}. not run: suite time limit reached", flush=True)
                continue
            t0 = time.monotonic()
            try:
                result = getattr(suite, FAULTS[number])()
            except KeyboardInterrupt:
                raise
            except Exception as e:  # noqa: BLE001 - one fault's crash is reported, the others still run
                from django.db import connections

                connections.close_all()
                result = Result(number, FAULTS[number], False, notes=[f"the fault run failed: {e!r}"[:300]])
                result.check = None
            results.append(result)
            if result.check is None and result.held is not None:
                print(f"{number}. {result.title:<44} lost  ({'; '.join(result.notes)})", flush=True)
            else:
                print(result.line() + f"  [{time.monotonic() - t0:.0f}s]", flush=True)
    except KeyboardInterrupt:
        print("interrupted: cleaning up", flush=True)
        code = 130
    except Exception as e:  # noqa: BLE001
        print(f"set-up failed: {e}", flush=True)
        code = 2
    finally:
        problems = suite.teardown()
        for problem in problems:
            print(f"after clean-up: {problem}", flush=True)
            code = code or 2
    lost = [r for r in results if r.held is False]
    held = [r for r in results if r.held]
    skipped = [r for r in results if r.held is None]
    print(
        f"{len(held)} held, {len(lost)} lost, {len(skipped)} skipped in {time.monotonic() - suite.started:.0f}s",
        flush=True,
    )
    if lost:
        code = code or 1
    return code
