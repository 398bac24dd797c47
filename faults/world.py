"""The suite's data: the sandbox's control API, a fresh batch of records per fault, and the checks (real queries).

Import after Django is set up (faults.suite does that first).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

import requests
from django.db import DatabaseError, InterfaceError, connections
from django.utils import timezone

from integrations import services
from integrations.catalog import PROVIDERS
from integrations.engine.push import pending_records
from integrations.models import (
    Integration,
    Record,
    RecordLink,
    SyncLog,
    SyncStatus,
    Tenant,
    WebhookDelivery,
    WebhookStatus,
)

POLLING_ONLY = {"salesforce", "workday"}
POLL_SECONDS = 3  # polling integrations poll this often, so that a provider's edit comes home during a fault
UI_FIELDS = {  # a record made "in the provider's UI", per provider (flat fields)
    "hubspot": lambda n: {"email": f"ui{n}@example.org", "firstname": "Ui", "lastname": f"Made{n}"},
    "greenhouse": lambda n: {"first_name": "Ui", "last_name": f"Made{n}", "email": f"ui{n}@example.org"},
    "lever": lambda n: {"name": f"Ui Made{n}", "email": f"ui{n}@example.org"},
}


class Sandbox:
    """The sandbox's control API over HTTP (docs/provider-contract.md)."""

    def __init__(self, url: str):
        self.url = url
        self.http = requests.Session()

    def _json(self, method: str, path: str, **kw):
        r = self.http.request(method, f"{self.url}/_control{path}", timeout=15, **kw)
        r.raise_for_status()
        return r.json() if r.content else {}

    def base_url(self, provider: str) -> str:
        return f"{self.url}/{provider}"

    def control(self, provider: str, **changes) -> dict:
        return self._json("POST", f"/{provider}", json=changes)

    def state(self, provider: str) -> dict:
        return self._json("GET", f"/{provider}")

    def credentials(self, provider: str, account: str) -> dict:
        return self._json("POST", f"/{provider}/credentials", json={"account": account})

    def records(self, provider: str, account: str) -> list[dict]:
        return self._json("GET", f"/{provider}/records", params={"account": account})["records"]

    def create_record(self, provider: str, account: str, fields: dict) -> dict:
        return self._json("POST", f"/{provider}/records", json={"account": account, "fields": fields})

    def update_record(self, provider: str, record_id: str, fields: dict) -> dict:
        """A change "in the provider's UI" (it sends the provider's webhooks to subscribers)."""
        return self._json("PATCH", f"/{provider}/records/{record_id}", json={"fields": fields})

    def delete_record(self, provider: str, record_id: str) -> None:
        self._json("DELETE", f"/{provider}/records/{record_id}")

    def subscribe(self, provider: str, account: str, url: str, secret: str) -> dict:
        return self._json(
            "POST", f"/{provider}/webhooks", json={"account": account, "url": url, "secret": secret}
        )

    def unsubscribe_all(self, provider: str) -> None:
        self._json("DELETE", f"/{provider}/webhooks")


def lineup_id(remote: dict) -> str | None:
    fields = remote["fields"]
    return fields.get("lineup_id") or fields.get("Lineup_Id__c")


# ------------------------------------------------------------------------------------------ batches


@dataclass
class Batch:
    key: str
    integration_ids: list[int]
    tenant_ids: list[int]
    record_ids: list[int]
    started: float = field(default_factory=time.monotonic)
    edits: object = None  # faults.edits.Edits, once the fault's edits are made

    def integrations(self):
        return Integration.objects.filter(pk__in=self.integration_ids).select_related("tenant").order_by("pk")


def _payload(slug: str, n: int) -> dict:
    return {
        "email": f"{slug}-{n}@example.com",
        "first_name": "Ada",
        "last_name": f"Fault{n}",
        "company": "Lineup",
        "title": "Engineer",
        "name": f"Offer letter {slug} {n}",
        "recipient_email": f"{slug}-{n}@example.com",
    }


def create_batch(
    key: str,
    sandbox: Sandbox,
    plan: list[list[str]],
    per_kind: int,
    *,
    enqueue: bool = True,
    webhooks_to: str | None = None,
) -> Batch:
    """Fresh tenants (one per plan entry, with those providers), `per_kind` records of each kind they sync.
    With `webhooks_to` (the console's URL) the sandbox sends each webhook integration's changes there."""
    token = uuid.uuid4().hex[:6]
    integration_ids, tenant_ids, record_ids = [], [], []
    for i, providers in enumerate(plan):
        slug = f"f{key}-{i}-{token}"
        tenant = Tenant.objects.create(name=f"Faults {key} {i}", slug=slug)
        tenant_ids.append(tenant.pk)
        for p in providers:
            info = PROVIDERS[p]
            creds = sandbox.credentials(p, slug)
            expires = (
                timezone.now() + timedelta(seconds=creds["expires_in"]) if creds.get("expires_in") else None
            )
            integration = Integration.objects.create(
                tenant=tenant,
                provider=p,
                category=info.category,
                auth_type=info.auth_type,
                base_url=sandbox.base_url(p),
                credentials=creds,
                expires_at=expires,
                mode="polling" if p in POLLING_ONLY else "webhook",
                poll_interval=timedelta(seconds=POLL_SECONDS),
            )
            integration_ids.append(integration.pk)
            if webhooks_to and p not in POLLING_ONLY:
                sandbox.subscribe(
                    p, slug, f"{webhooks_to}/webhooks/{p}/{slug}/", integration.webhook_secret_value
                )
        for kind in sorted({PROVIDERS[p].record_kind for p in providers}):
            for n in range(per_kind):
                record_ids.append(
                    Record.objects.create(tenant=tenant, kind=kind, payload=_payload(slug, n)).pk
                )
    batch = Batch(key, integration_ids, tenant_ids, record_ids)
    if enqueue:
        services.records_changed(record_ids=record_ids)  # what the console does when records change
    return batch


# ------------------------------------------------------------------------------------------ checks


@dataclass
class Check:
    expected: int = 0  # local records, each once per integration of its tenant that takes its kind
    at_sandbox: int = 0  # of those, found at the sandbox
    duplicates: int = 0  # extra copies of one of our records at the sandbox
    extra: int = 0  # sandbox records that no local record stands for (a webhook's record never came home)
    stuck: int = 0  # sync logs RUNNING
    retrying: int = 0
    failed: int = 0  # push logs FAILED (given up)
    pending: int = 0  # records still waiting for a push
    webhooks_open: int = 0  # deliveries not PROCESSED
    needs_reauth: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return self.expected - self.at_sandbox

    @property
    def intact(self) -> bool:
        """Nothing lost, nothing duplicated, nothing stuck."""
        return self.missing == 0 and self.duplicates == 0 and self.extra == 0 and self.stuck == 0

    @property
    def quiet(self) -> bool:
        """Intact, and no work left in flight."""
        return (
            self.intact
            and self.retrying == 0
            and self.pending == 0
            and self.webhooks_open == 0
            and self.needs_reauth == 0
        )


def check(batch: Batch, sandbox: Sandbox) -> Check:
    c = Check()
    for integration in batch.integrations():
        kind = PROVIDERS[integration.provider].record_kind
        local = {
            str(x)
            for x in Record.objects.filter(tenant_id=integration.tenant_id, kind=kind).values_list(
                "external_id", flat=True
            )
        }
        by_remote_id = {
            rid: str(ext)
            for rid, ext in RecordLink.objects.filter(integration=integration)
            .exclude(remote_id="")
            .values_list("remote_id", "record__external_id")
        }
        remote = sandbox.records(integration.provider, integration.tenant.slug)
        seen = Counter(lineup_id(r) or by_remote_id.get(str(r["id"])) for r in remote)
        c.expected += len(local)
        c.at_sandbox += len(local & set(seen))
        dupes = sum(n - 1 for ext, n in seen.items() if ext in local and n > 1)
        extra = sum(n for ext, n in seen.items() if ext not in local)
        c.duplicates += dupes
        c.extra += extra
        if dupes or extra or local - set(seen):
            c.problems.append(
                f"{integration.provider}/{integration.tenant.slug}: missing {len(local - set(seen))}"
                f" duplicates {dupes} unknown-at-sandbox {extra}"
            )
        c.pending += pending_records(integration).count()
        c.needs_reauth += integration.status == "needs_reauth"
    logs = SyncLog.objects.filter(integration_id__in=batch.integration_ids)
    c.stuck = logs.filter(status=SyncStatus.RUNNING).count()
    # Attempts whose retry is still to come: a retried attempt keeps its RETRYING outcome (one row per attempt).
    c.retrying = logs.awaiting_retry().count()
    c.failed = logs.filter(status=SyncStatus.FAILED, record__isnull=False).count()
    c.webhooks_open = (
        WebhookDelivery.objects.filter(integration_id__in=batch.integration_ids)
        .exclude(status=WebhookStatus.PROCESSED)
        .count()
    )
    return c


def safe(fn, *args, default=None, **kw):
    """A query from the suite's own process that may meet a restarting PostgreSQL: reconnect and go on."""
    try:
        return fn(*args, **kw)
    except (DatabaseError, InterfaceError):
        connections.close_all()
        return default
    except requests.RequestException:
        return default


def pushed(batch: Batch) -> int:
    return SyncLog.objects.filter(
        integration_id__in=batch.integration_ids, status=SyncStatus.SUCCESS, direction="push"
    ).count()


def expected_pushes(batch: Batch) -> int:
    total = 0
    for integration in batch.integrations():
        total += Record.objects.filter(
            tenant_id=integration.tenant_id, kind=PROVIDERS[integration.provider].record_kind
        ).count()
    return total


def settle(batch: Batch, sandbox: Sandbox, *, seconds: float, extra_quiet=None) -> tuple[Check, float, bool]:
    """Check every second until quiet (or `seconds` pass): (last check, seconds taken, settled in time)."""
    start = time.monotonic()
    deadline = start + seconds
    last = Check(problems=["no check could run"])
    while True:
        got = safe(check, batch, sandbox)
        if got is not None:
            last = got
            if last.quiet and (extra_quiet is None or safe(extra_quiet, default=False)):
                return last, time.monotonic() - start, True
        if time.monotonic() >= deadline:
            return last, time.monotonic() - start, False
        time.sleep(1.0)


def wait_for(predicate, *, seconds: float, every: float = 0.25) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if safe(predicate, default=False):
            return True
        time.sleep(every)
    return bool(safe(predicate, default=False))
