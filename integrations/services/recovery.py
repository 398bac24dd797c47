"""Recovery actions: retry failed, webhook retries, stale defects, modes, reconcile, verify (RB-01, RB-04, RB-09).

Every action here takes keyword arguments and an `actor`, checks the actor's right (`OPERATE`) and a tenant token's
scope, changes sets with set-based statements in short transactions, and writes audit rows with the counts.
`audit_extra` is merged into the audit details (commands pass `{"command": name}`).
"""

from collections import defaultdict
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from integrations import errors
from integrations.access.actors import (
    OPERATE,
    Actor,
    actor_label,
    actor_spec,
    audit_fields,
    require,
    scope_integrations,
)
from integrations.catalog import PROVIDERS
from integrations.engine.mapping import EXTERNAL_ID, mapping_for
from integrations.models import (
    DEFAULT_POLL_INTERVAL,
    FAILED_PUSH,
    AuditAction,
    AuditEvent,
    CrmSyncStatus,
    Defect,
    DefectStatus,
    DefectType,
    EnrichmentStatus,
    Integration,
    Record,
    RecordLink,
    SyncDirection,
    SyncLog,
    SyncMode,
    SyncStatus,
    WebhookDelivery,
    WebhookStatus,
)
from integrations.services.common import CHUNK, ActionResult, as_queryset, audit, enqueue_after_commit
from integrations.services.switches import apply_switch
from integrations.services.syncs import enqueue_syncs

DEFAULT_RESOLUTION = "Data refreshed after provider recovery"
STALE_TYPES = (DefectType.STALE_ENRICHMENT, DefectType.STALE_CRM_SYNC)
MAX_WEBHOOK_RETRIES = 100
MIN_POLL_INTERVAL = timedelta(seconds=30)
MAX_POLL_INTERVAL = timedelta(hours=24)
MAX_SAMPLE_SIZE = 1000
# Mismatches kept in one verify_sync audit row (the result carries them all).
AUDITED_MISMATCHES = 50


# ------------------------------------------------------------------------------------------ helpers


def _scoped(actor: Actor, qs: QuerySet, *, lookup: str = "tenant_id", column: str = "tenant_id") -> QuerySet:
    """Rows a tenant token may act on (its tenant's); everything for users and the system."""
    everything = Integration.objects.all()
    allowed = scope_integrations(actor, everything)
    if allowed is everything:
        return qs
    return qs.filter(**{f"{lookup}__in": allowed.values(column)})


def _check_provider(provider: str) -> None:
    if provider not in PROVIDERS:
        raise errors.ServiceError(errors.UNKNOWN_PROVIDER.format(provider=provider), field="provider")


def _check_past(since: datetime) -> None:
    if since > timezone.now():
        raise errors.ServiceError(errors.SINCE_IN_FUTURE, field="since")


def _audit_rows(actor: Actor, action: str, rows) -> None:
    """One audit row per (integration_id, tenant_id, provider, details)."""
    who = audit_fields(actor)
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                action=action,
                integration_id=integration_id,
                tenant_id=tenant_id,
                provider=provider,
                details=details,
                **who,
            )
            for integration_id, tenant_id, provider, details in rows
        ]
    )


# ------------------------------------------------------------------------------------------ retry failed


def retryable_logs(logs: QuerySet) -> QuerySet:
    """The part of a selection of sync logs that Retry failed re-queues: FAILED pushes of a record, not yet
    retried (no attempt points at them)."""
    retried = SyncLog.objects.filter(retry_of=OuterRef("pk"))
    return logs.filter(FAILED_PUSH).exclude(Exists(retried))


def sync_logs_retry_failed(
    *, logs: QuerySet, actor: Actor, audit_extra: dict | None = None, enqueue: bool = True
) -> ActionResult:
    """Re-queue FAILED push logs (RB-04 step 4): each gets one new attempt, PENDING and due now, pointing at it.

    The failed attempt keeps its outcome (one attempt, one row, never rewritten). Chunks oldest first; each
    chunk locks its rows with SKIP LOCKED (PostgreSQL) and skips those already retried, so two operators running
    it at once split the set instead of doubling it.
    """
    require(actor, OPERATE)
    extra = audit_extra or {}
    target = retryable_logs(_scoped(actor, logs)).order_by()
    result = ActionResult(action=AuditAction.SYNC_LOGS_RETRY_FAILED)
    integrations: set[int] = set()
    audited = False
    last_pk = 0
    while True:
        with transaction.atomic():
            failed = list(
                target.filter(pk__gt=last_pk)
                .order_by("pk")
                .select_for_update(skip_locked=True, of=("self",))
                .only(
                    "pk",
                    "integration_id",
                    "record_id",
                    "tenant_id",
                    "provider",
                    "direction",
                    "object_type",
                    "operation",
                    "attempt",
                )[:CHUNK]
            )
            if not failed:
                break
            last_pk = failed[-1].pk
            # A row locked by another operator's run a moment ago may have been retried since: check again.
            retried = set(
                SyncLog.objects.filter(retry_of_id__in=[r.pk for r in failed]).values_list(
                    "retry_of_id", flat=True
                )
            )
            failed = [r for r in failed if r.pk not in retried]
            now = timezone.now()
            SyncLog.objects.bulk_create(
                [
                    SyncLog(
                        integration_id=r.integration_id,
                        tenant_id=r.tenant_id,
                        provider=r.provider,
                        direction=r.direction,
                        object_type=r.object_type,
                        record_id=r.record_id,
                        operation=r.operation,
                        status=SyncStatus.PENDING,
                        attempt=r.attempt + 1,
                        retry_of_id=r.pk,
                        next_attempt_at=now,
                        created_at=now,
                    )
                    for r in failed
                ]
            )
            by_integration: dict[tuple, list[int]] = defaultdict(list)
            for r in failed:
                by_integration[(r.integration_id, r.tenant_id, r.provider)].append(r.record_id)
            # The records become pushable again (a failure otherwise holds them until they change): the links
            # of the chunk's (integration, record) pairs, in one UPDATE however many integrations it spans.
            chunk = SyncLog.objects.filter(
                pk__in=[r.pk for r in failed],
                integration_id=OuterRef("integration_id"),
                record_id=OuterRef("record_id"),
            )
            RecordLink.objects.filter(record_id__in={r.record_id for r in failed}).filter(
                Exists(chunk)
            ).update(failed_at=None)
            _audit_rows(
                actor,
                AuditAction.SYNC_LOGS_RETRY_FAILED,
                [
                    (integration_id, tenant_id, provider, {"changed": len(record_ids), **extra})
                    for (integration_id, tenant_id, provider), record_ids in by_integration.items()
                ],
            )
            audited = audited or bool(by_integration)
            integrations.update(key[0] for key in by_integration)
            result.changed += len(failed)
    if not audited:
        audit(actor=actor, action=AuditAction.SYNC_LOGS_RETRY_FAILED, details={"changed": 0, **extra})
    if enqueue:
        enqueue_syncs(integrations)
    result.details = {"n_integrations": len(integrations)}
    return result


# ------------------------------------------------------------------------------------------ webhooks


def retryable_webhooks(*, provider: str, deliveries: QuerySet | None = None) -> QuerySet:
    """FAILED and DEAD deliveries of a provider (optionally within a selection)."""
    qs = deliveries if deliveries is not None else WebhookDelivery.objects.all()
    return qs.filter(provider=provider, status__in=[WebhookStatus.FAILED, WebhookStatus.DEAD])


def webhooks_queue_retries(
    *,
    provider: str,
    actor: Actor,
    max_retries: int,
    deliveries: QuerySet | None = None,
    audit_extra: dict | None = None,
    dry_run: bool = False,
) -> ActionResult:
    """RB-09 containment 4: FAILED and DEAD deliveries become QUEUED, due now, with `max_retries` (attempts kept).

    The dispatcher (beat, every few seconds; `dispatch.due_webhook_ids`) processes them. `dry_run` only counts.
    """
    _check_provider(provider)
    if (
        isinstance(max_retries, bool)
        or not isinstance(max_retries, int)
        or not 1 <= max_retries <= MAX_WEBHOOK_RETRIES
    ):
        raise errors.ServiceError(errors.MAX_RETRIES_RANGE, field="max_retries")
    require(actor, OPERATE)
    target = _scoped(
        actor,
        retryable_webhooks(provider=provider, deliveries=deliveries),
        lookup="integration_id",
        column="pk",
    ).order_by()
    if dry_run:
        return ActionResult(
            action=AuditAction.WEBHOOKS_QUEUE_RETRIES, changed=target.count(), details={"dry_run": True}
        )
    with transaction.atomic():
        before = dict(target.values_list("status").annotate(n=Count("pk")).order_by())
        changed = target.update(
            status=WebhookStatus.QUEUED, max_retries=max_retries, next_attempt_at=timezone.now()
        )
        audit(
            actor=actor,
            action=AuditAction.WEBHOOKS_QUEUE_RETRIES,
            provider=provider,
            details={
                "changed": changed,
                "max_retries": max_retries,
                "from_failed": before.get(WebhookStatus.FAILED, 0),
                "from_dead": before.get(WebhookStatus.DEAD, 0),
                **(audit_extra or {}),
            },
        )
    return ActionResult(
        action=AuditAction.WEBHOOKS_QUEUE_RETRIES,
        changed=changed,
        details={"n_were_dead": before.get(WebhookStatus.DEAD, 0)},
    )


# ------------------------------------------------------------------------------------------ stale defects


def _check_defect_type(defect_type: str) -> None:
    if defect_type not in DefectType.values:
        raise errors.ServiceError(
            errors.UNKNOWN_DEFECT_TYPE.format(defect_type=defect_type), field="defect_type"
        )


def stale_defect_type(provider: str, defect_type: str | None = None) -> str:
    """The defect a provider's outage leaves: stale enrichment for enrichment providers, stale CRM sync otherwise."""
    if defect_type is None:
        return (
            DefectType.STALE_ENRICHMENT
            if PROVIDERS[provider].category == "enrichment"
            else DefectType.STALE_CRM_SYNC
        )
    _check_defect_type(defect_type)
    return defect_type


def stale_records(
    *, provider: str, since: datetime, defect_type: str, integrations: QuerySet | None = None
) -> QuerySet:
    """Records touched by a provider since `since` whose data is stale.

    Stale enrichment: enrichment pending, deferred or failed. Stale CRM sync: a FAILED or RETRYING sync log of the
    provider since then, or crm_sync_status FAILED (for the provider's record kind) changed since then.
    """
    targets = Integration.objects.filter(provider=provider)
    if integrations is not None:
        targets = targets.filter(pk__in=integrations.values("pk"))
    logs_since = SyncLog.objects.filter(
        record=OuterRef("pk"), integration_id__in=targets.values("pk"), created_at__gte=since
    )
    if defect_type == DefectType.STALE_ENRICHMENT:
        stale = Q(
            enrichment_status__in=[
                EnrichmentStatus.PENDING,
                EnrichmentStatus.DEFERRED,
                EnrichmentStatus.FAILED,
            ]
        ) & (Q(updated_at__gte=since) | Exists(logs_since))
    else:
        stale = Exists(logs_since.filter(status__in=[SyncStatus.FAILED, SyncStatus.RETRYING])) | Q(
            crm_sync_status=CrmSyncStatus.FAILED, updated_at__gte=since, kind=PROVIDERS[provider].record_kind
        )
    return Record.objects.filter(Exists(targets.filter(tenant_id=OuterRef("tenant_id")))).filter(stale)


def _insert_defects(records: QuerySet, *, provider: str, defect_type: str, description: str) -> int:
    """INSERT ... SELECT one OPEN defect per record; the partial unique constraint drops duplicates (race-safe)."""
    source = (
        records.order_by()
        .annotate(
            defect_integration=Subquery(
                Integration.objects.filter(provider=provider, tenant_id=OuterRef("tenant_id")).values("pk")[
                    :1
                ]
            )
        )
        .values_list("tenant_id", "defect_integration", "pk")
    )
    select_sql, params = source.query.sql_with_params()
    table = connection.ops.quote_name(Defect._meta.db_table)
    columns = ", ".join(
        connection.ops.quote_name(Defect._meta.get_field(name).column)
        for name in [
            "defect_type",
            "provider",
            "status",
            "description",
            "details",
            "resolution",
            "created_at",
            "resolved_by",
            "tenant",
            "integration",
            "record",
        ]
    )
    # "WHERE true" keeps SQLite from reading ON CONFLICT as a join constraint.
    sql = (
        f"INSERT INTO {table} ({columns}) SELECT %s, %s, %s, %s, '{{}}', '', %s, '', src.* "
        f"FROM ({select_sql}) AS src WHERE true ON CONFLICT DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [defect_type, provider, DefectStatus.OPEN, description, timezone.now(), *params])
        return max(cursor.rowcount, 0)


def defects_create_stale(
    *,
    provider: str,
    since: datetime,
    actor: Actor,
    defect_type: str | None = None,
    integrations: QuerySet | None = None,
    audit_extra: dict | None = None,
    dry_run: bool = False,
) -> ActionResult:
    """RB-09 containment 3: an OPEN defect for every record the provider left stale since `since`.

    Set-based (one INSERT ... SELECT); running it again creates nothing new. `dry_run` only counts.
    """
    _check_provider(provider)
    _check_past(since)
    defect_type = stale_defect_type(provider, defect_type)
    require(actor, OPERATE)
    if integrations is not None:
        integrations = scope_integrations(actor, integrations)
    candidates = _scoped(
        actor,
        stale_records(provider=provider, since=since, defect_type=defect_type, integrations=integrations),
    )
    open_defect = Defect.objects.filter(
        record=OuterRef("pk"), provider=provider, defect_type=defect_type, status=DefectStatus.OPEN
    )
    description = (
        f"{PROVIDERS[provider].name}: {DefectType(defect_type).label.lower()} since {since:%Y-%m-%d %H:%M %Z}"
    )
    if dry_run:
        return ActionResult(
            action=AuditAction.DEFECTS_CREATE_STALE,
            changed=candidates.exclude(Exists(open_defect)).count(),
            unchanged=candidates.filter(Exists(open_defect)).count(),
            details={"defect_type": defect_type, "dry_run": True},
        )
    with transaction.atomic():
        # ON CONFLICT DO NOTHING skips records that already have an open defect: no anti-join needed (at scale the
        # planner paired every open defect with every candidate).
        total = candidates.count()
        created = _insert_defects(
            candidates, provider=provider, defect_type=defect_type, description=description
        )
        already = total - created
        audit(
            actor=actor,
            action=AuditAction.DEFECTS_CREATE_STALE,
            provider=provider,
            details={
                "changed": created,
                "already_open": already,
                "defect_type": defect_type,
                "since": since.isoformat(),
                **(audit_extra or {}),
            },
        )
    return ActionResult(
        action=AuditAction.DEFECTS_CREATE_STALE,
        changed=created,
        unchanged=already,
        details={"defect_type": defect_type},
    )


def clearable_defects(
    *,
    provider: str | None = None,
    within: timedelta | None = None,
    defect_type: str | None = None,
    defects: QuerySet | None = None,
) -> QuerySet:
    """OPEN stale defects (of one type, or both stale types), of a provider, created within the window."""
    qs = defects if defects is not None else Defect.objects.all()
    types = [defect_type] if defect_type else list(STALE_TYPES)
    qs = qs.filter(status=DefectStatus.OPEN, defect_type__in=types)
    if provider:
        qs = qs.filter(provider=provider)
    if within is not None:
        qs = qs.filter(created_at__gt=timezone.now() - within)
    return qs


def defects_clear_stale(
    *,
    provider: str | None = None,
    within: timedelta | None = timedelta(hours=4),
    actor: Actor,
    resolution: str = DEFAULT_RESOLUTION,
    defect_type: str | None = None,
    defects: QuerySet | None = None,
    audit_extra: dict | None = None,
    dry_run: bool = False,
) -> ActionResult:
    """RB-09 recovery 4: resolve the provider's OPEN stale defects created within `within`, in one UPDATE.

    Without `defect_type` both stale types are resolved. `defects` narrows to a selection (admin), where
    `within=None` means any age. `dry_run` only counts.
    """
    if provider is None and defects is None:
        raise errors.ServiceError(errors.CLEAR_NEEDS_TARGET, field="provider")
    if provider is not None:
        _check_provider(provider)
    if within is not None and within <= timedelta(0):
        raise errors.ServiceError(errors.WITHIN_POSITIVE, field="within")
    resolution = (resolution or "").strip()
    if not resolution:
        raise errors.ServiceError(errors.RESOLUTION_REQUIRED, field="resolution")
    if defect_type is not None:
        _check_defect_type(defect_type)
    require(actor, OPERATE)
    target = _scoped(
        actor, clearable_defects(provider=provider, within=within, defect_type=defect_type, defects=defects)
    ).order_by()
    if dry_run:
        return ActionResult(
            action=AuditAction.DEFECTS_CLEAR_STALE, changed=target.count(), details={"dry_run": True}
        )
    now, label = timezone.now(), actor_label(actor)
    details = {
        "within_seconds": int(within.total_seconds()) if within else None,
        "defect_types": [defect_type] if defect_type else list(STALE_TYPES),
        "resolution": resolution,
        **(audit_extra or {}),
    }
    changed = 0
    with transaction.atomic():
        providers = (
            [provider] if provider else sorted(set(target.values_list("provider", flat=True).distinct()))
        )
        for slug in providers:
            n = target.filter(provider=slug).update(
                status=DefectStatus.RESOLVED, resolution=resolution, resolved_at=now, resolved_by=label
            )
            audit(
                actor=actor,
                action=AuditAction.DEFECTS_CLEAR_STALE,
                provider=slug,
                details={"changed": n, **details},
            )
            changed += n
        if not providers:
            audit(actor=actor, action=AuditAction.DEFECTS_CLEAR_STALE, details={"changed": 0, **details})
    return ActionResult(action=AuditAction.DEFECTS_CLEAR_STALE, changed=changed)


# ------------------------------------------------------------------------------------------ modes


def integrations_set_mode(
    *,
    integrations,
    actor: Actor,
    mode: str,
    poll_interval: timedelta | None = None,
    audit_extra: dict | None = None,
    dry_run: bool = False,
) -> ActionResult:
    """RB-09 containment 1 / recovery 5: polling (every `poll_interval`, default 5 min) or back to webhooks.
    `dry_run` only counts.

    Restoring webhook mode resets the interval to the default; integrations whose provider sends no webhooks
    stay polled (counted as polling_only).
    """
    if mode not in SyncMode.values:
        raise errors.ServiceError(errors.BAD_MODE, field="mode")
    if mode == SyncMode.WEBHOOK:
        if poll_interval is not None:
            raise errors.ServiceError(errors.POLL_INTERVAL_WEBHOOK, field="poll_interval")
        interval = DEFAULT_POLL_INTERVAL
    else:
        interval = poll_interval or DEFAULT_POLL_INTERVAL
        if not MIN_POLL_INTERVAL <= interval <= MAX_POLL_INTERVAL:
            raise errors.ServiceError(errors.POLL_INTERVAL_RANGE, field="poll_interval")
    require(actor, OPERATE)
    qs = as_queryset(integrations)
    polling_only = 0
    if mode == SyncMode.WEBHOOK:
        no_webhooks = [slug for slug, info in PROVIDERS.items() if not info.supports_webhooks]
        polling_only = scope_integrations(actor, qs).filter(provider__in=no_webhooks).count()
        qs = qs.exclude(provider__in=no_webhooks)
    result = apply_switch(
        action=AuditAction.INTEGRATION_SET_MODE,
        integrations=qs,
        actor=actor,
        perm=OPERATE,
        already=Q(mode=mode, poll_interval=interval),
        changes={"mode": mode, "poll_interval": interval},
        details={"mode": mode, "poll_interval_seconds": int(interval.total_seconds()), **(audit_extra or {})},
        dry_run=dry_run,
    )
    result.details = {"n_polling_only": polling_only} if polling_only else {}
    return result


def integrations_set_enrichment_defer(
    *, integrations, actor: Actor, on: bool, audit_extra: dict | None = None, dry_run: bool = False
) -> ActionResult:
    """RB-09 containment 2 / recovery 5: defer enrichment steps while the provider errs, or stop deferring.
    `dry_run` only counts."""
    result = apply_switch(
        action=AuditAction.INTEGRATION_ENRICHMENT_DEFER,
        integrations=integrations,
        actor=actor,
        perm=OPERATE,
        already=Q(enrichment_defer_on_error=bool(on)),
        changes={"enrichment_defer_on_error": bool(on)},
        details={"on": bool(on), **(audit_extra or {})},
        dry_run=dry_run,
    )
    result.details = {}
    return result


# ------------------------------------------------------------------------------------------ reconcile


def _callable_problem(integration: Integration) -> str:
    from integrations.engine import calls

    if not integration.has_credentials:
        return "no credentials"
    if not calls.may_call(integration.pk):
        return f"cannot call the provider: {integration.status}"
    return ""


def _would_apply(integration: Integration, remote, mapping) -> str:
    """What apply_remote would do with a provider record, without doing it (reconcile --dry-run)."""
    import uuid

    from integrations.engine import pull

    link = (
        RecordLink.objects.select_related("record")
        .filter(integration=integration, remote_id=remote.remote_id)
        .first()
    )
    record = link.record if link else None
    if record is None and remote.fields.get(EXTERNAL_ID):
        try:
            record = Record.objects.filter(
                tenant_id=integration.tenant_id, external_id=uuid.UUID(str(remote.fields[EXTERNAL_ID]))
            ).first()
        except ValueError:
            record = None
        if record is not None:
            link = RecordLink.objects.filter(record=record, integration=integration).first()
    plan = pull.merge(integration, record, link, remote, mapping)
    return "conflict" if plan.conflicts else plan.outcome


def _reconcile_one(
    integration: Integration, *, since: datetime, actor: Actor, dry_run: bool, extra: dict
) -> dict:
    from integrations.engine import calls, outcomes, pull
    from integrations.providers import ProviderError

    counts = {
        "integration_id": integration.pk,
        "tenant": integration.tenant.slug,
        "checked": 0,
        "created": 0,
        "updated": 0,
        "unchanged": 0,
        "conflict": 0,
        "errors": 0,
        "error": "",
    }
    problem = _callable_problem(integration)
    if problem:
        counts["errors"], counts["error"] = 1, problem
    else:
        ctx = calls.CallContext(integration)
        mapping = mapping_for(integration)
        cursor = None
        while True:
            row = outcomes.attempt_row(integration, SyncDirection.PULL, "reconcile")
            try:
                page = ctx.call(lambda c, cursor=cursor: c.list_records(updated_since=since, cursor=cursor))
            except (ProviderError, calls.NotCallable) as e:
                err = e if isinstance(e, ProviderError) else ProviderError("unknown", str(e))
                counts["errors"] += 1
                counts["error"] = str(err)[:500]
                if not dry_run:
                    outcomes.record_call(row, err.call)
                    row.status, row.error_category, row.error_message = (
                        SyncStatus.FAILED,
                        err.category,
                        err.message[:2000],
                    )
                    row.finished_at = timezone.now()
                    outcomes.finish_attempt(row, counted=err.call is not None)
                    if isinstance(e, ProviderError) and not isinstance(e, calls.QuotaUnavailable):
                        outcomes.note_error(integration, err, row.finished_at)
                break
            counts["checked"] += len(page.records)
            if dry_run:
                for remote in page.records:
                    counts[_would_apply(integration, remote, mapping)] += 1
            else:
                with transaction.atomic():
                    now = timezone.now()
                    reconciled = []
                    for remote in page.records:
                        record, outcome = pull.apply_remote(integration, remote, when=now, mapping=mapping)
                        counts[outcome] += 1
                        if outcome != "unchanged":
                            reconciled.append(
                                (
                                    integration.pk,
                                    integration.tenant_id,
                                    integration.provider,
                                    {
                                        "remote_id": remote.remote_id,
                                        "record_id": record.pk,
                                        "outcome": outcome,
                                        "since": since.isoformat(),
                                        **extra,
                                    },
                                )
                            )
                    _audit_rows(actor, AuditAction.RECORD_RECONCILED, reconciled)
                    outcomes.record_call(row, ctx.client.last_call)
                    row.status, row.finished_at = SyncStatus.SUCCESS, timezone.now()
                    outcomes.finish_attempt(row)
            cursor = page.next_cursor
            if not cursor:
                break
        if not dry_run and not counts["errors"]:
            outcomes.note_success(integration, timezone.now())
    if not dry_run:
        audit(
            actor=actor,
            action=AuditAction.INTEGRATION_RECONCILE,
            integration=integration,
            details={
                **{k: v for k, v in counts.items() if k not in ("integration_id", "tenant")},
                "since": since.isoformat(),
                **extra,
            },
        )
    return counts


def integrations_reconcile(
    *, integrations, since: datetime, actor: Actor, dry_run: bool = False, audit_extra: dict | None = None
) -> ActionResult:
    """RB-09 recovery 3: fetch what changed at the provider since `since` and apply what differs locally.

    One `record.reconciled` audit row per record created or updated, one `integration.reconcile` row per
    integration with its counts. `dry_run` fetches and compares but writes nothing.
    """
    _check_past(since)
    require(actor, OPERATE)
    qs = scope_integrations(actor, as_queryset(integrations)).select_related("tenant").order_by("pk")
    per = [_reconcile_one(i, since=since, actor=actor, dry_run=dry_run, extra=audit_extra or {}) for i in qs]
    total = {
        k: sum(p[k] for p in per)
        for k in ("checked", "created", "updated", "unchanged", "conflict", "errors")
    }
    return ActionResult(
        action=AuditAction.INTEGRATION_RECONCILE,
        changed=total["created"] + total["updated"] + total["conflict"],
        unchanged=total["unchanged"],
        details={**{f"n_{k}": v for k, v in total.items()}, "integrations": per, "dry_run": dry_run},
    )


def integrations_reconcile_in_background(*, integrations, since: datetime, actor: Actor) -> ActionResult:
    """Queue one reconcile task per integration (a large admin selection); each writes its own audit event."""
    _check_past(since)
    require(actor, OPERATE)
    ids = list(
        scope_integrations(actor, as_queryset(integrations)).order_by("pk").values_list("pk", flat=True)
    )
    # Issue 13 (M6): the task takes its actor from this row, never from its arguments.
    from integrations.models import BulkOperation, BulkOperationStatus

    with transaction.atomic():
        operation = BulkOperation.objects.create(
            action=AuditAction.INTEGRATION_RECONCILE,
            status=BulkOperationStatus.DONE,  # the record of who asked; each task audits its own reconcile
            total=len(ids),
            done=len(ids),
            created_by=actor_label(actor),
            params={"actor": actor_spec(actor), "since": since.isoformat(), "ids": ids},
        )
        for pk in ids:
            enqueue_after_commit(
                "integrations.reconcile_integration", pk, since.isoformat(), None, operation.pk
            )
    return ActionResult(
        action=AuditAction.INTEGRATION_RECONCILE, details={"n_queued_in_background": len(ids)}
    )


# ------------------------------------------------------------------------------------------ verify


# Records missing at the provider listed one by one in a verify_sync result (all are counted).
LISTED_MISSING = 200


def _pending_push(integration: Integration, records: QuerySet) -> QuerySet:
    """Those of `records` whose local change still waits to be pushed: changed since their last push and not
    held by a failure, or with a retry still to come."""
    from integrations.engine import push

    waiting = SyncLog.objects.filter(
        record=OuterRef("pk"),
        integration=integration,
        status__in=[SyncStatus.PENDING, SyncStatus.RUNNING, SyncStatus.RETRYING],
        next_attempt_at__isnull=False,
    )
    return records.filter(Q(pk__in=push.pending_records(integration).values("pk")) | Q(Exists(waiting)))


def _verify_one(integration: Integration, *, sample_size: int) -> dict:
    from integrations.engine import calls, pull, push
    from integrations.providers import ProviderError

    base = {
        "integration_id": integration.pk,
        "tenant": integration.tenant.slug,
        "provider": integration.provider,
    }
    # "n_mismatches": differing fields of the sample, plus every record missing at the provider (all counted,
    # the first LISTED_MISSING listed).
    out = {"checked": 0, "mismatches": [], "errors": [], "pending": [], "missing": 0, "n_mismatches": 0}
    problem = _callable_problem(integration)
    if problem:
        out["errors"].append({**base, "record_id": None, "remote_id": None, "error": problem})
        return out
    links = list(
        RecordLink.objects.filter(integration=integration)
        .exclude(remote_id="")
        .select_related("record")
        .order_by("?")[:sample_size]
    )
    mapping = mapping_for(integration)
    ctx = calls.CallContext(integration)
    sampled = [lk.record_id for lk in links]
    pending_ids = set(
        _pending_push(integration, Record.objects.filter(pk__in=sampled)).values_list("pk", flat=True)
    )
    held = set(
        Defect.objects.filter(
            record_id__in=sampled,
            integration=integration,
            defect_type=DefectType.SYNC_CONFLICT,
            status=DefectStatus.OPEN,
        ).values_list("record_id", flat=True)
    )
    for link in sorted(links, key=lambda lk: lk.record_id):
        where = {**base, "record_id": link.record_id, "remote_id": link.remote_id}
        try:
            remote = ctx.call(lambda c, rid=link.remote_id: c.get_record(rid))
        except (ProviderError, calls.NotCallable) as e:
            out["errors"].append({**where, "error": str(e)[:500]})
            continue
        out["checked"] += 1
        expected, _ = mapping.to_remote(link.record.payload, str(link.record.external_id))
        differing = [
            {
                **where,
                "field": lf,
                "remote_field": rf,
                "local": expected.get(rf),
                "remote": remote.fields.get(rf),
            }
            for lf, rf, _ in mapping.pairs
            if not pull.same_value(expected.get(rf), remote.fields.get(rf))
        ]
        if not differing:
            continue
        if link.record_id in pending_ids or link.record_id in held:
            reason = "sync conflict held" if link.record_id in held else "pending push"
            out["pending"].append({**where, "reason": reason, "fields": [d["field"] for d in differing]})
        else:
            out["mismatches"] += differing
            out["n_mismatches"] += len(differing)
    # Local records that should be at the provider but are not (never created there), whatever the sample.
    if not push.is_enrichment(integration):
        linked = RecordLink.objects.filter(record=OuterRef("pk"), integration=integration).exclude(
            remote_id=""
        )
        absent = Record.objects.filter(
            tenant_id=integration.tenant_id, kind=PROVIDERS[integration.provider].record_kind
        ).exclude(Exists(linked))
        waiting = set(_pending_push(integration, absent).values_list("pk", flat=True))
        missing = absent.exclude(pk__in=waiting).order_by("pk")
        out["missing"] = missing.count()
        for record_id in missing.values_list("pk", flat=True)[:LISTED_MISSING]:
            out["mismatches"].append(
                {
                    **base,
                    "record_id": record_id,
                    "remote_id": None,
                    "field": "(record)",
                    "remote_field": None,
                    "local": "exists",
                    "remote": None,
                }
            )
        out["n_mismatches"] += out["missing"]
        for record_id in sorted(waiting)[:LISTED_MISSING]:
            out["pending"].append(
                {**base, "record_id": record_id, "remote_id": None, "reason": "pending push", "fields": []}
            )
    return out


def integrations_verify_sync(
    *, integrations, sample_size: int, actor: Actor, audit_extra: dict | None = None
) -> ActionResult:
    """RB-09 verification 3: compare a random sample of linked records, local vs the provider, field by field.

    `sample_size` records per integration, each fetched with get_record and compared through the mapping.
    The result lists every mismatch (record, field, local and remote values) and every record that could
    not be fetched; each integration gets an `integration.verify_sync` audit row with its counts.
    """
    if (
        isinstance(sample_size, bool)
        or not isinstance(sample_size, int)
        or not 1 <= sample_size <= MAX_SAMPLE_SIZE
    ):
        raise errors.ServiceError(errors.SAMPLE_SIZE_RANGE, field="sample_size")
    require(actor, OPERATE)
    qs = scope_integrations(actor, as_queryset(integrations)).select_related("tenant").order_by("pk")
    checked, missing, n_mismatches, mismatches, problems, pending = 0, 0, 0, [], [], []
    for integration in qs:
        found = _verify_one(integration, sample_size=sample_size)
        audit(
            actor=actor,
            action=AuditAction.INTEGRATION_VERIFY_SYNC,
            integration=integration,
            details={
                "sample_size": sample_size,
                "checked": found["checked"],
                "mismatches": found["n_mismatches"],
                "missing_at_provider": found["missing"],
                "pending_push": len(found["pending"]),
                "errors": len(found["errors"]),
                "sample": found["mismatches"][:AUDITED_MISMATCHES],
                **(audit_extra or {}),
            },
        )
        checked += found["checked"]
        missing += found["missing"]
        n_mismatches += found["n_mismatches"]
        mismatches += found["mismatches"]
        problems += found["errors"]
        pending += found["pending"]
    return ActionResult(
        action=AuditAction.INTEGRATION_VERIFY_SYNC,
        unchanged=0,
        read_only=True,
        details={
            "n_checked": checked,
            "n_mismatches": n_mismatches,
            "n_missing": missing,
            "n_pending": len(pending),
            "n_errors": len(problems),
            "mismatches": mismatches,
            "pending": pending,
            "errors": problems,
        },
    )
