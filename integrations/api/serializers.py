"""Plain dicts for API responses. Credentials never appear here."""


def _iso(value):
    return value.isoformat() if value else None


def integration_json(i) -> dict:
    return {
        "id": i.pk,
        "tenant": {"id": i.tenant_id, "slug": i.tenant.slug, "name": i.tenant.name},
        "provider": i.provider,
        "category": i.category,
        "auth_type": i.auth_type,
        "status": i.status,
        "enabled": i.enabled,
        "sync_paused": i.sync_paused,
        "sync_paused_reason": i.sync_paused_reason,
        "sync_paused_until": _iso(i.sync_paused_until),
        "mode": i.mode,
        "poll_interval_seconds": int(i.poll_interval.total_seconds()),
        "enrichment_defer_on_error": i.enrichment_defer_on_error,
        "is_critical": i.is_critical,
        "has_credentials": i.has_credentials,
        "expires_at": _iso(i.expires_at),
        "last_refreshed_at": _iso(i.last_refreshed_at),
        "last_success_at": _iso(i.last_success_at),
        "last_error_at": _iso(i.last_error_at),
        "last_error_category": i.last_error_category,
        "last_error": i.last_error,
    }


def sync_log_json(row, *, detail: bool = False) -> dict:
    data = {
        "id": row.pk,
        "created_at": _iso(row.created_at),
        "finished_at": _iso(row.finished_at),
        "tenant": row.tenant.slug,
        "integration": row.integration_id,
        "provider": row.provider,
        "direction": row.direction,
        "object_type": row.object_type,
        "record": row.record_id,
        "operation": row.operation,
        "status": row.status,
        "error_category": row.error_category,
        "error_field": row.error_field,
        "http_status": row.http_status,
        "error_message": row.error_message,
        "endpoint": row.endpoint,
        "attempt": row.attempt,
        "next_attempt_at": _iso(row.next_attempt_at),
        "duration_ms": row.duration_ms,
    }
    if detail:
        data.update(
            {
                "rate_limit_headers": row.rate_limit_headers,
                "request": row.request_excerpt,
                "response": row.response_excerpt,
            }
        )
    return data
