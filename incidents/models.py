"""Incidents: one outage of one provider, worked through its runbook's checklist to a verified recovery."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from integrations.catalog import PROVIDER_CHOICES
from integrations.models import Tenant


class Severity(models.TextChoices):
    SEV2 = "SEV-2", "SEV-2"
    SEV3 = "SEV-3", "SEV-3"


class IncidentStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    CONTAINED = "contained", "Contained"
    RECOVERING = "recovering", "Recovering"
    VERIFYING = "verifying", "Verifying"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


# An incident's status only moves forward, in this order.
STATUS_ORDER = [s.value for s in IncidentStatus]
ACTIVE_STATUSES = [
    IncidentStatus.OPEN,
    IncidentStatus.ACKNOWLEDGED,
    IncidentStatus.CONTAINED,
    IncidentStatus.RECOVERING,
    IncidentStatus.VERIFYING,
]


class Phase(models.TextChoices):
    DETECTION = "detection", "Detection"
    TRIAGE = "triage", "Triage / checks"
    CONTAINMENT = "containment", "Containment / mitigation"
    RECOVERY = "recovery", "Recovery"
    VERIFICATION = "verification", "Verification"
    POST_INCIDENT = "post_incident", "Post-incident"


class RunbookId(models.TextChoices):
    """The runbooks an incident can follow (Incident.runbook) and their titles; their steps are data in
    incidents.runbooks."""

    RB01 = "RB-01", "CRM/ATS provider downtime"
    RB02 = "RB-02", "OAuth token expiry"
    RB03 = "RB-03", "Rate limit exhaustion"
    RB04 = "RB-04", "Partial sync failures"
    RB09 = "RB-09", "Integration provider outage (CRM / Docs / Enrichment)"


class Detector(models.TextChoices):
    """Who opened an incident: the console's own detection, Alertmanager's webhook, or a person."""

    CONSOLE = "console", "Lineup detection"
    ALERTMANAGER = "alertmanager", "Alertmanager"
    PERSON = "person", "A person"


class Incident(models.Model):
    runbook = models.CharField(max_length=8)  # RB-01 .. RB-04, RB-09
    provider = models.CharField(max_length=32, choices=PROVIDER_CHOICES)
    title = models.CharField(max_length=300)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    status = models.CharField(max_length=16, choices=IncidentStatus.choices, default=IncidentStatus.OPEN)
    detected_by = models.CharField(max_length=200)
    detector = models.CharField(max_length=16, choices=Detector.choices, blank=True)
    commander = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    affected_tenants = models.ManyToManyField(Tenant, blank=True, related_name="incidents")
    fallback_available = models.BooleanField(default=False)
    impact = models.JSONField(default=dict, blank=True, help_text="Impact scope as last measured.")
    error_rate = models.FloatField(null=True, blank=True)
    dominant_category = models.CharField(max_length=32, blank=True)
    opened_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(
        null=True, blank=True, help_text="When the first error of the outage happened."
    )
    last_detected_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    contained_at = models.DateTimeField(null=True, blank=True)
    recovering_at = models.DateTimeField(null=True, blank=True)
    verifying_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    recovered_at = models.DateTimeField(
        null=True, blank=True, help_text="Recovery signal: the fast window has been clean since then."
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "runbook"],
                condition=Q(status__in=["open", "acknowledged", "contained", "recovering", "verifying"]),
                name="one_active_incident_per_provider_runbook",
            ),
        ]
        permissions = [
            ("operate_incident", "Can work incidents (acknowledge, run checklist actions, resolve)")
        ]

    def __str__(self) -> str:
        return f"INC-{self.pk} {self.runbook} {self.provider}"


class ChecklistItem(models.Model):
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="checklist")
    phase = models.CharField(max_length=16, choices=Phase.choices)
    position = models.PositiveSmallIntegerField()
    key = models.CharField(max_length=64)
    text = models.TextField()
    depth = models.PositiveSmallIntegerField(default=0, help_text="1 for a sub-step of the item above.")
    source = models.TextField(blank=True, help_text="The runbook document's words for this step.")
    block = models.TextField(blank=True, help_text="The runbook document's command this step stands for.")
    action = models.CharField(max_length=64, blank=True)
    # "check" would shadow Model.check(), which Django reserves.
    check_name = models.CharField(max_length=64, blank=True)
    done = models.BooleanField(default=False)
    done_by = models.CharField(max_length=200, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    check_result = models.CharField(max_length=8, blank=True)  # pass, fail, error
    check_evidence = models.TextField(blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the check last turned from pass to fail (until it passes again).",
    )
    done_evidence = models.TextField(blank=True, help_text="What proves the step done: who, how and when.")
    skipped = models.BooleanField(default=False)
    skip_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["incident", "position"]
        constraints = [models.UniqueConstraint(fields=["incident", "key"], name="one_item_per_incident_key")]

    def __str__(self) -> str:
        return self.text[:80]


class TenantContact(models.Model):
    """Who hears from us when an incident affects a tenant ("Notify affected tenants")."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="incident_contacts")
    email = models.EmailField()
    name = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["tenant", "email"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "email"], name="one_contact_per_tenant_email")
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email


class IncidentEvent(models.Model):
    """The incident's own timeline entries (status changes, notes, notifications, check results)."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=32)
    actor = models.CharField(max_length=200)
    message = models.TextField()
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message[:60]}"


class Postmortem(models.Model):
    """RB-09's analysis: required for SEV-2 and for SEV-3 open longer than 2 hours."""

    incident = models.OneToOneField(Incident, on_delete=models.CASCADE, related_name="postmortem")
    root_cause = models.TextField("Root cause of provider failure", blank=True)
    fallback_effective = models.TextField("Was the fallback mechanism effective?", blank=True)
    reconciliation_completeness = models.TextField("Data reconciliation completeness", blank=True)
    communication_timeliness = models.TextField("Communication timeliness to affected users", blank=True)
    resilience_review = models.TextField(
        "Resilience review (earlier postmortems: multi-provider strategy, fallback reliability, local caching)",
        blank=True,
    )
    # RB-09's resilience review asks three questions; each has its own answer (one field ticks one item).
    multi_provider_strategy = models.TextField("Evaluate multi-provider strategy", blank=True)
    fallback_reliability = models.TextField("Review fallback mechanism reliability", blank=True)
    local_caching = models.TextField("Consider local caching improvements", blank=True)
    follow_ups = models.JSONField(
        default=list, blank=True, help_text="[{'item': ..., 'owner': ..., 'done': false}]"
    )
    author = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    REQUIRED_FIELDS = (
        "root_cause",
        "fallback_effective",
        "reconciliation_completeness",
        "communication_timeliness",
    )

    def __str__(self) -> str:
        return f"Postmortem for {self.incident}"

    @property
    def is_complete(self) -> bool:
        return all(getattr(self, f).strip() for f in self.REQUIRED_FIELDS)


class NotificationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class NotificationChannel(models.TextChoices):
    EMAIL = "email", "Email"
    CHAT = "chat", "Chat (Slack-compatible incoming webhook)"


class NotificationPurpose(models.TextChoices):
    ESCALATION = "escalation", "Escalation to on-call"
    TENANT_NOTICE = "tenant_notice", "Notice to an affected tenant"


class Notification(models.Model):
    """The outbox: one message to send (an escalation or a tenant notice), written in the transaction that
    decides it, sent by the task `incidents.send_notification` after commit and retried by beat until sent."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="notifications")
    purpose = models.CharField(max_length=16, choices=NotificationPurpose.choices)
    channel = models.CharField(max_length=8, choices=NotificationChannel.choices)
    label = models.CharField(max_length=200, help_text="Who it is for, as the timeline says it.")
    # Email addresses; for chat, the severity whose webhook URL (a setting, a secret) it goes to.
    to = models.JSONField(default=list)
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True)
    status = models.CharField(
        max_length=8, choices=NotificationStatus.choices, default=NotificationStatus.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="notification_due")]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} to {self.label} ({self.status})"


class AppliedAlert(models.Model):
    """An Alertmanager alert applied once: by fingerprint, startsAt and status (a retried notification, or the
    same alert repeated, adds nothing)."""

    fingerprint = models.CharField(max_length=128)
    starts_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=8)
    alertname = models.CharField(max_length=200)
    provider = models.CharField(max_length=32)
    incident = models.ForeignKey(Incident, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["fingerprint", "starts_at", "status"], name="one_applied_alert_per_fingerprint_start"
            )
        ]

    def __str__(self) -> str:
        return f"{self.alertname} {self.provider} {self.status} {self.fingerprint}"
