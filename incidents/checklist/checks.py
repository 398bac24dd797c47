"""Checks: queries that say, from data, whether a runbook step's condition holds now.

Each check is a function `fn(incident) -> CheckResult(passed, evidence)` decorated with `@check(label)`, which
makes it a `Check`; a runbook Step names it by that object, and a checklist item stores its `name`. `passed` is True or False for a condition
("No error alerts in last 15 minutes"), None for a report that informs a person (triage) or for a condition
that cannot be judged yet (verify_sync never ran). Checks only read;
`incidents.services.checklist.incident_evaluate_checks` stores their results and completes the items whose check passes.
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Exists, F, Max, OuterRef, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from incidents import conf
from incidents.models import IncidentStatus, Postmortem
from incidents.selectors import affected_integrations, disabled_during, incident_start, paused_during
from integrations.catalog import PROVIDERS
from integrations.models import (
    AuditAction,
    AuditEvent,
    AuthType,
    CrmSyncStatus,
    Defect,
    DefectStatus,
    IntegrationStatus,
    Record,
    RecordLink,
    SyncDirection,
    SyncLog,
    SyncMode,
    SyncStatus,
    WebhookDelivery,
    WebhookStatus,
)
from integrations.providers.rate_limits import parse_rate_limit
from integrations.selectors.rates import window_start

WINDOW = timedelta(minutes=15)
ERROR_STATUSES = (SyncStatus.FAILED, SyncStatus.RETRYING)
STALE_TYPES = ("STALE_ENRICHMENT", "STALE_CRM_SYNC")


@dataclass(frozen=True)
class CheckResult:
    passed: bool | None
    evidence: str

    @property
    def label(self) -> str:
        return {True: "pass", False: "fail", None: "info"}[self.passed]


@dataclass(frozen=True)
class Check:
    """A check: the function and the label the tracker shows."""

    do_not_call_in_templates = True  # templates read its label; calling needs an incident
    fn: Callable[..., CheckResult]
    label: str

    @property
    def name(self) -> str:
        """The stable key a checklist item stores (ChecklistItem.check_name): the function's name."""
        return self.fn.__name__

    def __call__(self, incident) -> CheckResult:
        return self.fn(incident)


def check(label: str) -> Callable[[Callable], Check]:
    def make(fn: Callable[..., CheckResult]) -> Check:
        return Check(fn, label)

    return make


def run(check: Check, incident) -> CheckResult:
    """Run one check; a crash is reported as evidence, never raised at the tracker."""
    try:
        return check(incident)
    except Exception as e:  # a broken check must not take the tracker page down
        return CheckResult(None, f"check failed to run: {type(e).__name__}: {e}")


# ------------------------------------------------------------------------------------------ helpers


def _logs(incident):
    return SyncLog.objects.filter(integration__in=affected_integrations(incident).values("pk"))


def attempts(qs):
    """The attempts among sync logs: the one place checks count attempts (and retries) from sync logs.

    Sync logs are append-only: every row is one attempt, and a retry is a row whose `retry_of` names the attempt
    it retries.
    """
    return qs


def retried(qs):
    """Attempts that were retries of an earlier attempt (see `attempts`)."""
    return qs.filter(retry_of__isnull=False)


def _recent(qs, since):
    """The attempts of the window that began at `since` (= now - WINDOW), counted as the rollups count them: the
    ones the rollups counted (`counted`), by the minute they finished, from the rollups' first minute. So a
    check's "n errors of m attempts" is the dashboard's and detection's for the same integrations."""
    start = window_start(since + WINDOW, int(WINDOW.total_seconds() // 60))
    return qs.filter(counted=True, finished_at__gte=start)


def _errors(qs):
    return qs.filter(status__in=ERROR_STATUSES).exclude(error_category="")


def _live(incident):
    """Affected integrations that are meant to work (enabled)."""
    return affected_integrations(incident).filter(enabled=True)


def _names(rows, limit=5) -> str:
    rows = list(rows)
    text = ", ".join(str(r) for r in rows[:limit])
    return text + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def _statuses(incident) -> Counter:
    return Counter(
        dict(affected_integrations(incident).values_list("status").annotate(n=Count("pk")).order_by())
    )


def _fmt_counter(counter) -> str:
    return ", ".join(f"{k or 'none'} {v}" for k, v in sorted(counter.items())) or "none"


# ------------------------------------------------------------------------------------------ reports (triage)


@check("Integration statuses")
def status_report(incident) -> CheckResult:
    counts = _statuses(incident)
    return CheckResult(None, f"{PROVIDERS[incident.provider].name} integrations: {_fmt_counter(counts)}")


@check("Errors by category and endpoint (15 min)")
def error_breakdown(incident) -> CheckResult:
    since = timezone.now() - WINDOW
    logs = _recent(SyncLog.objects.filter(provider=incident.provider), since)
    total = logs.count()
    errors = _errors(logs)
    by_cat = Counter(dict(errors.values_list("error_category").annotate(n=Count("pk")).order_by()))
    by_endpoint = Counter(dict(errors.values_list("endpoint").annotate(n=Count("pk")).order_by()))
    n = sum(by_cat.values())
    rate = f"{n / total:.0%}" if total else "n/a"
    top = ", ".join(f"{e or 'no request made'} {c}" for e, c in by_endpoint.most_common(3))
    return CheckResult(
        None,
        f"{n} errors of {total} attempts ({rate}) in 15 min; by category: {_fmt_counter(by_cat)}"
        + (f"; top endpoints: {top}" if top else ""),
    )


@check("Queue depth")
def queue_report(incident) -> CheckResult:
    logs = _logs(incident)
    retrying = logs.awaiting_retry().count()  # a retried attempt keeps its RETRYING outcome, not its due time
    pending = logs.filter(status=SyncStatus.PENDING).count()
    webhooks = WebhookDelivery.objects.filter(
        integration__in=affected_integrations(incident).values("pk"),
        status__in=[WebhookStatus.FAILED, WebhookStatus.QUEUED],
    ).count()
    return CheckResult(
        None,
        f"{retrying} sync retries waiting, {pending} pending, {webhooks} webhook deliveries failed or queued",
    )


@check("Token expiry")
def token_report(incident) -> CheckResult:
    now = timezone.now()
    qs = affected_integrations(incident)
    if PROVIDERS[incident.provider].auth_type != AuthType.OAUTH2:
        return CheckResult(
            None,
            f"{PROVIDERS[incident.provider].name} uses API keys; "
            f"statuses: {_fmt_counter(_statuses(incident))}",
        )
    expired = qs.filter(expires_at__lte=now).count()
    soon = qs.filter(expires_at__gt=now, expires_at__lte=now + timedelta(minutes=10)).count()
    reauth = qs.filter(status=IntegrationStatus.NEEDS_REAUTH).count()
    last = qs.aggregate(m=Max("last_refreshed_at"))["m"]
    return CheckResult(
        None,
        f"{expired} expired, {soon} expiring within 10 min, {reauth} need re-authorization; "
        f"last refresh {last:%Y-%m-%d %H:%M:%S}"
        if last
        else f"{expired} expired, {soon} expiring within 10 min, {reauth} need re-authorization; "
        "never refreshed",
    )


def _last_headers(incident):
    return (
        SyncLog.objects.filter(provider=incident.provider)
        .exclude(rate_limit_headers={})
        .order_by("-id")
        .values_list("rate_limit_headers", "created_at")
        .first()
    )


@check("Rate limits")
def rate_limit_report(incident) -> CheckResult:
    since = timezone.now() - WINDOW
    n429 = _recent(
        SyncLog.objects.filter(provider=incident.provider, error_category="rate_limited"), since
    ).count()
    last = _last_headers(incident)
    if last:
        headers = ", ".join(f"{k}: {v}" for k, v in sorted(last[0].items()))
        seen = f"last headers ({timezone.localtime(last[1]):%H:%M:%S}): {headers}"
    else:
        seen = "no rate-limit headers seen"
    return CheckResult(None, f"{n429} rate-limited attempts in 15 min; {seen}")


@check("Requests by tenant and operation (15 min)")
def traffic_report(incident) -> CheckResult:
    since = timezone.now() - WINDOW
    logs = _recent(SyncLog.objects.filter(provider=incident.provider), since)
    by_tenant = logs.values_list("tenant__slug").annotate(n=Count("pk")).order_by("-n")[:5]
    by_op = logs.values_list("operation").annotate(n=Count("pk")).order_by("-n")[:5]
    retries = retried(logs).count()
    return CheckResult(
        None,
        f"by tenant: {_fmt_counter(dict(by_tenant))}; by operation: {_fmt_counter(dict(by_op))}; "
        f"{retries} retried attempts",
    )


@check("Failure summary")
def failure_summary(incident) -> CheckResult:
    failed = _logs(incident).filter(status=SyncStatus.FAILED, created_at__gte=incident_start(incident))
    rows = failed.values_list("error_category", "error_field").annotate(n=Count("pk")).order_by("-n")[:8]
    text = ", ".join(f"{c}{'/' + f if f else ''} {n}" for c, f, n in rows) or "no failed syncs"
    return CheckResult(None, f"failed since the incident began: {text}")


@check("Webhook deliveries")
def webhook_report(incident) -> CheckResult:
    qs = WebhookDelivery.objects.filter(provider=incident.provider, received_at__gte=incident_start(incident))
    counts = Counter(dict(qs.values_list("status").annotate(n=Count("pk")).order_by()))
    return CheckResult(None, f"deliveries since the incident began: {_fmt_counter(counts)}")


@check("Stale data")
def stale_report(incident) -> CheckResult:
    open_defects = Defect.objects.filter(
        provider=incident.provider, status=DefectStatus.OPEN, defect_type__in=STALE_TYPES
    ).count()
    deferred = Record.objects.filter(
        tenant__integrations__in=affected_integrations(incident).values("pk"),
        enrichment_status__in=["PENDING", "DEFERRED", "FAILED"],
    ).count()
    return CheckResult(
        None,
        f"{open_defects} open stale defects; {deferred} records with enrichment pending, deferred or failed",
    )


def _failed_records(incident):
    kind = PROVIDERS[incident.provider].record_kind
    integrations = affected_integrations(incident)
    return Record.objects.filter(
        Exists(integrations.filter(tenant_id=OuterRef("tenant_id"))),
        kind=kind,
        crm_sync_status=CrmSyncStatus.FAILED,
    )


@check("Impact scope")
def impact_report(incident) -> CheckResult:
    rows = _failed_records(incident).values_list("tenant__slug").annotate(n=Count("pk")).order_by("-n")
    failing = affected_integrations(incident).exclude(status=IntegrationStatus.CONNECTED).count()
    text = ", ".join(f"{slug} {n}" for slug, n in rows) or "none"
    return CheckResult(
        None, f"records with crm_sync_status FAILED by tenant: {text}; {failing} integrations not connected"
    )


@check("Same failure at other providers (24 h)")
def similar_failures_elsewhere(incident) -> CheckResult:
    if not incident.dominant_category:
        return CheckResult(None, "no dominant error category recorded")
    since = timezone.now() - timedelta(hours=24)
    rows = (
        SyncLog.objects.filter(
            created_at__gte=since, error_category=incident.dominant_category, status=SyncStatus.FAILED
        )
        .exclude(provider=incident.provider)
        .values_list("provider")
        .annotate(n=Count("pk"))
        .order_by("-n")
    )
    return CheckResult(None, f"{incident.dominant_category} failures elsewhere: {_fmt_counter(dict(rows))}")


# ------------------------------------------------------------------------------------------ conditions


@check('Integration status shows "connected"')
def status_connected(incident) -> CheckResult:
    counts = _statuses(incident)
    total = sum(counts.values())
    if not total:
        return CheckResult(None, "no integrations of the provider")
    ok = counts.get(IntegrationStatus.CONNECTED, 0)
    return CheckResult(ok == total, f"{ok} of {total} connected ({_fmt_counter(counts)})")


@check("No integration needs re-authorization")
def no_needs_reauth(incident) -> CheckResult:
    rows = list(
        affected_integrations(incident)
        .filter(status=IntegrationStatus.NEEDS_REAUTH)
        .values_list("tenant__slug", flat=True)
    )
    return CheckResult(
        not rows, f"needs re-authorization: {_names(rows)}" if rows else "none needs re-authorization"
    )


@check("Successful syncs since the incident began")
def sync_success(incident) -> CheckResult:
    start = incident_start(incident)
    n = _logs(incident).filter(status=SyncStatus.SUCCESS, created_at__gte=start).count()
    agg = _live(incident).aggregate(success=Max("last_success_at"), error=Max("last_error_at"))
    success, error = agg["success"], agg["error"]
    passed = bool(n and success and success > start and (error is None or success > error))
    # The integration's last success may be a test call (Reconnect), not a sync: the words keep them apart.
    last = f"last successful call {_hms(success)}" if success else "no successful call yet"
    last_error = f", last error {_hms(error)}" if error else ""
    return CheckResult(passed, f"{n} successful syncs since {_hms(start)}; {last}{last_error}")


def _hms(at) -> str:
    return f"{timezone.localtime(at):%H:%M:%S}"


@check("No errors in the last 15 minutes")
def no_errors_15m(incident) -> CheckResult:
    since = timezone.now() - WINDOW
    errors = _errors(_recent(_logs(incident), since))
    n = errors.count()
    late = _live(incident).filter(last_error_at__gte=since).count()
    if n or late:
        last = errors.aggregate(m=Max("created_at"))["m"]
        when = f", last at {last:%H:%M:%S}" if last else ""
        return CheckResult(
            False,
            f"{n} failed or retrying attempts and {late} integrations erring in the last 15 minutes{when}; "
            f"{_recovery(incident)}",
        )
    return CheckResult(True, f"no failed or retrying attempts in the last 15 minutes; {_recovery(incident)}")


@check("Integration success rate restored")
def success_rate_restored(incident) -> CheckResult:
    since = timezone.now() - WINDOW
    logs = attempts(_recent(_logs(incident), since)).exclude(
        status__in=[SyncStatus.RUNNING, SyncStatus.PENDING]
    )
    total = logs.count()
    errors = logs.filter(status__in=ERROR_STATUSES).count()
    ok = logs.filter(status=SyncStatus.SUCCESS).count()
    recovered = _recovery(incident)
    if not total:
        return CheckResult(
            False, f"no sync attempts in the last 15 minutes: nothing shows the rate restored; {recovered}"
        )
    rate = errors / total
    # Every live integration must have succeeded after its last error: a success somewhere proves nothing
    # while the others still fail.
    still = list(
        _live(incident)
        .filter(Q(last_success_at__isnull=True) | Q(last_error_at__gt=F("last_success_at")))
        .values_list("tenant__slug", flat=True)
    )
    text = (
        f"{ok} of {total} attempts succeeded in 15 min (error rate {rate:.0%}, threshold "
        f"{conf.error_rate_threshold():.0%}); {recovered}"
    )
    if still:
        text += f"; still failing since their last success: {_names(still)}"
    passed = ok > 0 and rate < conf.error_rate_threshold() and incident.recovered_at is not None and not still
    return CheckResult(passed, text)


def _recovery(incident) -> str:
    """The recovery signal detection notes (Incident.recovered_at), in words."""
    if incident.recovered_at is None:
        return f"no recovery signal yet (fast window clean for {conf.recovery_clean_minutes()} minutes)"
    return f"recovered at {timezone.localtime(incident.recovered_at):%H:%M:%S}"


@check("Syncs processing without 429 errors")
def no_429(incident) -> CheckResult:
    since = timezone.now() - WINDOW
    n = _recent(_logs(incident).filter(error_category="rate_limited"), since).count()
    ok = _recent(_logs(incident).filter(status=SyncStatus.SUCCESS), since).count()
    return CheckResult(
        n == 0 and ok > 0, f"{n} rate-limited attempts and {ok} successes in the last 15 minutes"
    )


@check("Rate limit headers show available quota")
def rate_limit_headroom(incident) -> CheckResult:
    last = _last_headers(incident)
    if not last:
        return CheckResult(None, "no rate-limit headers seen from the provider yet")
    headers, at = last
    remaining = parse_rate_limit(headers).remaining
    if remaining is None:
        return CheckResult(None, f"headers at {at:%H:%M:%S} carry no remaining count: {headers}")
    return CheckResult(remaining > 0, f"{remaining} requests remaining (headers at {at:%H:%M:%S})")


def _retrying(incident) -> tuple[int, int]:
    logs = _logs(incident).awaiting_retry().filter(record__isnull=False)
    return logs.count(), logs.filter(created_at__gte=timezone.now() - WINDOW).count()


@check("Queue depth returning to normal")
def queue_draining(incident) -> CheckResult:
    n, new = _retrying(incident)
    peak = (incident.impact or {}).get("peak_retrying") or 0
    if n == 0:
        return CheckResult(True, f"no sync retries waiting (peak {peak})")
    # Returning to normal: nothing added for 15 minutes and below the peak (when one was measured).
    return CheckResult(
        new == 0 and (not peak or n < peak),
        f"{n} sync retries waiting, {new} added in the last 15 min" + (f" (peak {peak})" if peak else ""),
    )


@check("Retry queue draining")
def retry_queue_draining(incident) -> CheckResult:
    syncs = queue_draining(incident)
    webhooks = WebhookDelivery.objects.filter(
        integration__in=affected_integrations(incident).values("pk"),
        status__in=[WebhookStatus.FAILED, WebhookStatus.QUEUED],
    ).count()
    return CheckResult(
        bool(syncs.passed) and webhooks == 0,
        f"{syncs.evidence}; {webhooks} webhook deliveries failed or queued",
    )


@check("Webhook success rate back to normal")
def webhook_success_rate(incident) -> CheckResult:
    since = timezone.now() - WINDOW
    qs = WebhookDelivery.objects.filter(integration__in=affected_integrations(incident).values("pk"))
    bad = qs.filter(
        status__in=[WebhookStatus.FAILED, WebhookStatus.DEAD, WebhookStatus.QUEUED],
        received_at__gte=incident_start(incident),
    ).count()
    recent = qs.filter(received_at__gte=since)
    processed = recent.filter(status=WebhookStatus.PROCESSED).count()
    return CheckResult(
        bad == 0,
        f"{bad} deliveries since the incident began still failed, dead or queued; "
        f"{processed} of {recent.count()} processed in the last 15 min",
    )


@check("Token successfully refreshed")
def token_refreshed(incident) -> CheckResult:
    if PROVIDERS[incident.provider].auth_type != AuthType.OAUTH2:
        return test_call_ok(incident)
    start = incident_start(incident)
    live = _live(incident)
    stale = list(
        live.filter(
            Q(last_refreshed_at__isnull=True)
            | Q(last_refreshed_at__lte=start)
            | Q(status=IntegrationStatus.NEEDS_REAUTH)
        ).values_list("tenant__slug", flat=True)
    )
    total = live.count()
    return CheckResult(
        total > 0 and not stale,
        f"{total - len(stale)} of {total} refreshed since {start:%H:%M:%S}"
        + (f"; not yet: {_names(stale)}" if stale else ""),
    )


@check("Test API call succeeds")
def test_call_ok(incident) -> CheckResult:
    start = incident_start(incident)
    live = _live(incident)
    failing = list(
        live.filter(
            Q(last_success_at__isnull=True)
            | Q(last_success_at__lte=start)
            | Q(last_error_at__gt=F("last_success_at"))
        ).values_list("tenant__slug", flat=True)
    )
    total = live.count()
    return CheckResult(
        total > 0 and not failing,
        f"{total - len(failing)} of {total} answered a call since {start:%H:%M:%S}"
        + (f"; not yet: {_names(failing)}" if failing else ""),
    )


@check("No data left needing a manual sync")
def no_failed_records(incident) -> CheckResult:
    rows = dict(_failed_records(incident).values_list("tenant__slug").annotate(n=Count("pk")).order_by())
    n = sum(rows.values())
    return CheckResult(
        n == 0, f"{n} records with crm_sync_status FAILED" + (f": {_fmt_counter(rows)}" if n else "")
    )


def unsynced_records(incident):
    """Records of the provider's kind, of the affected tenants, left FAILED or never created at the provider (a
    link without a remote id, or whose last push failed)."""
    kind = PROVIDERS[incident.provider].record_kind
    integrations = affected_integrations(incident)
    links = RecordLink.objects.filter(integration__in=integrations.values("pk")).filter(
        Q(remote_id="") | Q(failed_at__isnull=False)
    )
    return Record.objects.filter(
        Exists(integrations.filter(tenant_id=OuterRef("tenant_id"))), kind=kind
    ).filter(Q(crm_sync_status=CrmSyncStatus.FAILED) | Q(Exists(links.filter(record_id=OuterRef("pk")))))


@check("No record of the provider left failed or never created")
def no_unsynced_records(incident) -> CheckResult:
    qs = unsynced_records(incident)
    n = qs.count()
    failed = qs.filter(crm_sync_status=CrmSyncStatus.FAILED).count()
    name = PROVIDERS[incident.provider].name
    return CheckResult(
        n == 0,
        f"{n} records left: {failed} FAILED, {n - failed} never created at {name}"
        if n
        else f"every record reached {name}",
    )


@check("None left disabled of those disabled during the incident")
def nothing_left_disabled(incident) -> CheckResult:
    rows = list(disabled_during(incident).values_list("tenant__slug", flat=True))
    return CheckResult(
        not rows,
        f"still disabled: {_names(rows)}"
        if rows
        else "no integration disabled during the incident is left disabled",
    )


@check("None left paused of those paused during the incident")
def nothing_left_paused(incident) -> CheckResult:
    rows = list(paused_during(incident).values_list("tenant__slug", flat=True))
    return CheckResult(
        not rows,
        f"still paused: {_names(rows)}"
        if rows
        else "no integration paused during the incident is left paused",
    )


@check("Retry succeeds for previously failed records")
def retry_succeeded(incident) -> CheckResult:
    start = incident_start(incident)
    pushes = _logs(incident).filter(direction=SyncDirection.PUSH, record__isnull=False, created_at__gte=start)
    retried_ok = retried(pushes).filter(status=SyncStatus.SUCCESS).count()
    # A failed attempt keeps its outcome; it still stands only while no retry of it has been made.
    still = (
        pushes.filter(status__in=ERROR_STATUSES)
        .exclude(Exists(SyncLog.objects.filter(retry_of=OuterRef("pk"))))
        .count()
    )
    return CheckResult(
        still == 0 and retried_ok > 0,
        f"{retried_ok} previously failed pushes succeeded on retry; {still} still failed or retrying",
    )


@check("No new failures with same error type")
def no_new_failures_same_type(incident) -> CheckResult:
    category = incident.dominant_category
    if not category:
        return no_errors_15m(incident)
    since = timezone.now() - WINDOW
    # Attempts are never rewritten: a failure that has been retried is superseded by its retry, which is
    # counted in its turn (and a retry queued but not yet run is waited for, not taken as a success).
    n = (
        _recent(_logs(incident).filter(status__in=ERROR_STATUSES, error_category=category), since)
        .exclude(Exists(SyncLog.objects.filter(retry_of=OuterRef("pk"))))
        .count()
    )
    waiting = (
        _logs(incident)
        .filter(status__in=[SyncStatus.PENDING, SyncStatus.RUNNING], retry_of__error_category=category)
        .count()
    )
    more = f"; {waiting} retries of them not yet run" if waiting else ""
    return CheckResult(n == 0 and waiting == 0, f"{n} new {category} failures in the last 15 minutes{more}")


def _latest_audits(incident, action: str) -> dict[int, tuple]:
    """The latest audit row of `action` per integration since the incident began: {integration_id: (at, details)}."""
    rows = (
        AuditEvent.objects.filter(
            provider=incident.provider,
            action=action,
            created_at__gte=incident_start(incident),
            integration__isnull=False,
        )
        .order_by("created_at", "id")
        .values_list("integration_id", "created_at", "details")
    )
    return {integration_id: (at, details or {}) for integration_id, at, details in rows}


@check("verify_sync compared local and provider data")
def verify_sync_clean(incident) -> CheckResult:
    latest = _latest_audits(incident, AuditAction.INTEGRATION_VERIFY_SYNC)
    if not latest:
        return CheckResult(None, "verify_sync has not run since the incident began")
    live = dict(_live(incident).values_list("pk", "tenant__slug"))
    missing = [slug for pk, slug in live.items() if pk not in latest]
    bad = [
        (live.get(pk, pk), d)
        for pk, (_, d) in latest.items()
        if pk in live and (d.get("mismatches") or d.get("errors"))
    ]
    checked = sum(int(d.get("checked") or 0) for _, d in latest.values())
    if bad:
        text = "; ".join(
            f"{slug}: {d.get('mismatches', 0)} mismatches, {d.get('errors', 0)} errors" for slug, d in bad[:5]
        )
        return CheckResult(False, f"verify_sync found differences: {text}")
    if missing:
        return CheckResult(
            None, f"{checked} records compared, no mismatch; not verified yet: {_names(missing)}"
        )
    return CheckResult(True, f"{checked} records compared across {len(latest)} integrations: no mismatch")


def _clean_reconciles(incident) -> tuple[dict, dict]:
    latest = _latest_audits(incident, AuditAction.INTEGRATION_RECONCILE)
    live = dict(_live(incident).values_list("pk", "tenant__slug"))
    return latest, live


@check("Audit events for reconciled data present")
def reconciled_audit_present(incident) -> CheckResult:
    latest, live = _clean_reconciles(incident)
    records = AuditEvent.objects.filter(
        provider=incident.provider,
        action=AuditAction.RECORD_RECONCILED,
        created_at__gte=incident_start(incident),
    ).count()
    if not latest:
        return CheckResult(None, "no reconcile has run since the incident began")
    failed = [live[pk] for pk, (_, d) in latest.items() if pk in live and d.get("errors")]
    missing = [slug for pk, slug in live.items() if pk not in latest]
    ok = not failed and not missing
    text = f"{records} record.reconciled audit events; {len(latest)} integrations reconciled"
    if failed:
        text += f"; reconcile failed for {_names(failed)}"
    if missing:
        text += f"; not reconciled: {_names(missing)}"
    return CheckResult(ok, text)


@check("No gaps in sync timeline")
def no_sync_gaps(incident) -> CheckResult:
    latest, live = _clean_reconciles(incident)
    start = incident_start(incident)
    last_error = dict(_live(incident).values_list("pk", "last_error_at"))
    gaps = []
    for pk, slug in live.items():
        at, details = latest.get(pk, (None, {}))
        since = parse_datetime(details.get("since") or "") if details else None
        if at is None or details.get("errors") or since is None or since > start:
            gaps.append(slug)
        elif last_error.get(pk) and last_error[pk] > at:
            gaps.append(slug)
    if not live:
        return CheckResult(None, "no enabled integrations of the provider")
    return CheckResult(
        not gaps,
        "every integration reconciled from before the outage began, after its last error"
        if not gaps
        else f"not covered from {start:%H:%M:%S}: {_names(gaps)}",
    )


@check("Polling fallback on")
def mode_polling(incident) -> CheckResult:
    if not PROVIDERS[incident.provider].supports_webhooks:
        return CheckResult(True, f"{PROVIDERS[incident.provider].name} sends no webhooks: always polled")
    live = _live(incident)
    total = live.count()
    polling = live.filter(mode=SyncMode.POLLING).count()
    return CheckResult(total > 0 and polling == total, f"{polling} of {total} polling")


@check("Enrichment deferred on error")
def enrichment_deferred(incident) -> CheckResult:
    live = _live(incident)
    total = live.count()
    on = live.filter(enrichment_defer_on_error=True).count()
    return CheckResult(total > 0 and on == total, f"{on} of {total} defer enrichment on error")


@check("Normal mode restored")
def normal_mode(incident) -> CheckResult:
    live = _live(incident)
    total = live.count()
    webhooks = PROVIDERS[incident.provider].supports_webhooks
    abnormal = live.filter(
        Q(enrichment_defer_on_error=True) | (Q(mode=SyncMode.POLLING) if webhooks else Q(pk=None))
    )
    n = abnormal.count()
    return CheckResult(
        n == 0, f"{total - n} of {total} in normal mode" + ("" if webhooks else " (polled: no webhooks)")
    )


@check("No open stale defects")
def no_stale_defects(incident) -> CheckResult:
    n = Defect.objects.filter(
        provider=incident.provider,
        status=DefectStatus.OPEN,
        defect_type__in=STALE_TYPES,
        created_at__gte=incident_start(incident) - timedelta(hours=4),
    ).count()
    return CheckResult(n == 0, f"{n} open stale defects")


@check("Incident resolved in the tracker")
def incident_resolved(incident) -> CheckResult:
    done = incident.status in (IncidentStatus.RESOLVED, IncidentStatus.CLOSED)
    return CheckResult(done, f"status {incident.status}")


# An answer is a sentence, not a keystroke: a field ticks its own item once it holds a few words.
MIN_ANSWER_WORDS = 3


def _answered(incident, field: str, label: str) -> CheckResult:
    value = (Postmortem.objects.filter(incident=incident).values_list(field, flat=True).first() or "").strip()
    if not value:
        return CheckResult(False, f"postmortem: {label} not answered yet")
    if len(value.split()) < MIN_ANSWER_WORDS:
        return CheckResult(
            False, f"postmortem: {label} too short to be an answer ({len(value.split())} words)"
        )
    return CheckResult(True, f"postmortem: {label} answered ({len(value.split())} words)")


@check("Postmortem: root cause")
def pm_root_cause(incident) -> CheckResult:
    return _answered(incident, "root_cause", "root cause")


@check("Postmortem: fallback effectiveness")
def pm_fallback_effective(incident) -> CheckResult:
    return _answered(incident, "fallback_effective", "fallback effectiveness")


@check("Postmortem: reconciliation completeness")
def pm_reconciliation_completeness(incident) -> CheckResult:
    return _answered(incident, "reconciliation_completeness", "reconciliation completeness")


@check("Postmortem: communication timeliness")
def pm_communication_timeliness(incident) -> CheckResult:
    return _answered(incident, "communication_timeliness", "communication timeliness")


@check("Postmortem: resilience review")
def pm_resilience_review(incident) -> CheckResult:
    return _answered(incident, "resilience_review", "resilience review")


@check("Postmortem: multi-provider strategy")
def pm_multi_provider_strategy(incident) -> CheckResult:
    return _answered(incident, "multi_provider_strategy", "multi-provider strategy")


@check("Postmortem: fallback mechanism reliability")
def pm_fallback_reliability(incident) -> CheckResult:
    return _answered(incident, "fallback_reliability", "fallback mechanism reliability")


@check("Postmortem: local caching improvements")
def pm_local_caching(incident) -> CheckResult:
    return _answered(incident, "local_caching", "local caching improvements")
