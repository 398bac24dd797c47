"""JSON API views at the paths of ../shared/docs/DESIGN.md ("HTTP API"). Thin: read through querysets scoped to the token, act through services."""

from datetime import timedelta

from django.db import transaction
from django.http import JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from integrations import selectors, services, timespec
from integrations.access.actors import scope_integrations
from integrations.api.base import ApiError, api_view, expect, json_body
from integrations.api.serializers import integration_json, sync_log_json
from integrations.catalog import PROVIDERS
from integrations.errors import ServiceError
from integrations.models import ApiTokenScope, ErrorCategory, Integration, SyncLog, SyncStatus, Tenant

MAX_PAGE = 200


def _provider(provider: str) -> str:
    if provider not in PROVIDERS:
        raise ApiError(404, "not_found", f"Unknown provider '{provider}'.")
    return provider


def _integrations(token, provider: str | None = None, tenant: str | None = None):
    qs = scope_integrations(token, Integration.objects.select_related("tenant"))
    if provider:
        qs = qs.filter(provider=provider)
    if tenant:
        if token.scope == ApiTokenScope.TENANT and token.tenant.slug != tenant:
            raise ApiError(404, "not_found", f"No tenant '{tenant}' for this token.")
        qs = qs.filter(tenant__slug=tenant)
    return qs


def _since(value: str | None, field: str = "since"):
    if value in (None, ""):
        return None
    try:
        return timespec.since(value, flag=field)
    except timespec.UsageError as e:
        raise ApiError(400, "invalid_value", str(e), field=field) from None


@api_view("GET")
def integrations_status(request, token):
    """GET /api/v1/integrations/status (RB-01 check): every integration the token sees, and counts."""
    integrations = list(
        _integrations(token, tenant=request.GET.get("tenant")).order_by("provider", "tenant__slug")
    )
    counts: dict[str, dict[str, int]] = {}
    for i in integrations:
        counts.setdefault(i.provider, {}).setdefault(i.status, 0)
        counts[i.provider][i.status] += 1
    return _ok({"integrations": [integration_json(i) for i in integrations], "counts": counts})


@api_view("GET")
def provider_status(request, token, provider):
    """GET /api/v1/integrations/{provider}/status (RB-02 check): the provider's integrations, tokens, status page."""
    provider = _provider(provider)
    integrations = list(_integrations(token, provider, request.GET.get("tenant")).order_by("tenant__slug"))
    if token.scope == ApiTokenScope.TENANT and not integrations:
        raise ApiError(404, "not_found", f"This tenant has no {provider} integration.")
    return _ok(
        {
            "provider": provider,
            "name": PROVIDERS[provider].name,
            "status_page": PROVIDERS[provider].status_page,
            "integrations": [integration_json(i) for i in integrations],
        }
    )


@api_view("POST")
def provider_refresh(request, token, provider):
    """POST /api/v1/integrations/{provider}/refresh (RB-02 step 1, "Force token refresh"): Reconnect each one.

    The same operation as the admin's Reconnect and `refresh_tokens`: refresh the token, then prove it with a
    test call; a refused refresh leaves the integration needs_reauth.
    """
    provider = _provider(provider)
    if PROVIDERS[provider].auth_type != "oauth2":
        raise ApiError(
            400, "not_oauth", f"{PROVIDERS[provider].name} uses an API key: update the key instead."
        )
    body = json_body(request)
    tenant = expect(body, "tenant", str) or request.GET.get("tenant")
    integrations = list(_integrations(token, provider, tenant))
    if not integrations:
        raise ApiError(404, "not_found", f"No {provider} integration to refresh.")
    results = []
    for integration in integrations:
        try:
            outcome = services.integration_reconnect(integration=integration, actor=token)
            details = _plain(outcome.details)
            if details["outcome"] in ("connected", "refreshed"):
                details["outcome"] = "refreshed"
            results.append({"integration": integration.pk, "tenant": integration.tenant.slug, **details})
        except ServiceError as e:
            results.append(
                {
                    "integration": integration.pk,
                    "tenant": integration.tenant.slug,
                    "outcome": "refused",
                    "error": e.message,
                }
            )
    refreshed = sum(1 for r in results if r.get("outcome") == "refreshed")
    return _ok(
        {"provider": provider, "refreshed": refreshed, "failed": len(results) - refreshed, "results": results}
    )


@api_view("GET")
def sync_logs(request, token, provider):
    """GET /api/v1/integrations/{provider}/sync-logs?status=FAILED&category=&since=&tenant=&limit=&before="""
    provider = _provider(provider)
    qs = SyncLog.objects.filter(
        provider=provider, integration__in=_integrations(token, provider).values("pk")
    )
    status = request.GET.get("status")
    if status:
        if status not in SyncStatus.values:
            raise ApiError(
                400, "invalid_value", f"status must be one of {', '.join(SyncStatus.values)}.", field="status"
            )
        qs = qs.filter(status=status)
    category = request.GET.get("category")
    if category:
        if category not in ErrorCategory.values:
            raise ApiError(
                400,
                "invalid_value",
                f"category must be one of {', '.join(ErrorCategory.values)}.",
                field="category",
            )
        qs = qs.filter(error_category=category)
    since = _since(request.GET.get("since"))
    if since:
        qs = qs.filter(created_at__gte=since)
    tenant = request.GET.get("tenant")
    if tenant:
        qs = qs.filter(integration__in=_integrations(token, provider, tenant).values("pk"))
    limit = _int_param(request, "limit", 50, 1, MAX_PAGE)
    before = _int_param(request, "before", None, 1, None)
    if before:
        qs = qs.filter(pk__lt=before)
    rows = list(qs.select_related("tenant").order_by("-pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    next_url = None
    if more:
        params = request.GET.copy()
        params["before"] = str(rows[-1].pk)
        next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
    return _ok({"results": [sync_log_json(r) for r in rows], "next": next_url})


@api_view("GET")
def sync_log_detail(request, token, provider, log_id):
    """GET /api/v1/integrations/{provider}/sync-logs/{logId} (RB-04 step 2): one attempt, redacted."""
    provider = _provider(provider)
    row = (
        SyncLog.objects.select_related("tenant")
        .filter(pk=log_id, provider=provider, integration__in=_integrations(token, provider).values("pk"))
        .first()
    )
    if row is None:
        raise ApiError(404, "not_found", f"No {provider} sync log {log_id}.")
    return _ok(sync_log_json(row, detail=True))


@api_view("GET")
def failures(request, token, provider):
    """GET /api/v1/integrations/{provider}/failures (RB-04 check): failed syncs by category and by field."""
    provider = _provider(provider)
    since = _since(request.GET.get("since")) or timezone.now() - timedelta(hours=24)
    tenant = request.GET.get("tenant")
    tenant_id = token.tenant_id if token.scope == ApiTokenScope.TENANT else None
    if tenant:
        match = _integrations(token, provider, tenant).values_list("tenant_id", flat=True).first()
        if match is None:
            raise ApiError(404, "not_found", f"No {provider} integration for tenant '{tenant}'.")
        tenant_id = match
    summary = selectors.failure_summary(provider=provider, since=since, tenant_id=tenant_id)
    return _ok({"provider": provider, "since": since.isoformat(), **summary})


@api_view("POST")
def retry_failed(request, token, provider):
    """POST /api/v1/integrations/{provider}/retry-failed (RB-04 step 4): re-queue failed syncs, each once."""
    provider = _provider(provider)
    body = json_body(request)
    category = expect(body, "category", str)
    if category and category not in ErrorCategory.values:
        raise ApiError(
            400,
            "invalid_value",
            f"category must be one of {', '.join(ErrorCategory.values)}.",
            field="category",
        )
    since = _since(expect(body, "since", str))
    tenant = expect(body, "tenant", str)
    logs = SyncLog.objects.filter(
        provider=provider,
        status=SyncStatus.FAILED,
        integration__in=_integrations(token, provider, tenant).values("pk"),
    )
    if category:
        logs = logs.filter(error_category=category)
    if since:
        logs = logs.filter(created_at__gte=since)
    result = services.sync_logs_retry_failed(logs=logs, actor=token)
    return _ok({"provider": provider, "queued": result.changed, "already_queued": result.unchanged})


@api_view("POST", admin_only=True)
def restore_quota(request, token, provider):
    """POST /api/v1/integrations/{provider}/restore-quota: "Quota is back" (the provider's quota is the app's,
    shared by every tenant, so an admin token only)."""
    provider = _provider(provider)
    result = services.provider_quota_restore(provider=provider, actor=token)
    return _ok({"provider": provider, "retries_due_now": result.changed, **result.details})


@api_view("POST")
def conflict_resolve(request, token, defect_id):
    """POST /api/v1/conflicts/{id}/resolve {"choice": "ours" | "theirs"}: Keep ours / Take theirs."""
    body = json_body(request)
    choice = expect(body, "choice", str)
    if choice not in ("ours", "theirs"):
        raise ApiError(400, "invalid_value", "choice must be 'ours' or 'theirs'.", field="choice")
    result = services.conflict_resolve(defect_id=defect_id, choice=choice, actor=token)
    return _ok({"defect_id": defect_id, "choice": choice, "resolved": result.changed})


@api_view("GET")
def queues(request, token):
    """GET /api/v1/system-metrics/queues[?provider=P] (RB-03 check): sync and webhook queue depths."""
    provider = request.GET.get("provider") or None
    if provider is not None and provider not in PROVIDERS:
        raise ApiError(400, "bad_provider", f"Unknown provider '{provider}'.", field="provider")
    return _ok(selectors.queue_depths(provider=provider))


ADMIN_FIELDS = {"enabled", "sync_paused", "sync_paused_reason", "sync_paused_until", "mode", "poll_interval"}


@api_view("PATCH", admin_only=True)
def admin_integration(request, token, tenant_id, provider):
    """PATCH /api/v1/admin/tenants/{tenantId}/integrations/{provider} (RB-01 step 4): switches, admin tokens only."""
    provider = _provider(provider)
    tenant = Tenant.objects.filter(slug=tenant_id).first() or (
        Tenant.objects.filter(pk=int(tenant_id)).first() if tenant_id.isdigit() else None
    )
    if tenant is None:
        raise ApiError(404, "not_found", f"No tenant '{tenant_id}'.")
    integration = Integration.objects.filter(tenant=tenant, provider=provider)
    if not integration.exists():
        raise ApiError(404, "not_found", f"Tenant '{tenant.slug}' has no {provider} integration.")
    body = json_body(request)
    unknown = set(body) - ADMIN_FIELDS
    if unknown:
        raise ApiError(
            400, "unknown_field", f"Unknown field(s): {', '.join(sorted(unknown))}.", field=sorted(unknown)[0]
        )
    if not body:
        raise ApiError(400, "empty", f"Send at least one of: {', '.join(sorted(ADMIN_FIELDS))}.")
    enabled = expect(body, "enabled", bool)
    paused = expect(body, "sync_paused", bool)
    reason = expect(body, "sync_paused_reason", str) or "paused through the API"
    until = _since_or_future(expect(body, "sync_paused_until", str))
    mode = expect(body, "mode", str)
    if mode is not None and mode not in ("webhook", "polling"):
        raise ApiError(400, "invalid_value", "mode must be 'webhook' or 'polling'.", field="mode")
    interval = expect(body, "poll_interval", (int, str))
    poll_interval = None
    if interval is not None:
        poll_interval = _interval(interval)
    changed = {}
    with transaction.atomic():
        if enabled is False:
            changed["enabled"] = services.integration_disable(
                integrations=integration, actor=token, reason=reason
            ).changed
        elif enabled is True:
            changed["enabled"] = services.integration_enable(integrations=integration, actor=token).changed
        if paused is True:
            changed["sync_paused"] = services.integration_pause(
                integrations=integration, actor=token, reason=reason, until=until
            ).changed
        elif paused is False:
            changed["sync_paused"] = services.integration_resume(
                integrations=integration, actor=token
            ).changed
        if mode is not None or poll_interval is not None:
            current = integration.get()
            changed["mode"] = services.integrations_set_mode(
                integrations=integration, actor=token, mode=mode or current.mode, poll_interval=poll_interval
            ).changed
    return _ok(
        {"integration": integration_json(integration.select_related("tenant").get()), "changed": changed}
    )


# ------------------------------------------------------------------------------------------ helpers


def _ok(data) -> JsonResponse:
    return JsonResponse(data, json_dumps_params={"default": str})


def _plain(details: dict) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in details.items()}


def _int_param(request, name, default, minimum, maximum):
    raw = request.GET.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_value", f"'{name}' must be a whole number.", field=name) from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum else f"at least {minimum}"
        raise ApiError(400, "invalid_value", f"'{name}' must be {bound}.", field=name)
    return value


def _interval(value) -> timedelta:
    if isinstance(value, int):
        if value <= 0:
            raise ApiError(
                400,
                "invalid_value",
                "poll_interval must be positive (seconds, or like '5m').",
                field="poll_interval",
            )
        return timedelta(seconds=value)
    try:
        return timespec.duration(value, flag="poll_interval")
    except timespec.UsageError as e:
        raise ApiError(400, "invalid_value", str(e), field="poll_interval") from None


def _since_or_future(value):
    if value is None:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        raise ApiError(
            400, "invalid_value", "sync_paused_until must be an ISO time.", field="sync_paused_until"
        )
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)


def not_found(request, rest=""):
    """Any other path under /api/: a JSON 404, never an HTML page."""
    return JsonResponse(
        {"error": {"code": "not_found", "message": f"No API endpoint at {request.path}."}}, status=404
    )
