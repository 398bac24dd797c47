"""Token selectors (reads): RB-09 triage 3 `check_token('provider')`, and what a rotation would do.

`from integrations.selectors.tokens import check_token; print(check_token("hubspot"))`: the runbook's
`from idis.integrations import check_token` (the app package cannot re-export it: models load after it).
"""

from datetime import timedelta

from django.db.models import TextField
from django.db.models.functions import Cast
from django.utils import timezone

from integrations.access import crypto
from integrations.catalog import PROVIDERS
from integrations.models import Integration, IntegrationStatus

EXPIRING_WITHIN = timedelta(hours=24)


def _iso(moment):
    return moment.isoformat() if moment else None


def check_token(provider: str, *, tenant: str | None = None) -> dict:
    """Per integration of the provider: status, expiry, last refresh, refresh token stored; and a summary."""
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider '{provider}' (known: {', '.join(PROVIDERS)})")
    now = timezone.now()
    qs = Integration.objects.filter(provider=provider).select_related("tenant").order_by("tenant__slug", "pk")
    if tenant:
        qs = qs.filter(tenant__slug=tenant)
    rows = []
    summary = {"total": 0, "expired": 0, "expiring_24h": 0, "needs_reauth": 0, "no_refresh_token": 0}
    oauth = PROVIDERS[provider].auth_type == "oauth2"
    for i in qs.iterator(chunk_size=500):
        seconds = int((i.expires_at - now).total_seconds()) if i.expires_at else None
        has_refresh = bool(i.credentials.get("refresh_token"))
        rows.append(
            {
                "integration_id": i.pk,
                "tenant": i.tenant.slug,
                "status": i.status,
                "auth_type": i.auth_type,
                "expires_at": _iso(i.expires_at),
                "seconds_to_expiry": seconds,
                "last_refreshed_at": _iso(i.last_refreshed_at),
                "has_refresh_token": has_refresh,
                "has_credentials": i.has_credentials,
            }
        )
        summary["total"] += 1
        summary["expired"] += seconds is not None and seconds <= 0
        summary["expiring_24h"] += seconds is not None and 0 < seconds <= EXPIRING_WITHIN.total_seconds()
        summary["needs_reauth"] += i.status == IntegrationStatus.NEEDS_REAUTH
        summary["no_refresh_token"] += oauth and not has_refresh
    return {"provider": provider, "checked_at": now.isoformat(), "integrations": rows, "summary": summary}


def rotation_plan(provider: str, *, integrations=None) -> dict:
    """What credentials_rotate would do (for --dry-run): tokens it would refresh, credentials not under the newest key."""
    qs = (Integration.objects.all() if integrations is None else integrations).filter(provider=provider)
    oauth = PROVIDERS[provider].auth_type == "oauth2"
    plan = {"provider": provider, "total": 0, "would_refresh": 0, "no_refresh_token": 0, "not_current_key": 0}
    for i in qs.annotate(raw=Cast("credentials", TextField())).order_by("pk").iterator(chunk_size=500):
        plan["total"] += 1
        if oauth:
            has_refresh = bool(i.credentials.get("refresh_token"))
            plan["would_refresh"] += has_refresh
            plan["no_refresh_token"] += not has_refresh
        plan["not_current_key"] += not crypto.is_current(i.raw or "")
    return plan
