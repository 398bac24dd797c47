"""Evidence: what proves a checklist action's step done, wherever the work was done.

A step with an action is done when an AuditEvent of one of the audit actions that action stands for (PROOFS)
happened for the incident's provider (and, when the incident records affected tenants, for one of them or for
the provider as a whole) from the incident's start until it is closed (post-incident work comes after the
resolution), and the event changed something. It does not matter whether the tracker, the admin, the JSON API or
a command did it: every one of them writes the same audit row. The evidence names who did it, how (tracker,
admin, API, command, automatic) and when.

Escalation steps are done when their team's on-call page was sent: the `incident.escalate_notify` audit rows
`incidents.services.communication.incident_escalate` writes, whose outbox row (Notification) is SENT. RB-09's
"SEV-3: Integrations on-call" step needs the integrations page, "SEV-2: + Backend on-call" the backend one.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from incidents.models import Notification, NotificationStatus
from incidents.selectors import incident_end, incident_start
from integrations.models import ActorType, AuditAction, AuditEvent

TRACKER_LAG = timedelta(minutes=2)


def changed(details: dict) -> bool:
    """Whether an audit row records an effect (a dry run, or a write that found everything already so, has none)."""
    if details.get("dry_run"):
        return False
    if "changed" in details:
        return bool(details["changed"])
    if "outcome" in details:
        # A refresh or test call that worked, a consent granted at the provider, a new API key that works.
        return details["outcome"] in ("refreshed", "connected", "authorized", "updated")
    if "ok" in details:
        return bool(details["ok"])
    counts = [v for k, v in details.items() if k.startswith("n_") and k != "n_failed"]
    if counts:
        return any(bool(v) for v in counts)
    return True


@dataclass(frozen=True)
class Proof:
    """The audit actions that prove an action's step done, and what a row of them must show."""

    audit_actions: tuple[str, ...]
    shows: Callable[[dict], bool] = changed
    incident_scoped: bool = False  # incident.* rows: only this incident's own count


PROOFS: dict[str, Proof] = {
    "switch_to_polling": Proof(
        (AuditAction.INTEGRATION_SET_MODE,), lambda d: d.get("mode") == "polling" and changed(d)
    ),
    "defer_enrichment": Proof(
        (AuditAction.INTEGRATION_ENRICHMENT_DEFER,), lambda d: bool(d.get("on")) and changed(d)
    ),
    "create_stale_defects": Proof((AuditAction.DEFECTS_CREATE_STALE,)),
    "queue_webhook_retries": Proof((AuditAction.WEBHOOKS_QUEUE_RETRIES,)),
    "pause_non_critical": Proof((AuditAction.INTEGRATION_PAUSE,)),
    "disable_integration": Proof((AuditAction.INTEGRATION_DISABLE,)),
    "reconnect": Proof(
        (
            AuditAction.INTEGRATION_RECONNECT,
            AuditAction.INTEGRATION_REFRESH_TOKEN,
            AuditAction.INTEGRATION_AUTHORIZE_COMPLETE,
            AuditAction.INTEGRATION_UPDATE_API_KEY,
            AuditAction.TOKENS_REFRESH_EXPIRING,
        )
    ),
    "rotate_credentials": Proof(
        (AuditAction.CREDENTIALS_ROTATE, AuditAction.INTEGRATION_ROTATE_CREDENTIALS),
        lambda d: bool(
            d.get("n_refreshed") or d.get("n_reencrypted") or d.get("refreshed") or d.get("reencrypted")
        ),
    ),
    "reconcile": Proof((AuditAction.INTEGRATION_RECONCILE,), lambda d: not d.get("errors")),
    "clear_stale_defects": Proof((AuditAction.DEFECTS_CLEAR_STALE,)),
    "verify_sync": Proof((AuditAction.INTEGRATION_VERIFY_SYNC,), lambda d: not d.get("dry_run")),
    "retry_failed": Proof((AuditAction.SYNC_LOGS_RETRY_FAILED, AuditAction.RECORDS_SYNC_NOW)),
    "check_status_page": Proof((AuditAction.PROVIDER_CHECK_STATUS_PAGE,), lambda d: True),
    "test_connectivity": Proof((AuditAction.INTEGRATION_TEST_CONNECTIVITY,), lambda d: True),
    "notify_tenants": Proof(
        (AuditAction.INCIDENT_NOTIFY_TENANTS,), lambda d: bool(d.get("sent")), incident_scoped=True
    ),
    "status_note": Proof((AuditAction.INCIDENT_NOTE,), lambda d: True, incident_scoped=True),
}
# Actions whose step is proven by a check of their effect instead ("none left disabled"), or by escalation_sent.
BY_CHECK = ("enable_integration", "resume_paused", "restore_normal_mode")
# Escalation steps, each done when its own team's page was sent: RB-09's "SEV-3: Integrations on-call" and
# "SEV-2: + Backend on-call" (a SEV-3 incident's page to Integrations on-call does not do the SEV-2 step).
ESCALATIONS = {"escalate": "integrations", "escalate_backend": "backend"}


@dataclass(frozen=True)
class Evidence:
    who: str
    how: str
    at: datetime
    what: str

    def __str__(self) -> str:
        when = timezone.localtime(self.at).strftime("%Y-%m-%d %H:%M:%S %Z")
        return f"{self.what} by {self.who} ({self.how}) at {when}"


def how(row: AuditEvent) -> str:
    """Where the work was done, from the audit row: the tracker, the admin, the API, a command, or the console."""
    details = row.details or {}
    if row.actor_type == ActorType.TOKEN:
        return "API"
    if row.actor_type == ActorType.USER:
        source = str(details.get("source") or "")
        return "tracker" if details.get("incident") or source.startswith("INC-") else "admin"
    # Commands act as "system:cli:<os user>" (or "... as <console user>", integrations.management.cli).
    if (
        row.actor == "system:cli"
        or row.actor.startswith("system:cli:")
        or details.get("command")
        or details.get("source") in ("rotate_credentials", "refresh_tokens")
    ):
        return "command"
    return "automatic"  # the actor (system:detection, system:beat ...) is named beside it


def window(incident) -> tuple[datetime, datetime]:
    return min(incident_start(incident), incident.opened_at), incident_end(incident)


def evidence_window(incident) -> tuple[datetime, datetime]:
    """Where work counts: from the incident's start until it is closed. Post-incident work is done after the
    resolution by its nature (a resolved incident evaluates only its post-incident steps)."""
    start, _ = window(incident)
    return start, incident.closed_at or timezone.now()


def _rows(incident, actions, *, incident_scoped: bool):
    start, end = evidence_window(incident)
    qs = AuditEvent.objects.filter(
        provider=incident.provider, action__in=list(actions), created_at__gte=start, created_at__lte=end
    )
    if incident_scoped:
        return qs.filter(details__incident=incident.pk)
    tenant_ids = list(incident.affected_tenants.values_list("pk", flat=True))
    if tenant_ids:
        qs = qs.filter(Q(tenant_id__in=tenant_ids) | Q(tenant__isnull=True))
    return qs


def action_evidence(incident, action_name: str) -> Evidence | None:
    """The first audit row that proves the action's work done in the incident's window, or None."""
    return evidence_for(incident, [action_name]).get(action_name)


def evidence_for(incident, action_names) -> dict[str, Evidence]:
    """Evidence for each of the actions (two queries however many): {action name: Evidence} for those proven."""
    names = set(action_names)
    out: dict[str, Evidence] = {}
    for name, team in ESCALATIONS.items():
        if name in names:
            found = escalation_sent(incident, team)
            if found:
                out[name] = found
    proofs = {n: PROOFS[n] for n in names if n in PROOFS}
    # The tracker's own runs: an `incident.action` row follows the service's rows within moments; a user's row
    # it follows was done from the tracker, not the admin (some services do not know the incident).
    runs = (
        [
            (r.actor, (r.details or {}).get("action"), r.created_at)
            for r in _rows(incident, [AuditAction.INCIDENT_ACTION], incident_scoped=True)
        ]
        if proofs
        else []
    )

    def how_of(row, name) -> str:
        found = how(row)
        if found == "admin" and any(
            actor == row.actor and action == name and row.created_at <= at <= row.created_at + TRACKER_LAG
            for actor, action, at in runs
        ):
            return "tracker"
        return found

    for scoped in (False, True):
        group = {n: p for n, p in proofs.items() if p.incident_scoped == scoped}
        if not group:
            continue
        wanted = {a for p in group.values() for a in p.audit_actions}
        for row in _rows(incident, wanted, incident_scoped=scoped).order_by("created_at", "id"):
            for name, proof in group.items():
                if name in out or row.action not in proof.audit_actions or not proof.shows(row.details or {}):
                    continue
                label = AuditAction(row.action).label if row.action in AuditAction.values else row.action
                out[name] = Evidence(row.actor, how_of(row, name), row.created_at, label)
            if len(out) >= len(names):
                break
    return out


def escalation_sent(incident, team: str = "integrations") -> Evidence | None:
    """The escalation step is done when its team's page is SENT (the outbox row), not merely queued: a mail
    server that is down leaves the step open."""
    rows = [
        r
        for r in _rows(incident, [AuditAction.INCIDENT_ESCALATE_NOTIFY], incident_scoped=True).order_by(
            "created_at", "id"
        )
        if (r.details or {}).get("team") == team
    ]
    sent = dict(
        Notification.objects.filter(
            pk__in=[(r.details or {}).get("notification") for r in rows], status=NotificationStatus.SENT
        ).values_list("pk", "sent_at")
    )
    done = [r for r in rows if (r.details or {}).get("notification") in sent]
    if not done:
        return None
    first = done[0]
    at = sent[(first.details or {}).get("notification")]
    severity = (first.details or {}).get("severity") or incident.severity
    return Evidence(first.actor, how(first), at, f"On-call notified ({team}, {severity}): sent")
