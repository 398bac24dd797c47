"""Test data builders: small functions with sensible defaults, overridable by keyword."""

import itertools

from django.apps import apps
from django.contrib.auth.models import Group, User
from django.utils import timezone

from integrations.access.roles import ADMIN, OPERATOR, VIEWER, ensure_groups  # noqa: F401
from integrations.catalog import PROVIDERS
from integrations.models import Integration, Record, SyncLog, Tenant

PASSWORD = "correct-horse-battery"
_seq = itertools.count(1)


def tenant(**kw) -> Tenant:
    n = next(_seq)
    kw.setdefault("name", f"Tenant {n}")
    kw.setdefault("slug", f"tenant-{n}")
    return Tenant.objects.create(**kw)


def integration(*, tenant=None, provider="hubspot", **kw) -> Integration:
    info = PROVIDERS[provider]
    kw.setdefault("category", info.category)
    kw.setdefault("auth_type", info.auth_type)
    return Integration.objects.create(tenant=tenant or globals()["tenant"](), provider=provider, **kw)


def record(*, tenant, kind="contact", **payload) -> Record:
    n = next(_seq)
    payload.setdefault("email", f"person{n}@example.com")
    payload.setdefault("first_name", "Ada")
    payload.setdefault("last_name", f"Person{n}")
    return Record.objects.create(tenant=tenant, kind=kind, payload=payload)


def sync_log(*, integration, count: bool = True, **kw) -> SyncLog:
    """A sync attempt, counted in the per-minute rollups as the engine would count it (count=False: not)."""
    from integrations.engine import rollups

    kw.setdefault("direction", "push")
    kw.setdefault("object_type", PROVIDERS[integration.provider].object_type)
    kw.setdefault("operation", "create")
    kw.setdefault("status", "SUCCESS")
    counted = count and kw["status"] in ("SUCCESS", "FAILED", "RETRYING")
    if counted:
        # As finish_attempt keeps it: an outcome has its finish time, and says it is in the rollups.
        kw.setdefault("counted", True)
        kw.setdefault("finished_at", kw.get("created_at") or timezone.now())
    row = SyncLog.objects.create(
        integration=integration, tenant_id=integration.tenant_id, provider=integration.provider, **kw
    )
    if counted:
        rollups.count(
            provider=row.provider,
            endpoint=row.endpoint,
            category=row.error_category if row.status != "SUCCESS" else "",
            at=row.finished_at,
        )
    return row


def user(username: str, *, group: str | None = None, superuser: bool = False) -> User:
    u = User.objects.create_user(username, password=PASSWORD, is_staff=True, is_superuser=superuser)
    if group:
        if not Group.objects.filter(name=group).exists():
            ensure_groups(apps)  # a transactional test flushed the migration's groups
        u.groups.add(Group.objects.get(name=group))
    return u


def api_token(*, scope: str = "admin", tenant=None, name: str | None = None) -> tuple:
    """(ApiToken, raw bearer value)."""
    from integrations.models import ApiToken

    raw = ApiToken.generate()
    token = ApiToken.objects.create(
        name=name or f"{scope}-token-{next(_seq)}",
        scope=scope,
        tenant=tenant,
        prefix=raw[:10],
        token_hash=ApiToken.hash(raw),
    )
    return token, raw
