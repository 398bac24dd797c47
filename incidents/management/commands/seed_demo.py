"""Seed demo tenants, integrations on the sandbox, a day of sync history, defects and an open incident."""

import os
import random
import secrets
from collections import Counter
from datetime import timedelta

import requests
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from incidents.models import Detector, Severity, TenantContact
from incidents.services.opening import open_or_update_incident
from integrations.access.actors import System
from integrations.catalog import PROVIDERS
from integrations.engine import rollups
from integrations.models import (
    AuditAction,
    AuditEvent,
    Defect,
    DefectType,
    ErrorCategory,
    Integration,
    Record,
    RecordKind,
    SyncLog,
    SyncMode,
    SyncStatus,
    Tenant,
)

TENANTS = [
    ("Acme Recruiting", "acme", ["hubspot", "greenhouse", "clearbit"]),
    ("Globex Talent", "globex", ["salesforce", "lever", "pandadoc"]),
    ("Initech Staffing", "initech", ["hubspot", "workday"]),
    ("Umbrella Health", "umbrella", ["salesforce", "greenhouse", "clearbit"]),
    ("Stark Ventures", "stark", ["hubspot", "lever", "pandadoc"]),
    ("Wayne Partners", "wayne", ["greenhouse"]),
]
FIRST = [
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Ken",
    "Margaret",
    "Linus",
    "Radia",
    "Donald",
    "Frances",
]
LAST = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Thompson",
    "Hamilton",
    "Torvalds",
    "Perlman",
    "Knuth",
]
FAILURES = [
    (ErrorCategory.PROVIDER_5XX, 503, "Service Unavailable"),
    (ErrorCategory.TIMEOUT, None, "Read timed out after 10s"),
    (ErrorCategory.RATE_LIMITED, 429, "You have reached your secondly limit."),
    (ErrorCategory.VALIDATION, 400, "Property values were not valid: email"),
    (ErrorCategory.MISSING_FIELD, 400, "Required fields are missing: [LastName]"),
    (ErrorCategory.DUPLICATE, 409, "Contact already exists. Existing ID: 1042"),
    (ErrorCategory.AUTH_EXPIRED, 401, "The OAuth token used to make this call expired 7 second(s) ago."),
]
LOGIN_FILE = settings.VAR_DIR / "demo-login.txt"
# The endpoint each provider's history is about, as the clients name them.
ENDPOINTS = {
    "hubspot": "/crm/v3/objects/contacts",
    "salesforce": "/services/data/v59.0/sobjects/Contact/",
    "greenhouse": "/v1/candidates",
    "lever": "/v1/opportunities",
    "workday": "/ccx/api/recruiting/v4/{tenant}/prospects",
    "pandadoc": "/public/v1/documents",
    "clearbit": "/v2/people/find",
}


class Command(BaseCommand):
    help = "Seed demo data (idempotent: a second run reuses what exists)."

    def add_arguments(self, parser):
        parser.add_argument("--sandbox-url", default=settings.SANDBOX_URL)
        parser.add_argument(
            "--logs", type=int, default=3000, help="Sync logs of history to create (default 3000)."
        )

    def handle(self, *args, sandbox_url, logs, **options):
        if logs < 0:
            raise CommandError("--logs must be 0 or more")
        rng = random.Random(42)
        created = not Tenant.objects.filter(slug="acme").exists()
        with transaction.atomic():
            integrations = self._tenants_and_integrations(sandbox_url)
            if created:
                self._records(integrations, rng)
                self._history(integrations, rng, logs)
                self._defects_and_incident(integrations, rng)
        self._credentials(integrations, sandbox_url)
        login = self._users()
        verb = "Seeded" if created else "Reused"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} {Tenant.objects.count()} tenants, {Integration.objects.count()} integrations, "
                f"{SyncLog.objects.count()} sync logs, {Defect.objects.filter(status='OPEN').count()} open defects."
            )
        )
        self.stdout.write(login)

    def _tenants_and_integrations(self, sandbox_url):
        out = []
        for name, slug, providers in TENANTS:
            tenant, _ = Tenant.objects.get_or_create(slug=slug, defaults={"name": name})
            for i, provider in enumerate(providers):
                info = PROVIDERS[provider]
                integration, _ = Integration.objects.get_or_create(
                    tenant=tenant,
                    provider=provider,
                    defaults={
                        "category": info.category,
                        "auth_type": info.auth_type,
                        "base_url": f"{sandbox_url.rstrip('/')}/{provider}",
                        "mode": SyncMode.WEBHOOK if info.supports_webhooks else SyncMode.POLLING,
                        "is_critical": i == 0,
                    },
                )
                out.append(integration)
        return out

    def _records(self, integrations, rng):
        kinds = {i.tenant_id: set() for i in integrations}
        for integration in integrations:
            kinds[integration.tenant_id].add(PROVIDERS[integration.provider].record_kind)
        records = []
        for tenant_id, tenant_kinds in kinds.items():
            for kind in sorted(tenant_kinds):
                for n in range(12):
                    first, last = rng.choice(FIRST), rng.choice(LAST)
                    payload = {
                        "first_name": first,
                        "last_name": last,
                        "email": f"{first}.{last}.{tenant_id}{n}@example.com".lower(),
                        "company": "Example Corp",
                        "title": "Engineer",
                    }
                    if kind == RecordKind.DOCUMENT:
                        payload = {
                            "name": f"Offer letter {first} {last}",
                            "recipient_email": payload["email"],
                        }
                    enrichment = "PENDING" if kind == RecordKind.CLAIM else "NONE"
                    records.append(
                        Record(tenant_id=tenant_id, kind=kind, payload=payload, enrichment_status=enrichment)
                    )
        Record.objects.bulk_create(records)

    def _history(self, integrations, rng, n_logs):
        now = timezone.now()
        # HubSpot had a rough hour: most of its recent failures are 5xx and timeouts.
        logs = []
        for _ in range(n_logs):
            integration = rng.choice(integrations)
            info = PROVIDERS[integration.provider]
            age = timedelta(seconds=rng.uniform(0, 24 * 3600))
            in_outage = integration.provider == "hubspot" and age < timedelta(minutes=50)
            failed = rng.random() < (0.7 if in_outage else 0.08)
            category, http_status, message = (
                (FAILURES[rng.choice([0, 1])] if in_outage else rng.choice(FAILURES))
                if failed
                else (None, 200, "")
            )
            created = now - age
            logs.append(
                SyncLog(
                    integration=integration,
                    tenant_id=integration.tenant_id,
                    provider=integration.provider,
                    direction=rng.choice(["push", "pull"]),
                    object_type=info.object_type,
                    operation=rng.choice(["create", "update", "list"]),
                    status=SyncStatus.FAILED if failed else SyncStatus.SUCCESS,
                    error_category=category or "",
                    http_status=http_status,
                    error_message=message,
                    error_field="email" if category == ErrorCategory.VALIDATION else "",
                    endpoint=ENDPOINTS[integration.provider],
                    duration_ms=rng.randint(40, 900) if not failed else rng.randint(40, 10000),
                    finished_at=created,
                )
            )
        for log in logs:
            log.created_at = log.finished_at
        SyncLog.objects.bulk_create(logs, batch_size=1000)
        # The history counts in the per-minute rollups too, as if the engine had recorded it.
        counts = Counter(
            (log.provider, log.endpoint, log.error_category, log.created_at.replace(second=0, microsecond=0))
            for log in logs
        )
        for (provider, endpoint, category, minute), n in counts.items():
            rollups.count(provider=provider, endpoint=endpoint, category=category, at=minute, n=n)
        for integration in integrations:
            if integration.provider == "hubspot":
                Integration.objects.filter(pk=integration.pk).update(
                    last_error_at=now - timedelta(minutes=2),
                    last_error_category=ErrorCategory.PROVIDER_5XX,
                    last_error="503 Service Unavailable",
                    last_success_at=now - timedelta(minutes=55),
                    status="error",
                )
            else:
                Integration.objects.filter(pk=integration.pk).update(
                    last_success_at=now - timedelta(minutes=1)
                )

    def _defects_and_incident(self, integrations, rng):
        hubspot = [i for i in integrations if i.provider == "hubspot"]
        defects = []
        for integration in hubspot:
            for record in Record.objects.filter(tenant_id=integration.tenant_id, kind="contact")[:5]:
                defects.append(
                    Defect(
                        defect_type=DefectType.STALE_CRM_SYNC,
                        provider="hubspot",
                        tenant_id=integration.tenant_id,
                        integration=integration,
                        record=record,
                        description="CRM sync stale during the HubSpot outage.",
                    )
                )
        Defect.objects.bulk_create(defects)
        incident, _ = open_or_update_incident(
            provider="hubspot",
            runbook="RB-09",
            severity=Severity.SEV3,
            title="HubSpot API returning 5xx",
            detected_by="Lineup detection (fast): 100% errors over 2 min on /crm/v3/objects/contacts",
            detector=Detector.CONSOLE,
            actor=System("seed_demo"),
            started_at=timezone.now() - timedelta(minutes=50),
            dominant_category=ErrorCategory.PROVIDER_5XX,
            tenants={i.tenant_id for i in hubspot},
        )
        for tenant in Tenant.objects.all():
            TenantContact.objects.get_or_create(
                tenant=tenant,
                email=f"it-ops@{tenant.slug}.example",
                defaults={"name": f"{tenant.name} IT operations"},
            )
        AuditEvent.objects.create(
            actor_type="system",
            actor="system:seed_demo",
            action=AuditAction.DEMO_SEED,
            details={"tenants": len(TENANTS)},
        )

    def _credentials(self, integrations, sandbox_url):
        """Connect the integrations to the sandbox: fresh credentials where none are stored, webhook subscriptions."""
        try:
            requests.get(f"{sandbox_url}/_control/health", timeout=2).raise_for_status()
        except requests.RequestException:
            self.stderr.write(
                f"Sandbox not reachable at {sandbox_url}: integrations seeded without credentials."
            )
            return
        for integration in Integration.objects.select_related("tenant").filter(
            pk__in=[i.pk for i in integrations]
        ):
            if integration.has_credentials:
                continue
            response = requests.post(
                f"{sandbox_url}/_control/{integration.provider}/credentials",
                json={"account": integration.tenant.slug},
                timeout=5,
            )
            response.raise_for_status()
            creds = response.json()
            integration.credentials = creds
            if creds.get("expires_in"):
                integration.expires_at = timezone.now() + timedelta(seconds=int(creds["expires_in"]))
            integration.last_refreshed_at = timezone.now()
            integration.save(update_fields=["credentials", "expires_at", "last_refreshed_at", "updated_at"])
        # The enrichment provider knows about half of the people behind the claims.
        for integration in Integration.objects.select_related("tenant").filter(provider="clearbit"):
            known = (
                requests.get(
                    f"{sandbox_url}/_control/clearbit/records",
                    params={"account": integration.tenant.slug},
                    timeout=5,
                )
                .json()
                .get("records", [])
            )
            if known:
                continue
            for record in Record.objects.filter(tenant=integration.tenant, kind=RecordKind.CLAIM).order_by(
                "pk"
            )[::2]:
                p = record.payload
                requests.post(
                    f"{sandbox_url}/_control/clearbit/records",
                    timeout=5,
                    json={
                        "account": integration.tenant.slug,
                        "fields": {
                            "email": p.get("email"),
                            "name": f"{p.get('first_name')} {p.get('last_name')}",
                            "company": p.get("company"),
                            "title": p.get("title"),
                        },
                    },
                ).raise_for_status()
        # The providers' app settings: where to send webhooks (replaced as a whole, so reruns add no duplicates).
        webhook_mode = Integration.objects.select_related("tenant").filter(mode=SyncMode.WEBHOOK)
        for provider in sorted({i.provider for i in integrations if PROVIDERS[i.provider].supports_webhooks}):
            requests.delete(f"{sandbox_url}/_control/{provider}/webhooks", timeout=5).raise_for_status()
            for integration in webhook_mode.filter(provider=provider):
                requests.post(
                    f"{sandbox_url}/_control/{provider}/webhooks",
                    timeout=5,
                    json={
                        "account": integration.tenant.slug,
                        "url": f"{settings.CONSOLE_URL}/webhooks/{provider}/{integration.tenant.slug}/",
                        # Each integration's own secret (issue 13): the sandbox signs with it.
                        "secret": integration.webhook_secret_value,
                    },
                ).raise_for_status()

    def _users(self) -> str:
        if LOGIN_FILE.exists():
            password = LOGIN_FILE.read_text().strip()
        else:
            password = secrets.token_urlsafe(9)
            LOGIN_FILE.parent.mkdir(parents=True, exist_ok=True)
            # Issue 13: readable by its owner only, from the first byte (no window at the default umask).
            fd = os.open(LOGIN_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(password)
        os.chmod(LOGIN_FILE, 0o600)  # an older, world-readable file too
        users = [
            ("admin", None, True),
            ("operator", "Support operator", False),
            ("viewer", "Support viewer", False),
        ]
        for username, group, superuser in users:
            user, made = User.objects.get_or_create(
                username=username, defaults={"is_staff": True, "is_superuser": superuser}
            )
            if made or not user.check_password(password):
                user.set_password(password)
                user.save()
            if group:
                user.groups.add(Group.objects.get(name=group))
        return (
            f"Log in at {settings.CONSOLE_URL.rstrip('/')}/admin/ as admin, operator or viewer; password: {password}\n"
            f"(the password is kept in {LOGIN_FILE})"
        )
