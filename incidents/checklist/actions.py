"""Checklist actions: the operations the console runs for an incident's provider and affected integrations.

Each action is a function `fn(incident, actor, params) -> ActionOutcome` decorated with `@action(label,
explanation)`, which makes it an `Action`; a runbook Step names it by that object. An action calls the
integrations service it stands for directly. Actions never check rights themselves: the services do
(`OPERATE`, `MANAGE_CREDENTIALS`). `incidents.services.checklist.checklist_item_run_action` wraps them with the
timeline, the audit and the item's completion; a checklist item stores the action's `name`.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from incidents.selectors import affected_integrations, disabled_during, incident_start, paused_during
from incidents.services import communication
from integrations import services
from integrations.access.actors import MANAGE_CREDENTIALS
from integrations.catalog import PROVIDERS
from integrations.models import Defect, SyncLog, WebhookDelivery

POLL_INTERVAL = timedelta(minutes=5)
WEBHOOK_MAX_RETRIES = 10
VERIFY_SAMPLE = 20
CLEAR_WITHIN = timedelta(hours=4)
# Reconcile from a little before the first error, so that nothing at the edge is missed.
RECONCILE_MARGIN = timedelta(minutes=5)


@dataclass
class ActionOutcome:
    summary: str
    details: dict = field(default_factory=dict)
    ok: bool = True


@dataclass(frozen=True)
class Param:
    name: str
    label: str
    required: bool = False
    kind: str = "text"  # text, textarea, int
    help: str = ""


@dataclass(frozen=True)
class Action:
    """A checklist action: the function and what the tracker shows of it."""

    do_not_call_in_templates = True  # templates read its label; calling needs an incident
    fn: Callable[..., ActionOutcome]
    label: str
    explanation: str
    params: tuple[Param, ...] = ()
    # The integrations the action will act on, for its confirmation (None: the affected integrations).
    targets: Callable | None = None
    # The right the action's service needs beyond working incidents ("" for none): shown before it refuses.
    needs: str = ""
    # Why the step does not apply to this incident ("" when it does), shown instead of its button.
    not_required: Callable[..., str] | None = None

    @property
    def name(self) -> str:
        """The stable key a checklist item stores (ChecklistItem.action): the function's name."""
        return self.fn.__name__

    def __call__(self, incident, actor, params: dict) -> ActionOutcome:
        return self.fn(incident, actor, params)


def action(
    label: str, explanation: str, *, params=(), targets=None, needs: str = "", not_required=None
) -> Callable[[Callable], Action]:
    def make(fn: Callable[..., ActionOutcome]) -> Action:
        return Action(fn, label, explanation, tuple(params), targets, needs, not_required)

    return make


def _extra(incident) -> dict:
    return {"incident": incident.pk, "source": f"INC-{incident.pk}"}


def _live(incident):
    return affected_integrations(incident).filter(enabled=True)


def _counts(result) -> dict:
    return {k: v for k, v in result.details.items() if k.startswith("n_")}


def _incident_reason(incident, params, default: str) -> str:
    reason = (params.get("reason") or "").strip() or default
    return f"INC-{incident.pk} {incident.runbook}: {reason}"


# ------------------------------------------------------------------------------------------ containment


@action(
    "Switch to polling",
    "Polling every 5 minutes instead of webhooks, for the affected integrations of the "
    "provider (RB-09 containment 1).",
)
def switch_to_polling(incident, actor, params) -> ActionOutcome:
    result = services.integrations_set_mode(
        integrations=_live(incident),
        actor=actor,
        mode="polling",
        poll_interval=POLL_INTERVAL,
        audit_extra=_extra(incident),
    )
    return ActionOutcome(result.describe("Switch to polling"), {"changed": result.changed})


@action(
    "Defer enrichment on error",
    "Enrichment steps are deferred while the provider errs (RB-09 containment 2).",
)
def defer_enrichment(incident, actor, params) -> ActionOutcome:
    result = services.integrations_set_enrichment_defer(
        integrations=_live(incident), actor=actor, on=True, audit_extra=_extra(incident)
    )
    return ActionOutcome(result.describe("Defer enrichment on error"), {"changed": result.changed})


@action(
    "Restore normal mode",
    "Webhook mode, default poll interval, enrichment no longer deferred (RB-09 recovery 5).",
)
def restore_normal_mode(incident, actor, params) -> ActionOutcome:
    mode = services.integrations_set_mode(
        integrations=_live(incident), actor=actor, mode="webhook", audit_extra=_extra(incident)
    )
    defer = services.integrations_set_enrichment_defer(
        integrations=_live(incident), actor=actor, on=False, audit_extra=_extra(incident)
    )
    return ActionOutcome(
        f"{mode.describe('Restore webhook mode')} {defer.describe('Stop deferring enrichment')}",
        {"mode_changed": mode.changed, "defer_changed": defer.changed},
    )


@action(
    'Create "stale" defects',
    "An OPEN stale defect for every record the provider left stale since the "
    "incident began (RB-09 containment 3).",
)
def create_stale_defects(incident, actor, params) -> ActionOutcome:
    result = services.defects_create_stale(
        provider=incident.provider,
        since=incident_start(incident),
        actor=actor,
        integrations=affected_integrations(incident),
        audit_extra=_extra(incident),
    )
    return ActionOutcome(result.describe("Create stale defects"), {"changed": result.changed})


@action(
    "Queue webhook retries",
    "Failed and dead webhook deliveries of the affected integrations are queued "
    "again, with up to 10 retries (RB-09 containment 4).",
)
def queue_webhook_retries(incident, actor, params) -> ActionOutcome:
    deliveries = WebhookDelivery.objects.filter(integration__in=affected_integrations(incident).values("pk"))
    result = services.webhooks_queue_retries(
        provider=incident.provider,
        actor=actor,
        max_retries=WEBHOOK_MAX_RETRIES,
        deliveries=deliveries,
        audit_extra=_extra(incident),
    )
    return ActionOutcome(result.describe("Queue webhook retries"), {"changed": result.changed})


@action(
    "Pause non-critical syncs",
    "Pauses every integration of the provider whose 'critical' flag is off, to "
    "reduce the request rate; critical ones keep syncing (RB-03 step 3).",
    params=[Param("reason", "Reason")],
)
def pause_non_critical(incident, actor, params) -> ActionOutcome:
    result = services.integrations_pause_non_critical(
        provider=incident.provider,
        actor=actor,
        reason=_incident_reason(incident, params, "rate limit exhaustion, non-critical syncs paused"),
    )
    return ActionOutcome(
        result.describe("Pause non-critical syncs"),
        {"changed": result.changed, **_counts(result)},
        ok=result.changed > 0,
    )


@action(
    "Resume the syncs paused during this incident",
    "Resumes every integration of the provider paused during the incident's window, whoever paused it "
    "(tracker, admin, API or command), and only those.",
    targets=paused_during,
)
def resume_paused(incident, actor, params) -> ActionOutcome:
    result = services.integration_resume(integrations=paused_during(incident), actor=actor)
    return ActionOutcome(result.describe("Resume"), {"changed": result.changed}, ok=result.changed > 0)


@action(
    "Disable integrations",
    "Disables the affected integrations of the provider (RB-01 step 4, if they cause cascading failures).",
    params=[Param("reason", "Reason")],
)
def disable_integration(incident, actor, params) -> ActionOutcome:
    result = services.integration_disable(
        integrations=_live(incident),
        actor=actor,
        incident=incident.pk,
        reason=_incident_reason(incident, params, "disabled temporarily: cascading failures"),
    )
    return ActionOutcome(result.describe("Disable"), {"changed": result.changed})


@action(
    "Enable the integrations disabled during this incident",
    "Enables every integration of the provider disabled during the incident's window, whoever disabled it "
    "(tracker, admin, API or command).",
    targets=disabled_during,
)
def enable_integration(incident, actor, params) -> ActionOutcome:
    result = services.integration_enable(integrations=disabled_during(incident), actor=actor)
    return ActionOutcome(result.describe("Enable"), {"changed": result.changed}, ok=result.changed > 0)


# ------------------------------------------------------------------------------------------ recovery


@action(
    "Reconnect",
    "Refreshes each affected integration's OAuth token and proves it with a test call (API-key "
    "providers: a test call with the stored key); integrations whose refresh token is gone are listed for "
    "re-authorization. The runbooks call this 'refresh tokens'.",
)
def reconnect(incident, actor, params) -> ActionOutcome:
    result = services.integrations_reconnect(
        integrations=_live(incident), actor=actor, source=f"INC-{incident.pk}"
    )
    # Words that match the evidence: a failed refresh is a failure, not "already so".
    summary = f"Reconnect: {result.changed} of {result.total} reconnected"
    if result.unchanged:
        summary += f", {result.unchanged} failed"
    extra = [f"{k[2:].replace('_', ' ')}: {v}" for k, v in _counts(result).items() if v]
    summary += (f" ({', '.join(extra)})" if extra else "") + "."
    return ActionOutcome(
        summary,
        {"changed": result.changed, **_counts(result)},
        ok=result.unchanged == 0 and result.changed > 0,
    )


@action(
    "Rotate credentials",
    "Full rotation: every OAuth token of the affected integrations is refreshed and "
    "every credential re-encrypted with the newest key (RB-09 recovery 2).",
    needs=MANAGE_CREDENTIALS,
)
def rotate_credentials(incident, actor, params) -> ActionOutcome:
    result = services.credentials_rotate(
        provider=incident.provider,
        actor=actor,
        store_in_vault=True,
        integrations=affected_integrations(incident),
        source=f"INC-{incident.pk}",
    )
    return ActionOutcome(
        result.describe("Rotate credentials"), {"changed": result.changed, **_counts(result)}
    )


@action(
    "Reconcile since the incident began",
    "Fetches what changed at the provider since the first error "
    "(5 minutes' margin) and applies what differs locally (RB-09 recovery 3).",
)
def reconcile(incident, actor, params) -> ActionOutcome:
    since = incident_start(incident) - RECONCILE_MARGIN
    result = services.integrations_reconcile(
        integrations=_live(incident), since=since, actor=actor, audit_extra=_extra(incident)
    )
    d = result.details
    summary = (
        f"Reconcile: {d.get('n_checked', 0)} checked, {d.get('n_created', 0)} created, "
        f"{d.get('n_updated', 0)} updated, {d.get('n_errors', 0)} errors."
    )
    return ActionOutcome(summary, _counts(result), ok=not d.get("n_errors"))


@action(
    "Clear stale defects",
    "Resolves the provider's open stale defects of the affected tenants created since the incident began "
    "(and within 4 hours): 'Data refreshed after provider recovery' (RB-09 recovery 4). Defects from before "
    "the incident are left alone.",
)
def clear_stale_defects(incident, actor, params) -> ActionOutcome:
    defects = Defect.objects.filter(
        created_at__gte=incident_start(incident) - RECONCILE_MARGIN,
        tenant_id__in=affected_integrations(incident).values("tenant_id"),
    )
    result = services.defects_clear_stale(
        provider=incident.provider,
        defects=defects,
        within=CLEAR_WITHIN,
        actor=actor,
        resolution=services.DEFAULT_RESOLUTION,
        audit_extra=_extra(incident),
    )
    return ActionOutcome(result.describe("Clear stale defects"), {"changed": result.changed})


@action(
    "Verify sync (sample of 20)",
    "Compares 20 random linked records per affected integration, local against "
    "the provider, field by field (RB-09 verification 3).",
)
def verify_sync(incident, actor, params) -> ActionOutcome:
    result = services.integrations_verify_sync(
        integrations=_live(incident), sample_size=VERIFY_SAMPLE, actor=actor, audit_extra=_extra(incident)
    )
    d = result.details
    summary = (
        f"Verify sync: {d.get('n_checked', 0)} records compared, {d.get('n_mismatches', 0)} mismatches, "
        f"{d.get('n_errors', 0)} could not be fetched."
    )
    return ActionOutcome(summary, _counts(result), ok=not d.get("n_mismatches") and not d.get("n_errors"))


@action("Retry failed syncs", "Every FAILED push of the affected integrations is retried now (RB-04 step 4).")
def retry_failed(incident, actor, params) -> ActionOutcome:
    logs = SyncLog.objects.filter(integration__in=affected_integrations(incident).values("pk"))
    result = services.sync_logs_retry_failed(logs=logs, actor=actor, audit_extra=_extra(incident))
    return ActionOutcome(result.describe("Retry failed syncs"), {"changed": result.changed})


# ------------------------------------------------------------------------------------------ triage


@action(
    "Check provider status page",
    "Reads the provider's status page (Statuspage status.json) from the server "
    "and notes what it says on the timeline.",
)
def check_status_page(incident, actor, params) -> ActionOutcome:
    page = PROVIDERS[incident.provider].status_page
    reading = services.provider_check_status_page(provider=incident.provider, actor=actor)
    if reading is None:
        return ActionOutcome(f"No integration to ask; see {page}.", {"status_page": page}, ok=False)
    if reading.error:
        return ActionOutcome(
            f"Status page not readable ({reading.error[:200]}); see {page}.",
            {"status_page": page, "error": reading.error[:200]},
            ok=False,
        )
    return ActionOutcome(
        f"Provider status page: {reading.indicator} - {reading.description}",
        {"indicator": reading.indicator, "description": reading.description, "status_page": page},
    )


@action(
    "Test connectivity",
    "DNS, TCP, TLS and an HTTP request to the provider's base URL from the server, for "
    "the affected integrations (RB-01 step 3).",
)
def test_connectivity(incident, actor, params) -> ActionOutcome:
    results = services.integration_test_connectivity(integrations=_live(incident), actor=actor)
    if not results:
        return ActionOutcome("No enabled integration of the provider to test.", ok=False)
    lines, failing = [], 0
    for r in results:
        steps = ", ".join(
            f"{s.name} {'ok' if s.ok else ('failed: ' + (s.detail or '')) if s.ok is False else '-'}"
            + (f" {s.ms:.0f} ms" if s.ms is not None else "")
            for s in r["steps"]
        )
        lines.append(f"{r['integration'].tenant.slug} {r['url']}: {steps}")
        failing += not r["ok"]
    ok_urls = len(results) - failing
    return ActionOutcome(
        f"Test connectivity: {ok_urls} of {len(results)} reachable. " + "; ".join(lines[:5]),
        {"reachable": ok_urls, "unreachable": failing},
        ok=True,
    )


@action("Escalate to on-call", "Notifies the on-call rota for this severity (RB-09 escalation path).")
def escalate(incident, actor, params) -> ActionOutcome:
    result = communication.incident_escalate(incident=incident, actor=actor)
    return ActionOutcome(result.summary)


def _backend_not_required(incident) -> str:
    if "backend" in communication.teams_for(incident.severity):
        return ""
    return (
        f"Not required at {incident.severity}: Backend on-call is paged for SEV-2 "
        "(no fallback, material impact). Raise the severity if that is the case."
    )


@action(
    "Escalate to Backend on-call",
    "At SEV-2, pages Backend on-call as well as Integrations on-call (RB-09 escalation path).",
    not_required=_backend_not_required,
)
def escalate_backend(incident, actor, params) -> ActionOutcome:
    if why := _backend_not_required(incident):
        return ActionOutcome(why, ok=False)
    result = communication.incident_escalate(incident=incident, actor=actor)
    return ActionOutcome(result.summary)


# ------------------------------------------------------------------------------------------ communication


@action(
    "Notify affected tenants",
    "Sends each affected tenant's contacts an email with the provider, the impact "
    "and the time of the next update; noted on the timeline.",
    params=[
        Param("next_update_minutes", "Next update in (minutes)", kind="int", help="Default: 60 minutes.")
    ],
)
def notify_tenants(incident, actor, params) -> ActionOutcome:
    minutes = params.get("next_update_minutes") or None
    result = communication.incident_notify_tenants(
        incident=incident, actor=actor, next_update_minutes=minutes
    )
    return ActionOutcome(result["summary"], result, ok=result["sent"] > 0)


@action(
    "Post internal status note",
    "Posts an internal status note with the provider information on the incident's timeline.",
    params=[Param("message", "Status note", required=True, kind="textarea")],
)
def status_note(incident, actor, params) -> ActionOutcome:
    communication.incident_post_note(incident=incident, actor=actor, message=params.get("message") or "")
    return ActionOutcome("Internal status note posted.")
