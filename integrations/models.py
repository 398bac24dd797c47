"""The integrations domain: tenants, their provider integrations, sync attempts, data defects and the audit trail."""

import hashlib
import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from integrations.access.crypto import EncryptedJSONField
from integrations.catalog import PROVIDER_CHOICES, PROVIDERS
from integrations.providers import errors as taxonomy


class Tenant(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Category(models.TextChoices):
    CRM = "crm", "CRM"
    ATS = "ats", "ATS"
    DOCS = "docs", "Docs"
    ENRICHMENT = "enrichment", "Enrichment"


class AuthType(models.TextChoices):
    OAUTH2 = "oauth2", "OAuth 2"
    API_KEY = "api_key", "API key"


class IntegrationStatus(models.TextChoices):
    CONNECTED = "connected", "Connected"
    ERROR = "error", "Error"
    NEEDS_REAUTH = "needs_reauth", "Needs re-auth"
    PAUSED = "paused", "Paused"
    DISABLED = "disabled", "Disabled"


class SyncMode(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    POLLING = "polling", "Polling"


DEFAULT_POLL_INTERVAL = timedelta(minutes=5)


class PauseSource(models.TextChoices):
    """Who paused an integration, so that "resume what X paused" finds exactly those pauses."""

    OPERATOR = "operator", "An operator"
    NON_CRITICAL = "non_critical", "Pause non-critical syncs (RB-03)"
    INCIDENT = "incident", "An incident's checklist"


class IntegrationQuerySet(models.QuerySet):
    def callable(self) -> "IntegrationQuerySet":
        """Integrations that may call their provider now: paused, disabled and needs-reauth ones never do, nor
        an inactive tenant's (issue 13)."""
        return self.filter(enabled=True, sync_paused=False, tenant__is_active=True).exclude(
            status=IntegrationStatus.NEEDS_REAUTH
        )

    def settle_status(self) -> int:
        """Set each one's status from its switches and its last outcome (one UPDATE with a CASE, set-based).

        Run it after the UPDATE that changed the switches or outcome: in one statement the CASE would still
        see the old values.
        """
        failing = Q(last_error_at__isnull=False) & (
            Q(last_success_at__isnull=True) | Q(last_error_at__gt=models.F("last_success_at"))
        )
        return self.update(
            status=models.Case(
                models.When(enabled=False, then=models.Value(IntegrationStatus.DISABLED)),
                models.When(sync_paused=True, then=models.Value(IntegrationStatus.PAUSED)),
                models.When(
                    failing
                    & Q(
                        last_error_category__in=[
                            ErrorCategory.AUTH_REFRESH_FAILED,
                            ErrorCategory.AUTH_INVALID,
                        ]
                    ),
                    then=models.Value(IntegrationStatus.NEEDS_REAUTH),
                ),
                models.When(failing, then=models.Value(IntegrationStatus.ERROR)),
                default=models.Value(IntegrationStatus.CONNECTED),
            )
        )


class ConflictPolicy(models.TextChoices):
    """What a field changed on both sides since the last agreed value becomes (issue 12)."""

    HOLD = "hold", "Hold: a SYNC_CONFLICT defect, resolved by an operator"
    LOCAL_WINS = "local_wins", "Ours wins: push the local value"
    PROVIDER_WINS = "provider_wins", "Theirs wins: apply the provider's value"


def new_webhook_secret() -> dict:
    """A fresh per-integration webhook secret (the tenant gives it to the provider)."""
    return {"secret": "whsec_" + secrets.token_urlsafe(32)}


class Integration(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="integrations")
    provider = models.CharField(max_length=32, choices=PROVIDER_CHOICES, db_index=True)
    category = models.CharField(max_length=16, choices=Category.choices)
    auth_type = models.CharField(max_length=16, choices=AuthType.choices)
    status = models.CharField(
        max_length=16, choices=IntegrationStatus.choices, default=IntegrationStatus.CONNECTED, db_index=True
    )
    enabled = models.BooleanField(default=True)
    sync_paused = models.BooleanField(default=False)
    sync_paused_reason = models.CharField(max_length=500, blank=True)
    sync_paused_until = models.DateTimeField(null=True, blank=True)
    sync_paused_source = models.CharField(max_length=16, choices=PauseSource.choices, blank=True)
    # The incident (its INC number) whose checklist paused or disabled the integration, for its undo.
    paused_for_incident = models.PositiveIntegerField(null=True, blank=True)
    disabled_for_incident = models.PositiveIntegerField(null=True, blank=True)
    mode = models.CharField(max_length=16, choices=SyncMode.choices, default=SyncMode.WEBHOOK)
    poll_interval = models.DurationField(default=DEFAULT_POLL_INTERVAL)
    enrichment_defer_on_error = models.BooleanField(default=False)
    is_critical = models.BooleanField(
        default=False,
        help_text="Critical integrations keep syncing when non-critical ones are paused (RB-03).",
    )
    base_url = models.URLField(blank=True, help_text="Overrides the provider's API base URL (sandboxes).")
    credentials = EncryptedJSONField(blank=True, default=dict, editable=False)
    # Issue 13: this integration's own webhook signing secret ({"secret": ...}), encrypted like the credentials;
    # shown once when generated (integration_rotate_webhook_secret), afterwards only its hint.
    webhook_secret = EncryptedJSONField(blank=True, default=new_webhook_secret, editable=False)
    # Issue 13: the provider account (HubSpot portal, Salesforce org, ...) the first OAuth grant bound us to;
    # a later grant for another account is refused.
    provider_account = models.CharField(max_length=200, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_category = models.CharField(max_length=32, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    # A failed poll backs off like a failed push: failures in a row, and no poll before poll_retry_at.
    poll_failures = models.PositiveSmallIntegerField(default=0, db_default=0, editable=False)
    poll_retry_at = models.DateTimeField(null=True, blank=True, editable=False)
    conflict_policy = models.CharField(
        max_length=16,
        choices=ConflictPolicy.choices,
        default=ConflictPolicy.HOLD,
        db_default=ConflictPolicy.HOLD,
        help_text="A field changed both here and at the provider since the last sync: who wins.",
    )
    # One running sync per integration: a lease taken with a conditional UPDATE, released at the end.
    sync_lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    sync_lease_owner = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = IntegrationQuerySet.as_manager()

    class Meta:
        ordering = ["tenant__name", "provider"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "provider"], name="one_integration_per_tenant_provider"
            ),
        ]
        permissions = [
            ("operate_integration", "Can run operations on integrations (pause, resume, retry, ...)"),
            ("manage_credentials", "Can reconnect integrations and change their credentials"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant.name} / {self.get_provider_display()}"

    @property
    def has_credentials(self) -> bool:
        return bool(self.credentials)

    @property
    def supports_webhooks(self) -> bool:
        return bool(getattr(PROVIDERS.get(self.provider), "supports_webhooks", False))

    @property
    def webhook_url(self) -> str:
        """Where the provider sends this integration's webhooks (CONSOLE_URL + /webhooks/<provider>/<tenant>/)."""
        from django.urls import reverse

        path = reverse("webhook", args=[self.provider, self.tenant.slug])
        return settings.CONSOLE_URL.rstrip("/") + path

    @property
    def webhook_secret_value(self) -> str:
        return str((self.webhook_secret or {}).get("secret") or "")

    @property
    def webhook_secret_hint(self) -> str:
        """Enough to tell two secrets apart, not enough to sign with."""
        value = self.webhook_secret_value
        return f"{value[:10]}…{value[-2:]}" if value else ""


class SyncDirection(models.TextChoices):
    PUSH = "push", "Push"
    PULL = "pull", "Pull"


class SyncStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    RUNNING = "RUNNING", "Running"
    SUCCESS = "SUCCESS", "Success"
    FAILED = "FAILED", "Failed"
    RETRYING = "RETRYING", "Retrying"


# The one taxonomy lives with the provider clients; these are its stored choices.
ErrorCategory = models.TextChoices(
    "ErrorCategory", [(slug.upper(), (slug, label)) for slug, label in taxonomy.CATEGORY_LABELS.items()]
)
TRANSIENT_CATEGORIES = frozenset(ErrorCategory(c) for c in taxonomy.TRANSIENT_CATEGORIES)
AUTH_CATEGORIES = frozenset(ErrorCategory(c) for c in taxonomy.AUTH_CATEGORIES)
DATA_CATEGORIES = frozenset(ErrorCategory(c) for c in taxonomy.DATA_CATEGORIES)


class RecordKind(models.TextChoices):
    CANDIDATE = "candidate", "Candidate"
    CONTACT = "contact", "Contact"
    DEAL = "deal", "Deal"
    CLAIM = "claim", "Claim"
    DOCUMENT = "document", "Document"


class CrmSyncStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    SYNCED = "SYNCED", "Synced"
    FAILED = "FAILED", "Failed"


class EnrichmentStatus(models.TextChoices):
    NONE = "NONE", "Not needed"
    PENDING = "PENDING", "Pending"
    ENRICHED = "ENRICHED", "Enriched"
    DEFERRED = "DEFERRED", "Deferred"
    FAILED = "FAILED", "Failed"


class Record(models.Model):
    """A tenant's own data that syncs to its providers (candidates, contacts, deals, claims, documents)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="records")
    kind = models.CharField(max_length=16, choices=RecordKind.choices)
    external_id = models.UUIDField(
        default=uuid.uuid4,
        unique=True,
        editable=False,
        help_text="Sent to providers as lineup_id so that a repeated push adopts, not duplicates.",
    )
    payload = models.JSONField(default=dict)
    crm_sync_status = models.CharField(
        max_length=16, choices=CrmSyncStatus.choices, default=CrmSyncStatus.PENDING
    )
    enrichment_status = models.CharField(
        max_length=16, choices=EnrichmentStatus.choices, default=EnrichmentStatus.NONE
    )
    enriched_at = models.DateTimeField(null=True, blank=True)
    sync_priority_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="Asked to sync ahead of the queue (RB-03 'prioritize specific records').",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "kind"], name="record_tenant_kind"),
            models.Index(
                fields=["tenant", "sync_priority_at"],
                name="record_priority",
                condition=models.Q(sync_priority_at__isnull=False),
            ),
            models.Index(fields=["crm_sync_status", "updated_at"], name="record_sync_status_updated"),
            models.Index(fields=["updated_at", "id"], name="record_updated"),
        ]

    def __str__(self) -> str:
        payload = (
            self.payload if isinstance(self.payload, dict) else {}
        )  # a list or string payload (issue 13, L8)
        label = payload.get("email") or payload.get("name") or payload.get("last_name") or ""
        return f"{self.get_kind_display()} #{self.pk} {label}".strip()


class RecordLink(models.Model):
    """A record's sync state at one integration: its remote id once created, and its last outcome."""

    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="links")
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="record_links")
    remote_id = models.CharField(max_length=100, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    remote_updated_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Last failed push; the record is not pushed again until it changes or is retried.",
    )
    last_error_category = models.CharField(max_length=32, blank=True)
    # The local fields' values last agreed with the provider (after a push or an applied pull): the base of the
    # three-way merge that keeps an unpushed local edit from being overwritten by an older remote copy.
    base = models.JSONField(default=dict, db_default=models.Value({}, models.JSONField()), blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["record", "integration"], name="one_link_per_record_integration"),
            models.UniqueConstraint(
                fields=["integration", "remote_id"],
                condition=~Q(remote_id=""),
                name="one_record_per_remote_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.integration} #{self.remote_id or '(not created)'}"


class SyncLogQuerySet(models.QuerySet):
    def awaiting_retry(self) -> "SyncLogQuerySet":
        """Attempts whose retry is still to come. A retried attempt keeps its outcome (status, error) and only
        loses its due time (`next_attempt_at`); its retry is a new row pointing at it (`retry_of`)."""
        return self.filter(status=SyncStatus.RETRYING, next_attempt_at__isnull=False)


# The sync-log rows "Retry failed" can act on (services.recovery.retryable_logs), for its partial indexes.
FAILED_PUSH = models.Q(status=SyncStatus.FAILED, direction=SyncDirection.PUSH, record__isnull=False)


class SyncLog(models.Model):
    """One attempt to move one record (or one page of records) between us and a provider; never rewritten.

    A retry is a new row whose `retry_of` is the attempt it retries. `counted` says whether the attempt is in
    the rollups (it reached the provider or waited for its quota), so that checks count what the rollups count.
    """

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="sync_logs")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="sync_logs")
    provider = models.CharField(max_length=32, choices=PROVIDER_CHOICES)
    direction = models.CharField(max_length=8, choices=SyncDirection.choices)
    object_type = models.CharField(max_length=64)
    record = models.ForeignKey(
        Record, on_delete=models.SET_NULL, null=True, blank=True, related_name="sync_logs"
    )
    operation = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=SyncStatus.choices, default=SyncStatus.PENDING)
    error_category = models.CharField(max_length=32, choices=ErrorCategory.choices, blank=True)
    error_field = models.CharField(max_length=200, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    endpoint = models.CharField(max_length=300, blank=True)
    attempt = models.PositiveSmallIntegerField(default=1)
    retry_of = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="retries",
        editable=False,
        db_index=False,  # indexed where set only (Meta: synclog_retry_of)
    )
    counted = models.BooleanField(default=False, db_default=False, editable=False)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    rate_limit_headers = models.JSONField(default=dict, blank=True)
    request_excerpt = models.TextField(blank=True)
    response_excerpt = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # A default, not auto_now_add, so that history can be loaded with its own times (seeds, imports, benchmarks).
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = SyncLogQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["finished_at"], name="synclog_finished"),
            models.Index(fields=["integration", "status", "created_at"], name="synclog_integ_status_created"),
            models.Index(fields=["status", "created_at"], name="synclog_status_created"),
            models.Index(fields=["provider", "created_at"], name="synclog_provider_created"),
            models.Index(fields=["created_at", "id"], name="synclog_created_id"),
            models.Index(fields=["status", "next_attempt_at"], name="synclog_status_next_attempt"),
            # "Retry failed" (retryable_logs): the FAILED pushes not yet retried. Indexed where a retry_of is set
            # only, the planner sees how few retries there are and anti-joins the failures in one merge; with
            # these, counting a million-row selection takes 65 ms instead of 1.25 s (bench/RESULTS.md).
            models.Index(
                fields=["retry_of"], name="synclog_retry_of", condition=models.Q(retry_of__isnull=False)
            ),
            models.Index(fields=["id"], name="synclog_failed_push", condition=FAILED_PUSH),
            # The same, for a selection by error type (RB-04: the validation failures).
            models.Index(
                fields=["error_category", "id"], name="synclog_failed_push_category", condition=FAILED_PUSH
            ),
        ]

    def __str__(self) -> str:
        return f"SyncLog #{self.pk} {self.provider} {self.operation} {self.status}"


class FieldMapping(models.Model):
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="field_mappings")
    local_field = models.CharField(max_length=100)
    remote_field = models.CharField(max_length=100)
    required = models.BooleanField(default=False)

    class Meta:
        ordering = ["integration", "local_field"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "local_field"], name="one_mapping_per_local_field"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.local_field} -> {self.remote_field}"


class WebhookStatus(models.TextChoices):
    RECEIVED = "RECEIVED", "Received"
    PROCESSED = "PROCESSED", "Processed"
    FAILED = "FAILED", "Failed"
    QUEUED = "QUEUED", "Queued"
    DEAD = "DEAD", "Dead"


class WebhookDelivery(models.Model):
    """An event a provider sent us."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="webhook_deliveries")
    provider = models.CharField(max_length=32, choices=PROVIDER_CHOICES)
    event_id = models.CharField(max_length=200)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=WebhookStatus.choices, default=WebhookStatus.RECEIVED)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_retries = models.PositiveSmallIntegerField(default=5)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        constraints = [
            # Per integration (issue 13): two tenants' events with the same provider id are two events.
            models.UniqueConstraint(
                fields=["integration", "event_id"], name="one_delivery_per_integration_event"
            ),
        ]
        indexes = [
            models.Index(fields=["provider", "status", "received_at"], name="webhook_provider_status"),
            models.Index(fields=["status", "next_attempt_at"], name="webhook_status_next_attempt"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} event {self.event_id}"


class DefectType(models.TextChoices):
    STALE_ENRICHMENT = "STALE_ENRICHMENT", "Stale enrichment"
    STALE_CRM_SYNC = "STALE_CRM_SYNC", "Stale CRM sync"
    SYNC_FAILED = "SYNC_FAILED", "Sync failed"
    SYNC_CONFLICT = "SYNC_CONFLICT", "Sync conflict"


class DefectStatus(models.TextChoices):
    OPEN = "OPEN", "Open"
    RESOLVED = "RESOLVED", "Resolved"


class Defect(models.Model):
    """A known data problem, e.g. a record whose enrichment went stale during a provider outage."""

    defect_type = models.CharField(max_length=32, choices=DefectType.choices)
    provider = models.CharField(max_length=32, choices=PROVIDER_CHOICES)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="defects")
    integration = models.ForeignKey(
        Integration, on_delete=models.CASCADE, null=True, blank=True, related_name="defects"
    )
    record = models.ForeignKey(
        Record, on_delete=models.CASCADE, null=True, blank=True, related_name="defects"
    )
    status = models.CharField(max_length=16, choices=DefectStatus.choices, default=DefectStatus.OPEN)
    description = models.TextField(blank=True)
    # SYNC_CONFLICT: {"fields": {local_field: {"base": ..., "ours": ..., "theirs": ..., "remote_field": ...}},
    # "remote_id": ...}: both values and the last agreed one, for "Keep ours" / "Take theirs".
    details = models.JSONField(default=dict, db_default=models.Value({}, models.JSONField()), blank=True)
    resolution = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=200, blank=True, help_text="The actor who resolved it.")

    class Meta:
        indexes = [
            models.Index(
                fields=["provider", "defect_type", "status", "created_at"], name="defect_provider_type_status"
            ),
            models.Index(fields=["created_at", "id"], name="defect_created_id"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["record", "provider", "defect_type"],
                condition=Q(status="OPEN"),
                name="one_open_defect_per_record_provider_type",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_defect_type_display()} ({self.provider}) #{self.pk}"


class ApiTokenScope(models.TextChoices):
    TENANT = "tenant", "One tenant"
    ADMIN = "admin", "Staff / admin"


class ApiToken(models.Model):
    """A bearer token for the JSON API; only its SHA-256 is stored."""

    name = models.CharField(max_length=200)
    prefix = models.CharField(
        max_length=12, editable=False, help_text="The first characters, to recognise a token."
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    scope = models.CharField(max_length=16, choices=ApiTokenScope.choices)
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, null=True, blank=True, related_name="api_tokens"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(scope="admin", tenant__isnull=True) | Q(scope="tenant", tenant__isnull=False),
                name="tenant_token_has_tenant",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @staticmethod
    def generate() -> str:
        return "lo_" + secrets.token_urlsafe(32)


class ActorType(models.TextChoices):
    USER = "user", "User"
    TOKEN = "token", "API token"
    SYSTEM = "system", "System"


class AuditAction(models.TextChoices):
    """Every action the audit trail records; services, checks and screens use these, never free strings."""

    INTEGRATION_CREATE = "integration.create", "Integration created"
    INTEGRATION_UPDATE = "integration.update", "Integration changed"
    INTEGRATION_PAUSE = "integration.pause", "Pause sync"
    INTEGRATION_RESUME = "integration.resume", "Resume sync"
    INTEGRATION_DISABLE = "integration.disable", "Disable"
    INTEGRATION_ENABLE = "integration.enable", "Enable"
    INTEGRATION_RECONNECT = "integration.reconnect", "Reconnect"
    INTEGRATION_REFRESH_TOKEN = "integration.refresh_token", "Refresh token"
    INTEGRATION_AUTHORIZE_START = "integration.authorize_start", "Re-authorize: consent started"
    INTEGRATION_AUTHORIZE_COMPLETE = "integration.authorize_complete", "Re-authorize: consent granted"
    INTEGRATION_UPDATE_API_KEY = "integration.update_api_key", "Update API key"
    INTEGRATION_ROTATE_CREDENTIALS = "integration.rotate_credentials", "Rotate credentials (one integration)"
    INTEGRATION_ROTATE_WEBHOOK_SECRET = "integration.rotate_webhook_secret", "Generate webhook secret"
    INTEGRATION_AUTHORIZE_REFUSED = "integration.authorize_refused", "Re-authorize refused: another account"
    AUTH_LOGIN_FAILED = "auth.login_failed", "Login failed"
    AUTH_LOCKED_OUT = "auth.locked_out", "Login locked out"
    ADMIN_ADD = "admin.add", "Added in the admin"
    ADMIN_CHANGE = "admin.change", "Changed in the admin"
    ADMIN_DELETE = "admin.delete", "Deleted in the admin"
    INTEGRATION_TEST_CONNECTIVITY = "integration.test_connectivity", "Test connectivity"
    PROVIDER_CHECK_STATUS_PAGE = "provider.check_status_page", "Check provider status page"
    INTEGRATION_SET_MODE = "integration.set_mode", "Switch mode (polling / webhook)"
    INTEGRATION_ENRICHMENT_DEFER = "integration.enrichment_defer", "Defer enrichment"
    INTEGRATION_RECONCILE = "integration.reconcile", "Reconcile"
    INTEGRATION_VERIFY_SYNC = "integration.verify_sync", "Verify sync"
    RECORD_RECONCILED = "record.reconciled", "Record reconciled"
    RECORDS_SYNC_NOW = "records.sync_now", "Sync now"
    SYNC_LOGS_RETRY_FAILED = "sync_logs.retry_failed", "Retry failed"
    WEBHOOKS_QUEUE_RETRIES = "webhooks.queue_retries", "Queue webhook retries"
    DEFECTS_CREATE_STALE = "defects.create_stale", "Create stale defects"
    DEFECTS_CLEAR_STALE = "defects.clear_stale", "Clear stale defects"
    CONFLICT_KEEP_OURS = "conflict.keep_ours", "Conflict: keep ours"
    CONFLICT_TAKE_THEIRS = "conflict.take_theirs", "Conflict: take theirs"
    PROVIDER_QUOTA_RESTORE = "provider.quota_restore", "Quota is back"
    CREDENTIALS_ROTATE = "credentials.rotate", "Rotate credentials"
    TOKENS_REFRESH_EXPIRING = "tokens.refresh_expiring", "Refresh expiring tokens"
    API_TOKEN_CREATE = "api_token.create", "API token created"
    API_TOKEN_REVOKE = "api_token.revoke", "API token revoked"
    BULK_OPERATION_START = "bulk_operation.start", "Bulk operation started"
    DEMO_SEED = "demo.seed", "Demo seeded"
    INCIDENT_OPEN = "incident.open", "Incident opened"
    INCIDENT_ESCALATE = "incident.escalate", "Incident escalated"
    INCIDENT_ESCALATE_NOTIFY = "incident.escalate_notify", "On-call notified"
    INCIDENT_STATUS = "incident.status", "Incident status changed"
    INCIDENT_COMMANDER = "incident.commander", "Commander assigned"
    INCIDENT_ACTION = "incident.action", "Checklist action run"
    INCIDENT_ITEM_DONE = "incident.item_done", "Checklist item done"
    INCIDENT_CHECKS_PASSED = "incident.checks_passed", "Checks passed"
    INCIDENT_NOTE = "incident.note", "Status note"
    INCIDENT_NOTIFY_TENANTS = "incident.notify_tenants", "Tenants notified"
    INCIDENT_POSTMORTEM = "incident.postmortem", "Postmortem written"
    INCIDENT_REOPEN = "incident.reopen", "Incident reopened"
    INCIDENT_RECOVERED = "incident.recovered", "Recovery signal"
    INCIDENT_NOTIFICATION = "incident.notification", "Notification sent or failed"
    INCIDENT_ALERT = "incident.alert", "Alert applied"
    INCIDENT_REFUSED = "incident.refused", "Refused attempt"
    INCIDENT_ITEM_SKIPPED = "incident.item_skipped", "Checklist item skipped"
    INCIDENT_ITEM_REOPENED = "incident.item_reopened", "Checklist item reopened (its check fails again)"


class AuditEvent(models.Model):
    """Who did what to what, and when. Every action writes one."""

    created_at = models.DateTimeField(auto_now_add=True)
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_token = models.ForeignKey(
        ApiToken, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor = models.CharField(max_length=200, help_text="The actor's name as it was when it acted.")
    action = models.CharField(max_length=64, db_index=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    integration = models.ForeignKey(
        Integration, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_events"
    )
    provider = models.CharField(max_length=32, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["provider", "created_at"], name="audit_provider_created"),
            models.Index(fields=["created_at", "id"], name="audit_created_id"),
        ]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.provider}".strip()


class BulkOperationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class BulkOperation(models.Model):
    """An action over a large selection, done chunk by chunk in the background; the console shows its progress.

    The selection is stored as data (issue 13: its filters or ids, never a pickled query) and the highest pk it had
    when the operator confirmed (`params["selection"]`,
    `params["max_pk"]`); each chunk re-applies the action's own conditions, so a re-run chunk changes nothing twice.
    """

    action = models.CharField(max_length=64)
    status = models.CharField(
        max_length=16, choices=BulkOperationStatus.choices, default=BulkOperationStatus.QUEUED, db_index=True
    )
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    cursor = models.BigIntegerField(default=0, editable=False, help_text="The last pk processed.")
    params = models.JSONField(default=dict, blank=True)
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} #{self.pk} ({self.done}/{self.total})"

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, round(100 * self.done / self.total))


class OutcomeKind(models.TextChoices):
    SYNC = "sync", "Sync call"
    WEBHOOK = "webhook", "Webhook delivery"


class OutcomeRollup(models.Model):
    """Outcomes per minute, provider, endpoint and error category ("" = success), kept by the sync engine.

    The dashboard's error rates and detection read these instead of scanning the sync-log table.
    """

    kind = models.CharField(max_length=16, choices=OutcomeKind.choices, default=OutcomeKind.SYNC)
    minute = models.DateTimeField()
    provider = models.CharField(max_length=32, choices=PROVIDER_CHOICES)
    endpoint = models.CharField(max_length=300, blank=True)
    category = models.CharField(max_length=32, blank=True)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "minute", "provider", "endpoint", "category"],
                name="one_rollup_per_minute_key",
            ),
        ]
        indexes = [models.Index(fields=["minute", "provider"], name="rollup_minute_provider")]

    def __str__(self) -> str:
        return f"{self.minute:%H:%M} {self.provider} {self.endpoint} {self.category or 'ok'}: {self.count}"


class OutcomeTotal(models.Model):
    """Cumulative counts since the start, for Prometheus counters (integration_errors_total and friends)."""

    kind = models.CharField(max_length=16, choices=OutcomeKind.choices, default=OutcomeKind.SYNC)
    provider = models.CharField(max_length=32, choices=PROVIDER_CHOICES)
    endpoint = models.CharField(max_length=300, blank=True)
    category = models.CharField(max_length=32, blank=True)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "provider", "endpoint", "category"], name="one_total_per_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.endpoint} {self.category or 'ok'}: {self.count}"


class ProviderStatusReading(models.Model):
    """What a provider's public status page said when we last read it (beat polls it through the adapter)."""

    provider = models.CharField(max_length=32, choices=PROVIDER_CHOICES, unique=True)
    indicator = models.CharField(
        max_length=16, blank=True, help_text="none, minor, major, critical (Statuspage terms)"
    )
    description = models.CharField(max_length=300, blank=True)
    read_at = models.DateTimeField()
    error = models.CharField(
        max_length=500, blank=True, help_text="Why the page could not be read, if it could not."
    )

    def __str__(self) -> str:
        return f"{self.provider}: {self.indicator or 'unknown'} ({self.read_at:%H:%M})"
